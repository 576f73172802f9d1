"""WebSocket screens: the patient's ticket, the lobby display, the staff console feed.

Each connection: check access, subscribe (through the process's `Hub`),
accept, send the snapshot, then apply events. A screen remembers the version
it shows per queue. An event one version ahead is applied; a gap, a tick
announcing a newer version, or a reconnect makes it read what it missed from
the database; an older or repeated version is ignored. Messages from the
browser are never needed: anything oversized, binary or too frequent closes
the socket with a code, anything else is ignored (a "refresh" asks for a
fresh snapshot).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from types import SimpleNamespace

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from .. import access
from ..models import QueueEvent, TicketStatus
from ..selectors import is_ahead
from ..errors import NotFound, PermissionDenied
from . import reads, render
from .hub import Hub, SharedRender
from .publisher import group_for_queue

log = logging.getLogger(__name__)

# Close codes (4000-4999 are the application's own).
CLOSE_UNSUPPORTED = 1003  # binary frame
CLOSE_POLICY = 1008  # too many messages
CLOSE_TOO_BIG = 1009
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404

MAX_TEXT = 4096
MAX_MESSAGES = 20  # per MESSAGE_WINDOW seconds
MESSAGE_WINDOW = 10.0
EARLY_LIMIT = 100  # events buffered while the snapshot loads
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,32}")

Kind = QueueEvent.Kind


class NeedsSnapshot(Exception):
    """The event touches the screen's own ticket in a way only the DB can tell."""


class LiveConsumer(AsyncWebsocketConsumer):
    # No per-consumer channel: the hub holds one subscription per queue for the
    # whole process and calls on_queue_message directly (see hub.py).
    channel_layer_alias = "live-screens-use-the-hub"

    queue_groups: list[str]

    async def connect(self) -> None:
        self.hub = Hub.current()
        self.queue_groups = []
        self.ready = False
        self.early: list[dict] = []
        self.overflowed = False
        self._messages: list[float] = []
        self._work: asyncio.Task | None = None
        self._work_again = False
        try:
            refusal = await self.prepare()
        except Exception:
            log.exception("live screen could not start")
            refusal = 1011
        if refusal is not None:
            await self.close(code=refusal)
            return
        await self.hub.join(self.queue_groups, self)
        self.subscribed_at = time.monotonic()  # reads started after this miss no event
        await self.accept()
        await self.start()

    async def disconnect(self, code) -> None:
        hub = getattr(self, "hub", None)
        if hub is not None:
            hub.leave(self.queue_groups, self)
        work = getattr(self, "_work", None)
        if work is not None:
            work.cancel()

    async def send_frame(self, text: str) -> None:
        await self.send(text_data=text)

    # --- from the hub (synchronous: runs once per screen per broadcast) ----------
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
        for _ in range(5):
            self._work_again = False
            try:
                await self.catch_up()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live screen could not catch up")
            if not self._work_again:
                return

    # --- from the browser ----------------------------------------------------
    async def receive(self, text_data=None, bytes_data=None) -> None:
        try:
            if text_data is None:
                await self.close(code=CLOSE_UNSUPPORTED)
                return
            if len(text_data) > MAX_TEXT:
                await self.close(code=CLOSE_TOO_BIG)
                return
            now = time.monotonic()
            self._messages = [t for t in self._messages if now - t < MESSAGE_WINDOW] + [now]
            if len(self._messages) > MAX_MESSAGES:
                await self.close(code=CLOSE_POLICY)
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
        except Exception:  # a consumer never crashes on input
            log.exception("live screen: bad client message ignored")

    # --- per screen ----------------------------------------------------------
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

    async def prepare(self) -> int | None:
        self.token = self.scope["url_route"]["kwargs"]["token"]
        if not TOKEN_RE.fullmatch(self.token):
            return CLOSE_NOT_FOUND
        self.view = await database_sync_to_async(reads.ticket_row_view)(self.token)
        if self.view is None:
            return CLOSE_NOT_FOUND
        self.latest_seen = self.view.version
        self.queue_groups = [group_for_queue(self.view.queue_id)]
        return None

    async def start(self, refresh: bool = False) -> None:
        if refresh:
            await self._snapshot()
            return
        # The row was read before subscribing. The queue's waiting line gives
        # the position and a version from which on every event reaches us: the
        # hub's cached line if still exact (no query at all), else one loaded
        # after our subscription and shared with every screen connecting
        # meanwhile. If the ticket left the line in between, re-read it.
        got = self.hub.current_line(self.view.queue_id)
        if got is None or got.versions.get(self.view.queue_id, 0) < self.view.version:
            got = await self.hub.lines.get(self.view.queue_id, fresh_after=self.subscribed_at)
        version, line = got.versions.get(self.view.queue_id, 0), got.value
        self.latest_seen = max(self.latest_seen, version)
        if self.view.status == TicketStatus.WAITING:
            position = line.position(self.view.priority, self.view.seq)
            if position is None:
                await self._snapshot()
            else:
                self.view.position, self.view.open_counters, self.view.version = (
                    position, line.open_counters, version)
                self.view.service_seconds = line.service_seconds
                await self.send_frame(render.ticket_frame(self.view))
                render.warm_next_place(self.view)
        else:
            await self.send_frame(render.ticket_frame(self.view))
        self.ready = True
        frame = self._replay_early()
        if frame:
            await self.send_frame(frame)
        if self.latest_seen > self.view.version:
            self.request_work()

    def apply(self, message: dict) -> str | None:
        view = self.view
        if message.get("queue") != view.queue_id:
            return None
        version = message.get("version", 0)
        self.latest_seen = max(self.latest_seen, version)
        if version <= view.version:
            return None
        if message["type"] == "queue.tick" or version > view.version + 1 or (
                self._work is not None and not self._work.done()):
            self.request_work()
            return None
        try:
            changed = self._apply_event(message)
        except NeedsSnapshot:
            self.request_work()
            return None
        view.version = version
        return render.ticket_frame(view) if changed else None

    def _apply_event(self, message: dict) -> bool:
        """Update the view from one event, without a query. True if it changed."""
        view = self.view
        ticket = message.get("ticket")
        if isinstance(ticket, dict) and ticket.get("id") == view.ticket_id:
            if (message.get("kind") in (Kind.REQUEUED, Kind.TRANSFERRED_OUT)
                    or ticket.get("status") in (TicketStatus.WAITING, TicketStatus.OFFERED)):
                raise NeedsSnapshot  # a new place in line, a new ticket, an offer expiry
            view.status = ticket["status"]
            view.counter = SimpleNamespace(name=ticket["counter"]) if ticket.get("counter") else None
            view.call_count = ticket.get("call_count", view.call_count)
            view.position = None
            return True
        if view.status != TicketStatus.WAITING or view.position is None:
            return False
        delta = 0
        left, entered = message.get("left"), message.get("entered")
        if left and is_ahead(tuple(left), view.key):
            delta -= 1
        if entered and is_ahead(tuple(entered), view.key):
            delta += 1
        view.position += delta
        return delta != 0

    async def catch_up(self) -> None:
        """Apply the missed events from the database (read once per process for
        all screens of the queue); take a fresh snapshot if that cannot work."""
        for _ in range(5):
            view = self.view
            events = await self.hub.events_after(view.queue_id, view.version)
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
            if changed:
                await self.send_frame(render.ticket_frame(view))
            if self.latest_seen <= view.version:
                return
        await self._snapshot()

    async def _snapshot(self) -> None:
        old_groups = self.queue_groups
        view = await database_sync_to_async(reads.ticket_view)(self.token)
        if view is None:  # deleted: nothing sensible to show
            await self.close(code=CLOSE_NOT_FOUND)
            return
        new_groups = [group_for_queue(view.queue_id)]
        if new_groups != old_groups:  # followed a transfer into another queue
            await self.hub.join(new_groups, self)
            self.hub.leave([g for g in old_groups if g not in new_groups], self)
            self.queue_groups = new_groups
            self.latest_seen = view.version
        self.view = view
        await self.send_frame(render.ticket_frame(view))
        if new_groups != old_groups:  # events between the read and the subscription
            got = await self.hub.lines.get(view.queue_id, fresh_after=time.monotonic())
            self.latest_seen = max(self.latest_seen, got.versions.get(view.queue_id, 0))
            if self.latest_seen > view.version:
                self._work_again = True


class SharedScreenConsumer(LiveConsumer):
    """A screen whose content is the same for everyone with the same key (a
    location's board, a counter's feed): rendered once per change per process."""

    target_id: str
    key: int

    @property
    def shared(self) -> SharedRender:
        raise NotImplementedError

    async def start(self, refresh: bool = False) -> None:
        got = await self.shared.get(self.key, fresh_after=self.subscribed_at if not refresh else time.monotonic())
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

    @property
    def shared(self) -> SharedRender:
        return self.hub.boards

    def frame(self, value: str) -> str:
        return value  # already the board and the banner (`render.display_frame`)

    async def prepare(self) -> int | None:
        slug = self.scope["url_route"]["kwargs"]["location_slug"]
        location = await database_sync_to_async(reads.location_by_slug)(slug)
        if location is None:
            return CLOSE_NOT_FOUND
        self.key = location.pk
        queue_ids = await database_sync_to_async(reads.location_queue_ids)(location.pk)
        self.queue_groups = [group_for_queue(q) for q in queue_ids]
        return None

    def extra_frame(self, message: dict) -> str | None:
        # Every call and recall is announced once, even if the board already shows it.
        queue_id, version = message["queue"], message["version"]
        if message.get("kind") in (Kind.CALLED, Kind.RECALLED) and version > self.announced.get(queue_id, 0):
            self.announced[queue_id] = version
            return render.partial("display-announce", render.display_announce(message))
        return None


class ConsoleConsumer(SharedScreenConsumer):
    """`ws/console/<counter_id>/`: staff only, at the counter's location."""

    target_id = "console-feed"

    @property
    def shared(self) -> SharedRender:
        return self.hub.feeds

    async def prepare(self) -> int | None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return CLOSE_UNAUTHENTICATED
        counter_id = self.scope["url_route"]["kwargs"]["counter_id"]
        try:
            counter = await database_sync_to_async(access.access_counter)(user, counter_id)
        except NotFound:
            return CLOSE_NOT_FOUND
        except PermissionDenied:
            return CLOSE_FORBIDDEN
        self.key = counter.pk
        queue_ids = await database_sync_to_async(
            lambda: list(counter.queues.order_by("pk").values_list("pk", flat=True)))()
        self.queue_groups = [group_for_queue(q) for q in queue_ids]
        return None
