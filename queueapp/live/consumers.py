"""WebSocket screens: the patient's ticket, the lobby display, the staff console feed.

Each connection: accept at once (the handshake never waits on the database:
daphne drops or refuses handshakes not accepted within seconds, and a storm
of reconnecting phones would then never drain), check access, subscribe
(through the process's `Hub`), send the snapshot, then apply events. A
patient screen's lookup is batched with every other screen connecting
meanwhile (`Hub.tickets`), its position comes from the queue's shared waiting
line, and no session is looked up for it (config/asgi.py routes the public
screens around the auth middleware). A screen remembers the version it shows
per queue. An event one version ahead is applied; a gap, a tick announcing a
newer version, or a reconnect makes it read what it missed from the
database; an older or repeated version is ignored. Messages from the browser
are never needed: anything oversized, binary or too frequent closes the
socket with a code, anything else is ignored (a "refresh" asks for a fresh
snapshot).

Close codes (docs/architecture.md has the table): daphne accepts only 1000
and 3000-4999 from an application, so ours are 4000 + the RFC 6455 code they
stand for (4003, 4008, 4009, 4011, 4012, 4013) or 4000 + the HTTP status of a
refusal (4401, 4403, 4404). Each closed socket logs one line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from types import SimpleNamespace

from autobahn.exception import Disconnected
from channels.auth import get_user
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import translation

from .. import access
from ..models import QueueEvent, TicketStatus
from ..selectors import is_ahead, overtakes
from ..errors import NotFound, PermissionDenied
from ..languages import browser_language, preferred_language
from . import batch, collector, precedence, reads, render
from .codes import (
    CLOSE_FORBIDDEN, CLOSE_INTERNAL, CLOSE_NOT_FOUND, CLOSE_POLICY, CLOSE_REASONS, CLOSE_RETRY,
    CLOSE_TOO_BIG, CLOSE_UNAUTHENTICATED, CLOSE_UNSUPPORTED,
)
from .hub import LINE_ADVANCE_FOR, Hub, SharedRender
from .publisher import group_for_queue
from .wire import Wire

log = logging.getLogger(__name__)

# Before closing with CLOSE_RETRY, keep the socket this long (random, seconds):
# htmx 4 resets its back-off once a socket opened, so an immediate close would
# bring every screen back every 0.5 s while the database is away.
RETRY_HOLD = (1.0, 3.0)

MAX_TEXT = 4096
MAX_MESSAGES = 20  # per MESSAGE_WINDOW seconds
MESSAGE_WINDOW = 10.0
EARLY_LIMIT = 100  # events buffered while the snapshot loads
WORK_ROUNDS = 5  # catch-up rounds while events keep arriving, before a fresh snapshot
# A screen still behind after WORK_ROUNDS rounds (events keep coming faster
# than it catches up), or whose catch-up failed (the database away), keeps
# working with a pause between rounds: first WORK_PAUSE[0] s, doubling up to
# WORK_PAUSE[1]. Giving up instead left a page on an old state until some
# later message reached it: never, if it was the last (a visitor's admission).
WORK_PAUSE = (0.5, 5.0)
# A patient or room page behind (a version gap) fills it from the queue's
# events its server received (`Hub.recent_run`), at once and again on every
# message; only a version still missing after GAP_GRACE seconds (lost, not
# late) is read from the database. Under a crowd two server processes deliver
# a room's events out of order, and the one database thread answered the
# catch-ups seconds late: pages behind refused the live messages meanwhile,
# chased the line, and some showed "waiting" until their admission expired
# (bench/waiting_room.py, sessions 9 and 10).
GAP_GRACE = 1.0
BEHIND_WARN = 10.0  # seconds a screen may keep catching up before it is logged (`_run_work`)
LINE_WAIT_STEP = 0.05  # seconds between looks at the line while a connecting ticket waits for it

Kind = QueueEvent.Kind


class NeedsSnapshot(Exception):
    """The event touches the screen's own ticket in a way only the DB can tell."""


class LiveConsumer(AsyncWebsocketConsumer):
    # No per-consumer channel: the hub holds one subscription per queue for the
    # whole process and calls on_queue_message directly (see hub.py).
    channel_layer_alias = "live-screens-use-the-hub"

    queue_groups: list[str]
    staff_screen = False  # staff's screens go before public ones (precedence.py)
    wire: Wire | None = None  # the direct path to the socket under daphne (wire.py), once accepted

    async def __call__(self, scope, receive, send) -> None:
        """Channels' `AsyncConsumer.__call__` for a consumer without a channel
        layer (ours: the hub subscribes for it), reading `receive` in a plain
        loop. Channels' `await_many_dispatch` runs each `receive()` as a task
        of its own and waits on it with `asyncio.wait`: a second task, its
        context, a waiter future, two sets and a callback per idle screen for
        as long as it stays open (~1.5 KB each, bench/live_memory.py), and
        their creation on every message and connect."""
        if not settings.LIVE_LEAN_CONNECTIONS:
            await super().__call__(scope, receive, send)
            return
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            message = await receive()
            # Two loop turns before the connect, as Channels' loop took: daphne's
            # and autobahn's timers due by now run first, so a handshake already
            # past its deadline (a stalled loop) is answered 503 retryable as
            # before, not accepted in the same turn (tests/test_live_handshake_timeout.py).
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            while True:
                await self.dispatch(message)
                message = await receive()
        except StopConsumer:
            pass

    async def dispatch(self, message) -> None:
        """Channels' `dispatch` without its `aclose_old_connections()` before
        every handler: that is a hop through the process's one thread-sensitive
        executor for each connect, message and disconnect (10,000 hops, one
        after another, when 5,000 phones reconnect), queueing every other sync
        call of the process behind them. Our handlers never use a connection
        directly: every read goes through `database_sync_to_async`, which
        closes old connections itself on the thread that holds them."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        self.hub = Hub.current()
        self.queue_groups = []
        self.ready = False
        self.closed_with: int | None = None
        self.early: list[dict] = []
        self.overflowed = False
        self._messages: list[float] = []
        self._work: asyncio.Task | None = None
        self._work_again = False
        if self.hub.stopping:
            return  # left unanswered: the process exit drops it, the phone retries elsewhere
        if not self.staff_screen:
            await precedence.after_http()  # staff's requests first (precedence.py)
        await self.accept()
        if settings.LIVE_DIRECT_SEND:
            self.wire = Wire.behind(self.base_send)
        self.hub.screens.add(self)
        collector.screen_connected()  # a connect storm: quiet young passes are followed by a freeze
        try:
            refusal = await self.prepare()
            if refusal is None:
                if not self.staff_screen:  # staff's consoles skip the queue of public screens
                    await self.hub.admission.enter()
                await self.hub.join(self.queue_groups, self)
                self.subscribed_at = time.monotonic()  # reads started after this miss no event
                await self.start()
        except (OperationalError, InterfaceError) as exc:
            await asyncio.sleep(random.uniform(*RETRY_HOLD))
            await self.close_now(CLOSE_RETRY, exc)
            return
        except Exception as exc:
            log.exception("live screen could not start")
            await self.close_now(CLOSE_INTERNAL, exc)
            return
        if refusal is not None:
            await self.close_now(refusal)

    async def logged_in_user(self):
        """The session's user (staff screens), looked up after the socket was
        accepted: a database that does not answer then closes the screen
        with CLOSE_RETRY, where a lookup before the handshake (Channels'
        `AuthMiddlewareStack`) would have refused it."""
        user = self.scope["user"] = await get_user(self.scope)
        return user

    async def close_now(self, code: int, cause: BaseException | None = None, *, quiet: bool = False) -> None:
        """Close with `code` and log one line (never again for this socket;
        `quiet` for the hub's restart, which logs one line for all)."""
        if getattr(self, "closed_with", None) is not None:
            return
        self.closed_with = code
        if not quiet:
            detail = f" ({type(cause).__name__})" if cause is not None else ""
            log.info("%s closed with %d: %s%s", self.kind, code, CLOSE_REASONS.get(code, ""), detail)
        await self.base_send({"type": "websocket.close", "code": code})

    async def websocket_disconnect(self, message) -> None:
        """Channels' handler without its `aclose_old_connections()`: like
        `dispatch` above, a hop through the process's one thread-sensitive
        executor per closed socket (py-spy: 20 % of the loop while phones
        left during a burst, queued behind the screens' batched reads), for
        connections this consumer never holds. Our groups are the hub's, not
        the layer's, so there is nothing to discard either."""
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def disconnect(self, code) -> None:
        hub = getattr(self, "hub", None)
        if hub is not None:
            hub.leave(self.queue_groups, self)
            hub.screens.discard(self)
        work = getattr(self, "_work", None)
        if work is not None:
            work.cancel()

    async def send_frame(self, text: str) -> None:
        if self.send_frame_now(text):
            return
        try:
            await self.send(text_data=text)
        except Disconnected:
            self._left_early()

    def send_frame_now(self, text: str) -> bool:
        """Write a frame straight to the socket (under daphne, wire.py), without
        a coroutine: the hub's fan-out calls this for thousands of screens in a
        row. False if this screen has no direct path: then `send_frame`."""
        if self.wire is None:
            return False
        try:
            self.wire.write(text)
        except Disconnected:
            self._left_early()
        return True

    def _left_early(self) -> None:
        # The phone closed (autobahn answered its close frame and dropped
        # the TCP) but daphne has not yet told us (`websocket.disconnect`
        # comes a loop turn later): an expected event, ~1,000 per storm of
        # phones giving up, not a fault. Other errors still propagate.
        log.debug("%s: the phone left before its frame was sent", self.kind)

    # --- from the hub (synchronous: runs once per screen per broadcast) ----------
    def on_queue_messages(self, messages: list[dict]) -> list[str]:
        """The frames to send for `messages` (a waiting room's batch, or one
        message): here every frame, in order."""
        return [frame for message in messages if (frame := self.on_queue_message(message))]

    def on_queue_message(self, message: dict) -> str | None:
        if not self.ready:
            if len(self.early) < EARLY_LIMIT:
                self.early.append(message)
            else:
                self.overflowed = True
            return None
        return self.apply(message)

    def _replay_early(self) -> str | None:
        frames = []
        early, self.early = self.early, []
        if self.overflowed:
            self.overflowed = False
            self.request_work()
        for message in sorted(early, key=lambda m: m.get("version", 0)):
            frame = self.apply(message)
            if frame:
                frames.append(frame)
        return frames[-1] if frames else None

    def request_work(self) -> None:
        """Run `catch_up` in the background, once at a time, again if asked meanwhile."""
        if self._work is not None and not self._work.done():
            self._work_again = True
            return
        self._work = asyncio.get_running_loop().create_task(self._run_work())

    async def _run_work(self) -> None:
        rounds, pause = 0, WORK_PAUSE[0]
        # A screen still behind after BEHIND_WARN s shows an old state (a
        # visitor's admission, a patient's call): logged once, with what it
        # waits on, even while a read it awaits has not come back.
        warning = asyncio.get_running_loop().call_later(BEHIND_WARN, self._log_behind, time.monotonic())
        try:
            while True:
                self._work_again = False
                failed = False
                try:
                    await self.catch_up()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    failed = True
                    log.exception("live screen could not catch up")
                rounds += 1
                if self.closed_with is not None or not (self._work_again or self.behind()):
                    return
                if failed or rounds >= WORK_ROUNDS:
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, WORK_PAUSE[1])
        finally:
            warning.cancel()

    def _log_behind(self, since: float) -> None:
        if self.closed_with is None and self.behind():
            log.warning("live %s behind for %.0f s: %s", self.kind, time.monotonic() - since, self.why_behind())

    def behind(self) -> bool:
        """Whether a message announced a newer version than the screen shows."""
        return False

    def why_behind(self) -> str:
        """What the screen shows and waits for, for the log (no personal data)."""
        return ""

    # --- from the browser ----------------------------------------------------
    async def receive(self, text_data=None, bytes_data=None) -> None:
        if self.closed_with is not None:
            return  # closing: what the browser still sends is dropped, not answered
        try:
            if text_data is None:
                await self.close_now(CLOSE_UNSUPPORTED)
                return
            if len(text_data) > MAX_TEXT:
                await self.close_now(CLOSE_TOO_BIG)
                return
            now = time.monotonic()
            self._messages = [t for t in self._messages if now - t < MESSAGE_WINDOW] + [now]
            if len(self._messages) > MAX_MESSAGES:
                await self.close_now(CLOSE_POLICY)
                return
            try:
                data = json.loads(text_data)
            except ValueError:
                return  # not JSON: ignored
            if not isinstance(data, dict):
                return
            body = data.get("body") if isinstance(data.get("body"), dict) else data  # hx-ws:send envelope
            if body.get("type") == "refresh" or body.get("action") == "refresh":
                await self.start(refresh=True)
        except Exception as exc:  # a consumer never crashes on input
            log.warning("%s: message ignored (%s)", self.kind, type(exc).__name__)

    # --- per screen ----------------------------------------------------------
    kind = "live screen"

    async def prepare(self) -> int | None:
        """Check access and set `queue_groups`; return a close code to refuse."""
        raise NotImplementedError

    async def start(self, refresh: bool = False) -> None:
        """Send the snapshot, then apply what arrived meanwhile."""
        raise NotImplementedError

    def apply(self, message: dict) -> str | None:
        raise NotImplementedError

    async def catch_up(self) -> None:
        raise NotImplementedError


class TicketConsumer(LiveConsumer):
    """`ws/ticket/<token>/`: one patient's ticket; follows a transfer to the new ticket."""

    kind = "ticket screen"
    own_version = 0  # the version of the last message about the ticket's own status applied (`_own_news`)

    async def prepare(self) -> int | None:
        self.token = self.scope["url_route"]["kwargs"]["token"]  # its shape checked by the route
        view = await self.hub.tickets.get(self.token)  # one query for the whole burst
        if view is None:
            return CLOSE_NOT_FOUND
        self.view = view.own_copy()  # another screen of this token may have been given the same view
        self.latest_seen = self.view.version
        self.queue_groups = [group_for_queue(self.view.queue_id)]
        if self.view.queue.room_slug is not None:
            self.hub.rooms.add(self.view.queue_id)  # its events reach screens in batches
        return None

    async def start(self, refresh: bool = False) -> None:
        if refresh:
            await self._snapshot()
            return
        # The row was read before subscribing. The queue's waiting line gives
        # the position and a version: the hub's line, shared by every screen
        # of the queue, read at most once at a time (every LINE_ADVANCE_FOR s
        # at most) while the hub was subscribed to the queue, and brought
        # forward from the events the hub received (`Hub._advance_line`) up to
        # the first one still on its way. Whatever is newer (the row's
        # version, what the hub has seen) the screen fills from the events the
        # hub received (`_fill`) or catches up; later events reach it through
        # the subscription. Needing the line at the newest version sent nearly
        # every connecting page of a crowd to read the line again: two
        # processes' events arrive out of order, and the row is read after
        # commits the hub has not heard of yet: so a line older than the row
        # waits for those events (`_line_at_row`, up to GAP_GRACE), and is read
        # only if they do not come. If the ticket left the line in between,
        # the view is read again (`_snapshot`).
        queue_id = self.view.queue_id
        seen = self.hub.seen.get(queue_id, 0)
        fresh_after = max(self.hub.good_reads_after(self.queue_groups, self.subscribed_at),
                          time.monotonic() - LINE_ADVANCE_FOR)
        got = await self.hub.lines.get(queue_id, fresh_after=fresh_after)
        if self.view.status == TicketStatus.WAITING and got.versions.get(queue_id, 0) < self.view.version:
            got = await self._line_at_row(fresh_after)
        version, line = got.versions.get(queue_id, 0), got.value
        self.latest_seen = max(self.latest_seen, version, seen)
        if self.view.status == TicketStatus.WAITING:
            position = line.position(self.view.priority, self.view.seq)
            if position is None:
                await self._snapshot()
            else:
                self.view.position, self.view.open_counters, self.view.version = (
                    position, line.open_counters, version)
                self.view.service_seconds = line.service_seconds
                self.view.overtaken_by = line.overtaking(self.view.priority, self.view.entered_at)
                self._fill()  # (what it cannot apply, the catch-up requested below does)
                await self.send_frame(render.ticket_frame(self.view))
                self._framed_at = time.monotonic()  # (a room's page far back: its next place at its cadence)
                render.warm_next_place(self.view)
        else:
            await self.send_frame(render.ticket_frame(self.view))
        self.ready = True
        frame = self._replay_early()
        if frame:
            await self.send_frame(frame)
        if self.latest_seen > self.view.version:
            self.request_work()

    async def _line_at_row(self, fresh_after: float):
        """The queue's line at the version the ticket's row was read at, at
        least: brought forward as the events come (for up to GAP_GRACE s: they
        are on their way from the server that committed them), else read."""
        queue_id, view = self.view.queue_id, self.view
        deadline = time.monotonic() + GAP_GRACE
        while time.monotonic() < deadline:
            await asyncio.sleep(LINE_WAIT_STEP)
            got = self.hub.lines.newest(queue_id, fresh_after)
            if got is not None and got.versions.get(queue_id, 0) >= view.version:
                return got
        return await self.hub.lines.get(queue_id, need={queue_id: view.version}, fresh_after=fresh_after)

    def on_queue_messages(self, messages: list[dict]) -> list[str]:
        """A batch (a waiting room's events of the last moments): applied in
        order, one frame of the final state, rendered once."""
        if not self.ready:
            return super().on_queue_messages(messages)  # kept for after the snapshot
        whole = self._apply_whole(getattr(messages, "summary", None))
        if whole is not None:
            changed = whole
        else:
            changed = False
            for message in messages:
                changed = self._step(message) or changed
        return self._frames(changed)

    def _frames(self, changed: bool) -> list[str]:
        """The frame for a change of the view (none if it did not change): for a
        waiting room's page, when its cadence lets it have one."""
        if self.view.queue.room_slug is None:
            return [render.ticket_frame(self.view)] if changed else []
        return self._room_frame(changed)

    # A waiting room's page far back in line gets its place at the cadence of
    # `batch.frame_every` (an admission at once): what it shows is owed until
    # then, and the hub pays what is owed each batch period (`Hub.owe`).
    _owed = False
    _framed_at = 0.0  # monotonic time of the last frame that showed a change

    def _room_frame(self, changed: bool) -> list[str]:
        if not (changed or self._owed):
            return []
        now = time.monotonic()
        view = self.view
        if now - self._framed_at < batch.frame_every(view.position if view.status == TicketStatus.WAITING else None):
            if not self._owed:
                self._owed = True
                self.hub.owe(view.queue_id, self)
            return []
        self._owed, self._framed_at = False, now
        return [render.ticket_frame(view)]

    def owed_frame(self, now: float) -> str | None:
        """The frame owed to this page if its time has come (the hub asks each
        batch period; the page stays owed, `_owed`, until then)."""
        if not self._owed or self.closed_with is not None:
            self._owed = False
            return None
        view = self.view
        if now - self._framed_at < batch.frame_every(view.position if view.status == TicketStatus.WAITING else None):
            return None
        self._owed, self._framed_at = False, now
        return render.ticket_frame(view)

    def _apply_whole(self, summary: batch.Summary | None) -> bool | None:
        """A room's batch applied at once from its summary (`live/batch.py`):
        True if what the page shows changed. None when the batch must go event
        by event: it is not the next after what this screen shows, it concerns
        this ticket, someone in it may be placed ahead of this one, or the
        screen is not a waiting place."""
        view = self.view
        if (summary is None or summary.queue != view.queue_id or view.version != summary.first - 1
                or view.status != TicketStatus.WAITING or view.position is None or view.overtaken_by
                or view.ticket_id in summary.tickets
                or (summary.highest_entered is not None and summary.highest_entered > view.priority)):
            return None
        wait, seats_changed = view.estimated_wait, False
        if summary.service_seconds is not batch.NOT_SET:
            view.service_seconds = summary.service_seconds
        if summary.open_counters is not batch.NOT_SET:
            view.open_counters = summary.open_counters
        if getattr(view.queue, "seats_free", None) is not None and summary.seats is not None:
            free = summary.seats[0] - summary.seats[1]
            seats_changed, view.queue.seats_free = free != view.queue.seats_free, free
        delta = summary.ahead(summary.entered, view.key) - summary.ahead(summary.left, view.key)
        view.position += delta
        view.version = summary.last
        self.latest_seen = max(self.latest_seen, summary.last)
        return delta != 0 or seats_changed or view.estimated_wait != wait

    def apply(self, message: dict) -> str | None:
        return render.ticket_frame(self.view) if self._step(message) else None

    def behind(self) -> bool:
        return self.latest_seen > self.view.version

    _read_took = _snapshot_took = 0.0  # seconds the last catch-up read and the last snapshot took (the log)

    def why_behind(self) -> str:
        view = self.view
        return (f"ticket {view.ticket_id} ({view.status}) of queue {view.queue_id} at v{view.version}, "
                f"newest seen v{self.latest_seen} (the server v{self.hub.seen.get(view.queue_id, 0)}, holding "
                f"{len(self.hub.recent_run(view.queue_id, view.version))} right after it); the last catch-up read "
                f"took {self._read_took:.1f} s, the last snapshot {self._snapshot_took:.1f} s")

    def _step(self, message: dict) -> bool:
        """Apply one message to the view; True if what the page shows changed."""
        view = self.view
        if message.get("queue") != view.queue_id:
            return False
        version = message.get("version", 0)
        self.latest_seen = max(self.latest_seen, version)
        if version <= view.version:
            return False
        if message["type"] == "queue.event" and version == view.version + 1:
            try:
                changed = self._apply_event(message)
            except NeedsSnapshot:
                self.request_work()
                return False
            view.version = version
            return changed
        # A gap (a message late, lost or announced by a tick): what the server
        # received fills it now; the rest is the catch-up's (`catch_up`), and
        # news of this ticket leaving the line is shown meanwhile.
        changed, stuck = self._fill()
        if stuck or self.behind():
            self.request_work()
            changed = self._own_news(message) or changed
        return changed

    def _fill(self) -> tuple[bool, bool]:
        """Apply the queue's events this server received right after what the
        page shows (`Hub.recent_run`), without a query. Returns (what the page
        shows changed, an event needs a fresh snapshot)."""
        view, changed = self.view, False
        for message in self.hub.recent_run(view.queue_id, view.version):
            try:
                changed = self._apply_event(message) or changed
            except NeedsSnapshot:
                return changed, True
            view.version = message["version"]
        return changed, False

    def _out_of_line(self, message: dict) -> bool:
        """Whether `message` (about this screen's ticket) says all the page shows
        of it: it left the line for a status whose words need nothing but the
        message (admitted, called, served, done, expired...)."""
        return (message.get("kind") not in (Kind.REQUEUED, Kind.TRANSFERRED_OUT)
                and message["ticket"].get("status") not in (TicketStatus.WAITING, TicketStatus.OFFERED))

    def _take_status(self, message: dict) -> None:
        ticket, view = message["ticket"], self.view
        view.status = ticket["status"]
        view.counter = SimpleNamespace(name=ticket["counter"]) if ticket.get("counter") else None
        view.call_count = ticket.get("call_count", view.call_count)
        view.position = None
        self.own_version = max(self.own_version, message["version"])

    def _own_news(self, message: dict) -> bool:
        """A message about this screen's own ticket leaving the line, arriving
        while the screen is behind (a gap, a catch-up running): shown at once,
        not after the catch-up. The catch-up reads the queue's missed events in
        the process's one database thread, behind every other screen's and every
        request's; under a crowd that took longer than a visitor's admission
        lasted, and the page showed "waiting" until it expired (bench/waiting_room.py,
        session 9). Nothing such a page shows depends on the events it skips:
        its place is gone. A later message about the ticket replaces it; an
        older one (`own_version`) does not. True if the page changed."""
        ticket = message.get("ticket")
        if (message.get("type") != "queue.event" or not isinstance(ticket, dict)
                or ticket.get("id") != self.view.ticket_id or message.get("version", 0) <= self.own_version
                or not self._out_of_line(message)):
            return False
        self._take_status(message)
        return True

    def _apply_event(self, message: dict) -> bool:
        """Update the view from one event, without a query. True if it changed."""
        view = self.view
        ticket = message.get("ticket")
        if isinstance(ticket, dict) and ticket.get("id") == view.ticket_id:
            if not self._out_of_line(message):
                raise NeedsSnapshot  # a new place in line, a new ticket, an offer expiry
            if message["version"] < self.own_version:
                return False  # the page shows a later status already (`_own_news`)
            self._take_status(message)
            return True
        seats_changed = False
        if getattr(view.queue, "seats_free", None) is not None and "seats_taken" in message \
                and "capacity" in message:  # a waitlist's "N seats free now"
            free = message["capacity"] - message["seats_taken"]
            seats_changed, view.queue.seats_free = free != view.queue.seats_free, free
        if view.status != TicketStatus.WAITING or view.position is None:
            return seats_changed
        wait = view.estimated_wait
        if "service_seconds" in message:  # a completion moved the queue's service time
            view.service_seconds = message["service_seconds"]
        if "open_counters" in message:  # a counter opened, went on a break or closed
            view.open_counters = message["open_counters"]
        delta = 0
        placed_ahead = view.placed_ahead
        left, entered = message.get("left"), message.get("entered")
        if left and is_ahead(tuple(left), view.key):
            delta -= 1
            view.overtaken_by.discard(tuple(left))
        if entered and is_ahead(tuple(entered), view.key):
            delta += 1
            if entered[0] > view.priority:  # placed ahead after this ticket joined? (`selectors.overtakes`)
                if "entered_at" not in message:
                    raise NeedsSnapshot  # an event recorded before it carried the instant
                if overtakes(entered[0], message["entered_at"], of_priority=view.priority,
                             of_entered_at=view.entered_at):
                    view.overtaken_by.add(tuple(entered))
        view.position += delta
        return (delta != 0 or seats_changed or view.estimated_wait != wait
                or view.placed_ahead != placed_ahead)

    async def catch_up(self) -> None:
        """Fill the gap from what the server received, once more after
        `GAP_GRACE`; then apply the missed events from the database (read once
        per process for all screens of the queue); take a fresh snapshot if
        that cannot work."""
        for wait in (0, GAP_GRACE):
            if wait:
                await asyncio.sleep(wait)
            changed, stuck = self._fill()
            for frame in self._frames(changed):
                await self.send_frame(frame)
            if stuck:
                await self._snapshot()
                return
            if not self.behind():
                return
        for _ in range(WORK_ROUNDS):
            view = self.view
            asked = time.monotonic()
            events = await self.hub.events_after(view.queue_id, view.version)
            self._read_took = time.monotonic() - asked
            if events is None:
                await self._snapshot()
                return
            changed = False
            for message in events:
                if message["version"] <= view.version:
                    continue
                if message["version"] != view.version + 1:
                    await self._snapshot()
                    return
                try:
                    changed = self._apply_event(message) or changed
                except NeedsSnapshot:
                    await self._snapshot()
                    return
                view.version = message["version"]
            for frame in self._frames(changed):
                await self.send_frame(frame)
            if self.latest_seen <= view.version:
                return
        await self._snapshot()

    async def _snapshot(self) -> None:
        old_groups = self.queue_groups
        asked = time.monotonic()
        view = await self._fresh_view()
        self._snapshot_took = time.monotonic() - asked
        if view is None:  # deleted: nothing sensible to show
            await self.close_now(CLOSE_NOT_FOUND)
            return
        if view.ticket_id == self.view.ticket_id and view.queue_id == self.view.queue_id \
                and view.version < self.view.version:
            # Read before what the page applied meanwhile from the server's
            # live messages (`_step`, `_fill`): what it shows is newer.
            self._work_again = self.behind()
            return
        if view.ticket_id == self.view.ticket_id and view.version < self.own_version:
            # Read before the news the page already shows (`_own_news`): keep that.
            view.status, view.counter, view.call_count, view.position = (
                self.view.status, self.view.counter, self.view.call_count, None)
        new_groups = [group_for_queue(view.queue_id)]
        if new_groups != old_groups:  # followed a transfer into another queue
            await self.hub.join(new_groups, self)
            self.hub.leave([g for g in old_groups if g not in new_groups], self)
            self.queue_groups = new_groups
            self.latest_seen = view.version
            self.own_version = 0  # (versions are per queue: the old queue's say nothing here)
        self.view = view
        await self.send_frame(render.ticket_frame(view))
        if new_groups != old_groups:  # events between the read and the subscription
            got = await self.hub.lines.get(view.queue_id, fresh_after=time.monotonic())
            self.latest_seen = max(self.latest_seen, got.versions.get(view.queue_id, 0))
            if self.latest_seen > view.version:
                self._work_again = True


    async def _fresh_view(self) -> reads.TicketView | None:
        """The ticket as of now, its position from the queue's shared waiting line
        (loaded once for every screen asking meanwhile; no count per screen)."""
        for _attempt in range(reads.READ_ATTEMPTS):
            asked = time.monotonic()
            view = await self.hub.tickets.get(self.token)
            if view is None:
                return None
            view = view.own_copy()
            if view.status != TicketStatus.WAITING:
                return view
            got = await self.hub.lines.get(view.queue_id, fresh_after=asked)
            version, line = got.versions.get(view.queue_id, 0), got.value
            if version != view.version:
                continue  # the line moved between the two reads: read both again
            view.position = line.position(view.priority, view.seq)
            if view.position is None:
                continue
            view.open_counters, view.service_seconds = line.open_counters, line.service_seconds
            view.overtaken_by = line.overtaking(view.priority, view.entered_at)
            return view
        return await database_sync_to_async(reads.ticket_view)(self.token)


class SharedScreenConsumer(LiveConsumer):
    """A screen whose content is the same for everyone with the same key (a
    location's board, a counter's feed): rendered once per change per process."""

    target_id: str
    key: tuple[int, str]  # (location, counter or queue id; language)
    queue_ids: list[int]

    @property
    def shared(self) -> SharedRender:
        raise NotImplementedError

    async def start(self, refresh: bool = False) -> None:
        if refresh:
            got = await self.shared.get(self.key, fresh_after=time.monotonic())
        else:  # shared with the rest of a burst (see `Hub.good_reads_after`)
            got = await self.shared.get(self.key, need=self.hub.seen_versions(self.queue_ids),
                                        fresh_after=self.hub.good_reads_after(self.queue_groups, self.subscribed_at))
        self.shown = dict(got.versions)
        self.need: dict[int, int] = {}
        self.announced = dict(got.versions)
        self.last_html = got.value
        await self.send_frame(self.frame(got.value))
        self.ready = True
        frame = self._replay_early()
        if frame:
            await self.send_frame(frame)

    def apply(self, message: dict) -> str | None:
        queue_id, version = message.get("queue"), message.get("version", 0)
        frame = self.extra_frame(message) if message["type"] == "queue.event" else None
        if version > self.shown.get(queue_id, 0):
            self.need[queue_id] = max(self.need.get(queue_id, 0), version)
            self.request_work()
        return frame

    def extra_frame(self, message: dict) -> str | None:
        return None

    def behind(self) -> bool:
        return bool(self.need)

    def frame(self, value: str) -> str:
        """The frame that shows a shared render."""
        return render.partial(self.target_id, value)

    async def catch_up(self) -> None:
        need, self.need = self.need, {}
        got = await self.shared.get(self.key, need=need)
        for queue_id, version in got.versions.items():
            self.shown[queue_id] = max(self.shown.get(queue_id, 0), version)
        if got.value != self.last_html:
            self.last_html = got.value
            await self.send_frame(self.frame(got.value))


class DisplayConsumer(SharedScreenConsumer):
    """`ws/display/<location_slug>/`: the lobby board and the call announcements."""

    target_id = "display-board"
    kind = "display screen"

    @property
    def shared(self) -> SharedRender:
        return self.hub.boards

    def frame(self, value: str) -> str:
        return value  # already the board and the banner (`render.display_frame`)

    async def prepare(self) -> int | None:
        screen = await self.hub.displays.get(self.scope["url_route"]["kwargs"]["location_slug"])
        if screen is None:
            return CLOSE_NOT_FOUND
        self.language = screen.language  # the location's: one TV, many readers
        self.key, self.queue_ids = (screen.key, self.language), screen.queue_ids
        self.queue_groups = [group_for_queue(q) for q in screen.queue_ids]
        return None

    def extra_frame(self, message: dict) -> str | None:
        # Every call and recall is announced once, even if the board already shows it.
        queue_id, version = message["queue"], message["version"]
        if message.get("kind") in (Kind.CALLED, Kind.RECALLED) and version > self.announced.get(queue_id, 0):
            self.announced[queue_id] = version
            with translation.override(self.language):
                return render.partial("display-announce", render.display_announce(message))
        return None


class ConsoleConsumer(SharedScreenConsumer):
    """`ws/console/<counter_id>/`: staff only, at the counter's location."""

    target_id = "console-feed"
    kind = "console screen"
    staff_screen = True

    @property
    def shared(self) -> SharedRender:
        return self.hub.feeds

    async def prepare(self) -> int | None:
        user = await self.logged_in_user()
        if not user.is_authenticated:
            return CLOSE_UNAUTHENTICATED
        screen = await self.hub.consoles.get((user, self.scope["url_route"]["kwargs"]["counter_id"]))
        if isinstance(screen, NotFound):
            return CLOSE_NOT_FOUND
        if isinstance(screen, PermissionDenied):
            return CLOSE_FORBIDDEN
        # The staff member's language, else their browser's (as their pages pick it).
        language = screen.language or browser_language(self.scope)
        self.key, self.queue_ids = (screen.key, language), screen.queue_ids
        self.queue_groups = [group_for_queue(q) for q in screen.queue_ids]
        return None


class WaitlistBoardConsumer(SharedScreenConsumer):
    """`ws/waitlist/<queue_id>/`: the staff waitlist board, staff at the queue's location only."""

    target_id = "waitlist-board"
    staff_screen = True

    @property
    def shared(self) -> SharedRender:
        return self.hub.waitlists

    async def prepare(self) -> int | None:
        user = await self.logged_in_user()
        if not user.is_authenticated:
            return CLOSE_UNAUTHENTICATED
        queue_id = self.scope["url_route"]["kwargs"]["queue_id"]
        try:
            queue = await database_sync_to_async(access.access_queue)(user, queue_id)
            language = await database_sync_to_async(preferred_language)(user) or browser_language(self.scope)
        except NotFound:
            return CLOSE_NOT_FOUND
        except PermissionDenied:
            return CLOSE_FORBIDDEN
        if queue.kind != queue.Kind.CAPACITY:
            return CLOSE_NOT_FOUND
        self.key, self.queue_ids = (queue.pk, language), [queue.pk]
        self.queue_groups = [group_for_queue(queue.pk)]
        return None
