"""The per-process fan-out: one channel-layer subscription per queue, many screens.

Stock Channels gives every consumer its own channel and group membership, so
one event to a queue watched by 5,000 phones is 5,000 channel sends (inside
Redis for the core layer, 5,000 queue hand-offs and task wake-ups for the
pub/sub and in-memory layers). Here each server process has one `Hub` (per
event loop) with one channel; it joins `queue.<id>` once for all local
screens of that queue and calls each screen's `on_queue_messages` directly,
which decides in microseconds, without a query, what (if anything) to send.

What a hub also owns, because it is per process and shared by its screens:
- `events_after`: a screen's missed events, from the queue's recent
  messages this hub received (`_recent`) when it holds every one of them,
  else one query per (queue, version) however many screens missed the same;
- `boards`/`feeds`: the latest rendered lobby board per location and console
  feed per counter, refreshed once per change for all screens showing it;
- `lines`: each queue's waiting keys at its latest version, so a burst of
  phones (re)connecting costs no position count at all; brought forward from
  the events received (`_advance_line`) rather than read again;
- `tickets`: the ticket lookups of connecting patient screens, batched: every
  token asked for while one lookup runs goes into the next, one query for the
  whole batch (a reconnect storm of 5,000 phones is a handful of queries, not
  5,000 hops through the process's one database thread); `displays` and
  `consoles` the same for lobby displays (by location slug) and staff
  consoles (the access check per user and counter, in one hop per batch);
- `rooms`: a waiting room's events reach its screens in one batch per
  `LIVE_ROOM_UPDATE_EVERY`, one frame per screen per batch (its final place);
- `admission`: connecting screens start a few per loop turn, so a storm
  queues in memory instead of holding the loop (and staff's requests), and
  none while an HTTP request runs (precedence.py: staff first);
- under daphne, garbage collection kept out of the fan-outs (collector.py);
- the graceful shutdown (under daphne): every screen is closed with
  `CLOSE_RESTART`, spread over `LIVE_SHUTDOWN_SPREAD` seconds;
- with the in-memory layer, a local tick (the worker cannot reach this
  process), and with every layer, re-subscription after the layer failed,
  followed by a resync of every screen (messages may have been lost).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.utils import translation

from . import collector, precedence, publisher, reads, render
from .batch import RoomBatch
from .codes import CLOSE_RESTART
from .outage import Outage, QuietTracebacks

log = logging.getLogger(__name__)

# One outage record per process for the channel layer (Redis): our own
# failures and channels_redis's per-second tracebacks count into it; the end
# is logged when a subscription succeeds again.
layer_outage = Outage("channel layer (Redis)")

LAYER_TIMEOUT = 3.0  # seconds for one subscribe/receive call on the layer before it counts as lost
MAINTAIN_EVERY = 2.0  # seconds between health checks of the subscription
LOCAL_TICK_EVERY = 4.0  # in-memory layer only: how often screens compare versions with the DB
REJOIN_EVERY = 600.0  # seconds between refreshes of group membership (the core Redis layer expires it after a day)
YIELD_EVERY = 0.005  # seconds of fan-out work between yields to the event loop
BATCH_LIMIT = 500  # tokens per batched ticket lookup
ADMIT_PER_TURN = 25  # connecting screens that send their snapshot per event-loop turn
RECEIVE_BACKOFF_FIRST = 0.5  # seconds before receiving again after the layer failed; doubles
RECEIVE_BACKOFF_MAX = 10.0
# A shared render that a screen joins may have started before the version the
# screen needs was committed; one more load then shows it. A third covers a
# write landing during the second; after that the screen takes what it got and
# its version check (catch-up, tick) repairs it, instead of waiting unbounded
# behind a queue that changes faster than it renders.
RENDER_ATTEMPTS = 3
# A waiting room's screens get the room's events at most once per
# `settings.LIVE_ROOM_UPDATE_EVERY` seconds (0.5), as one batch: each screen
# applies the whole batch and sends one frame (its final place). Every
# admission moves every waiting visitor up one place, so sending each event
# at once was a frame per waiting page per admission: 162,145 frames for
# 1,000 pages in a bench run (351 admissions), 100,000 a second at 10,000
# pages and 10 admissions a second.
# A waiting room's tick naming versions its screens were not yet handed waits
# this long for them before it goes to the screens (`Hub._room_tick`).
ROOM_TICK_GRACE = 2.0  # seconds
SHUTDOWN_SLICE = 0.05  # seconds between batches of closes while spreading a restart
CLOSE_FLUSH_SECONDS = 0.2  # after the last close: time for the close frames to reach the wire before the reactor stops

# A screen behind (a version gap, a late message) catches up from the queue
# messages this hub received, not from the database, when it holds all it
# missed: under a crowd the one database thread answered a catch-up seconds
# late, and the events that arrived meanwhile made the page behind again, so
# room pages chased the line and showed an old place after their admission
# (bench/waiting_room.py, session 9: 25 of 1,013 never saw it live).
RECENT_KEEP = reads.CATCH_UP_LIMIT  # versions kept per queue (more missed than this: a snapshot anyway)
LINE_ADVANCE_FOR = 10.0  # seconds after its read that a connecting screen takes a waiting line brought forward from events

_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}


@dataclass
class Render:
    versions: dict[int, int]
    value: object  # the rendered HTML, or a reads.WaitingLine
    started: float


class SharedRender:
    """The latest render per key (location, counter, queue) in this process,
    loaded at most once at a time and shared by every screen that shows it.
    `load(key, previous)` returns (versions, value); it may reuse `previous`.
    `advance(key, render)`, if given, brings a render up to the newest
    version without a load where it can (None where it cannot); the result
    keeps its base's `started`, so a caller that needs a read started after
    some moment still gets one."""

    def __init__(self, load: Callable[[int, Render | None], tuple[dict[int, int], object]],
                 advance: Callable[[int, Render], Render | None] | None = None):
        self._load = database_sync_to_async(load)
        self._advance = advance
        self.latest: dict[int, Render] = {}
        self.inflight: dict[int, tuple[float, asyncio.Task]] = {}

    async def _run(self, key: int, started: float) -> Render:
        versions, value = await self._load(key, self.latest.get(key))
        got = Render(versions, value, started)
        current = self.latest.get(key)
        if current is None or current.started <= started:
            self.latest[key] = got
        return got

    async def get(self, key: int, *, need: dict[int, int] | None = None,
                  fresh_after: float | None = None) -> Render:
        """A render that shows at least versions `need` and was started after
        `fresh_after` (a screen's subscription time, so it misses nothing)."""

        def good(r: Render | None) -> bool:
            return (r is not None and (fresh_after is None or r.started >= fresh_after)
                    and all(r.versions.get(q, 0) >= v for q, v in (need or {}).items()))

        got = self.latest.get(key)
        for _attempt in range(RENDER_ATTEMPTS):
            got = self.newest(key, fresh_after) or got
            if good(got):
                return got
            running = self.inflight.get(key)
            if running is None or (fresh_after is not None and running[0] < fresh_after):
                started = time.monotonic()
                task = asyncio.get_running_loop().create_task(self._run(key, started))
                running = self.inflight[key] = (started, task)
                task.add_done_callback(lambda _t, k=key, s=started: self._forget(k, s))
            got = await asyncio.shield(running[1])
        return got

    def newest(self, key: int, fresh_after: float | None = None) -> Render | None:
        """The latest render, brought forward without a load where it can be
        (`advance`), if one was started after `fresh_after`; else None."""
        got = self.latest.get(key)
        if got is None or (fresh_after is not None and got.started < fresh_after):
            return None
        ahead = self._advance(key, got) if self._advance is not None else None
        if ahead is None:
            return got
        if self.latest.get(key) is got:
            self.latest[key] = ahead
        return ahead

    def _forget(self, key: int, started: float) -> None:
        running = self.inflight.get(key)
        if running is not None and running[0] == started:
            del self.inflight[key]


class Admission:
    """Server-side admission of connecting screens: at most `per_turn` of
    them start (snapshot, render, first frame) per turn of the event loop,
    the rest wait here, in memory, in arrival order. A batched lookup wakes
    hundreds of screens at once; run in one loop turn they would hold every
    other callback (a staff click's HTTP request and response) for that long.
    Their sockets are accepted already, so waiting here times nothing out."""

    def __init__(self, per_turn: int = ADMIT_PER_TURN):
        self.per_turn = per_turn
        self.waiting: collections.deque[asyncio.Future] = collections.deque()
        self._pump: asyncio.Task | None = None
        self.most_waiting = 0  # the longest queue seen (tests, metrics)

    async def enter(self) -> None:
        if not self.waiting and (self._pump is None or self._pump.done()):
            # Nobody queued: the first screen of a turn goes straight in, and
            # the pump lets the rest of this turn's arrivals in a few at a time.
            self._pump = asyncio.get_running_loop().create_task(self._run())
            return
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        self.most_waiting = max(self.most_waiting, len(self.waiting))
        await future

    async def _run(self) -> None:
        await asyncio.sleep(0)
        while self.waiting:
            await precedence.after_http()  # staff's requests first (precedence.py)
            for _ in range(min(self.per_turn, len(self.waiting))):
                future = self.waiting.popleft()
                if not future.done():  # a screen that left meanwhile was cancelled
                    future.set_result(None)
            await asyncio.sleep(0)  # the admitted run in the next turn, beside everything else


class Batch:
    """Lookups by key, done together: every key asked for while one lookup runs
    waits for the next, which fetches them all in one call of `load(keys)`
    (a dict key -> value). At most one call runs at a time per batch, so a
    storm of connects queues here, in memory, instead of piling up threads,
    database connections or handshake timeouts."""

    def __init__(self, load: Callable[[list], dict], limit: int = BATCH_LIMIT):
        self._load = database_sync_to_async(load)
        self.limit = limit
        self.pending: dict[object, list[asyncio.Future]] = {}
        self._runner: asyncio.Task | None = None
        self.calls = 0  # loads done (tests, metrics)

    async def get(self, key):
        future = asyncio.get_running_loop().create_future()
        self.pending.setdefault(key, []).append(future)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._run())
        return await future

    async def _run(self) -> None:
        while self.pending:
            await asyncio.sleep(0)  # the rest of this burst's connects join the batch
            await precedence.after_http()  # staff's requests first (precedence.py)
            keys = list(self.pending)[:self.limit]
            waiters = {key: self.pending.pop(key) for key in keys}
            self.calls += 1
            try:
                found = await self._load(keys)
            except Exception as exc:  # every waiter of this batch sees the failure
                for futures in waiters.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for key, futures in waiters.items():
                for future in futures:
                    if not future.done():
                        future.set_result(found.get(key))


# Shared screens are keyed (id, language): one render per change per language,
# shared by every screen of that language (a location's displays all speak its
# language; consoles and waitlist boards their staff member's).
def _board(key: tuple[int, str], _previous=None) -> tuple[dict[int, int], str]:
    location_id, language = key
    context = reads.display_context(location_id)
    with translation.override(language):
        return context["versions"], render.display_frame(context)


def _feed(key: tuple[int, str], _previous=None) -> tuple[dict[int, int], str]:
    counter_id, language = key
    context = reads.console_context(counter_id)
    with translation.override(language):
        return context["versions"], render.console_feed(context)


def _waitlist_board(key: tuple[int, str], _previous=None) -> tuple[dict[int, int], str]:
    from ..waitlist_board import board_context

    queue_id, language = key
    context = board_context(queue_id)
    with translation.override(language):
        return context["versions"], render.waitlist_board(context)


class Hub:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.layer = get_channel_layer()
        self.in_memory = isinstance(self.layer, InMemoryChannelLayer)
        self.channel: str | None = None
        self.members: dict[str, set] = {}
        self.subscribed: set[str] = set()
        self.lost = False  # the layer failed since the last (re)subscription
        self.subscribed_since: dict[str, float] = {}
        self.seen: dict[int, int] = {}  # highest version any message announced, per queue
        self._receiver: asyncio.Task | None = None
        self._maintainer: asyncio.Task | None = None
        self._catch_ups: dict[tuple[int, int], asyncio.Task] = {}
        self._recent: dict[int, dict[int, dict]] = {}  # per queue, its last events received, by version
        self.boards = SharedRender(_board)
        self.feeds = SharedRender(_feed)
        self.waitlists = SharedRender(_waitlist_board)
        self.lines = SharedRender(reads.waiting_line, advance=self._advance_line)
        self.tickets = Batch(reads.ticket_row_views)
        self.displays = Batch(reads.display_screens)
        self.consoles = Batch(reads.console_screens)
        self.admission = Admission()
        self.rooms: set[int] = set()  # queues that back a waiting room (their screens say so)
        self._room_batches: dict[int, list[dict]] = {}
        self._room_flushers: dict[int, asyncio.Task] = {}
        self._room_held: dict[int, set[int]] = {}  # ids of messages a room's last batch held back
        self._room_handed: dict[int, int] = {}  # the highest version handed to a room's screens
        self._room_ticks: dict[int, tuple[dict, float]] = {}  # a room's tick held back, since when (`_room_tick`)
        self._room_owed: dict[int, set] = {}  # a room's screens owed a frame (far back in line: `owe`)
        self.screens: set = set()  # every accepted screen of this process
        self.stopping = False
        publisher.set_home_loop(loop)
        self._watch_shutdown()

    @classmethod
    def current(cls) -> Hub:
        loop = asyncio.get_running_loop()
        hub = _hubs.get(loop)
        if hub is None:
            for old in [lp for lp in _hubs if lp.is_closed()]:
                del _hubs[old]
            hub = _hubs[loop] = cls(loop)
        return hub

    # --- membership --------------------------------------------------------
    async def join(self, groups: list[str], screen) -> None:
        """Subscribe `screen` to `groups`; returns once the layer subscription is
        in place (or has failed: then the maintainer retries and resyncs)."""
        for group in groups:
            self.members.setdefault(group, set()).add(screen)
        self._start()
        missing = [g for g in groups if g not in self.subscribed]
        if missing:
            await self._subscribe(missing)

    def leave(self, groups: list[str], screen) -> None:
        # The layer subscription stays: phones reconnect constantly, and an idle
        # group costs nothing; the next rejoin drops groups without screens.
        for group in groups:
            members = self.members.get(group)
            if members is not None:
                members.discard(screen)
                if not members:
                    del self.members[group]
        for owed in self._room_owed.values():
            owed.discard(screen)

    async def _subscribe(self, groups: list[str]) -> bool:
        try:
            if self.channel is None:
                self.channel = await asyncio.wait_for(self.layer.new_channel("live-hub."), LAYER_TIMEOUT)
                self._start()
            for group in groups:
                await asyncio.wait_for(self.layer.group_add(group, self.channel), LAYER_TIMEOUT)
                if group not in self.subscribed:
                    self.subscribed_since[group] = time.monotonic()
                self.subscribed.add(group)
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            layer_outage.failed(exc)
            self.lost = True
            return False

    def _start(self) -> None:
        if self._maintainer is None:
            self._maintainer = self.loop.create_task(self._maintain())
        if self._receiver is None and self.channel is not None:
            self._receiver = self.loop.create_task(self._receive())

    def good_reads_after(self, groups: list[str], joined_at: float) -> float:
        """When a shared read must have started to serve a screen that joined
        `groups` at `joined_at`: once this hub was subscribed to all of them
        (and the layer has not failed since), every later event either reaches
        the screen or is already counted in `seen` (which the screen asks the
        read to show). So a burst of screens shares one read, instead of each
        needing one started after its own join."""
        since = [self.subscribed_since.get(g) for g in groups]
        if self.lost or not since or None in since:
            return joined_at
        return max(since)

    def seen_versions(self, queue_ids) -> dict[int, int]:
        """The newest version any message announced, per queue: what a shared read must show."""
        return {q: self.seen.get(q, 0) for q in queue_ids}

    # --- receiving -----------------------------------------------------------
    async def _receive(self) -> None:
        delay = RECEIVE_BACKOFF_FIRST
        while True:
            try:
                message = await self.layer.receive(self.channel)
                delay = RECEIVE_BACKOFF_FIRST
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the core Redis layer raises while Redis is away
                layer_outage.failed(exc)
                self.lost = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECEIVE_BACKOFF_MAX)
                continue
            await self.dispatch(message)

    async def dispatch(self, message: dict) -> None:
        """Hand one queue message to every local screen of that queue."""
        if not isinstance(message, dict) or message.get("type") not in ("queue.event", "queue.tick"):
            return
        queue_id, version = message.get("queue"), message.get("version", 0)
        if isinstance(version, int) and version > self.seen.get(queue_id, 0):
            self.seen[queue_id] = version  # at once: a screen connecting meanwhile reads past it
        if message["type"] == "queue.event" and isinstance(version, int):
            self._remember(queue_id, version, message)
        if queue_id in self.rooms:
            self._room_batches.setdefault(queue_id, []).append(message)
            if queue_id not in self._room_flushers:
                self._room_flushers[queue_id] = self.loop.create_task(self._flush_room(queue_id))
            return
        await self.fan_out(queue_id, [message])

    async def _flush_room(self, queue_id: int) -> None:
        """Hand a waiting room's events to its screens as one batch per
        `LIVE_ROOM_UPDATE_EVERY`, in order; one flusher per room at a time, so a
        batch never overtakes the one before it. Ends when a period brought nothing."""
        from django.conf import settings

        try:
            while True:
                await asyncio.sleep(settings.LIVE_ROOM_UPDATE_EVERY)
                pending = self._room_batches.pop(queue_id, None)
                if not pending and not self._room_owed.get(queue_id):
                    return
                if pending:
                    ready, held = self._in_order(queue_id, pending)
                    if held:
                        self._room_batches.setdefault(queue_id, [])[:0] = held
                    if ready:
                        await self.fan_out(queue_id, ready)
                await self._pay_owed(queue_id)
        finally:
            self._room_flushers.pop(queue_id, None)

    def owe(self, queue_id: int, screen) -> None:
        """`screen` (a waiting room's page) shows less than it should until its
        cadence lets it have a frame (`TicketConsumer.owed_frame`): asked again
        every batch period, with or without new events, until paid."""
        self._room_owed.setdefault(queue_id, set()).add(screen)
        if queue_id not in self._room_flushers:
            self._room_flushers[queue_id] = self.loop.create_task(self._flush_room(queue_id))

    async def _pay_owed(self, queue_id: int) -> None:
        owed = self._room_owed.pop(queue_id, None)
        if not owed:
            return
        now, slice_started = time.monotonic(), time.perf_counter()
        for screen in owed:
            if screen not in self.screens:
                continue  # gone
            try:
                frame = screen.owed_frame(now)
                if frame is not None and not screen.send_frame_now(frame):
                    await screen.send_frame(frame)
            except Exception:
                log.exception("live screen failed on its owed frame")
                screen._owed = False
            if screen._owed:
                self._room_owed.setdefault(queue_id, set()).add(screen)
            if time.perf_counter() - slice_started > YIELD_EVERY:
                await asyncio.sleep(0)
                slice_started = time.perf_counter()

    def _in_order(self, queue_id: int, pending: list[dict]) -> tuple[RoomBatch, list[dict]]:
        """The messages to hand out now, in version order, and those held back.

        Two server processes publish a room's events, each as its own commits
        end, so they reach the hub out of version order. Handed out as they
        came, a screen met a version gap and caught up from the database, and
        under a crowd nearly every screen was catching up all the time (27 %
        of a server's samples, py-spy). So a batch is sorted, and what follows
        a gap waits one more period for the missing version; held once, it goes
        anyway (then the screens' catch-up repairs it, as before)."""
        ticks = [m for m in pending if m.get("type") == "queue.tick" and isinstance(m.get("version"), int)]
        if ticks:
            pending = [m for m in pending if not (m.get("type") == "queue.tick" and isinstance(m.get("version"), int))]
        ordered = sorted(pending, key=lambda m: m.get("version") if isinstance(m.get("version"), int) else 0)
        held_before = self._room_held.pop(queue_id, set())
        cut, last = len(ordered), self._room_handed.get(queue_id)
        for n, message in enumerate(ordered):
            version = message.get("version")
            if not isinstance(version, int) or (last is not None and version <= last):
                # Late after its successors went out: it still goes in this batch
                # (pages behind it apply it, its own ticket's page shows its
                # news at once), but moves neither `last` nor the cut.
                continue
            if last is not None and version > last + 1:
                cut = n
                break
            last = version
        if cut < len(ordered) and any(id(m) in held_before for m in ordered[cut:]):
            cut = len(ordered)  # waited a period already: no more
        ready, held = RoomBatch(ordered[:cut]), ordered[cut:]
        if held:
            self._room_held[queue_id] = {id(m) for m in held}
        versions = [m["version"] for m in ready if isinstance(m.get("version"), int)]
        if versions:
            self._room_handed[queue_id] = max(versions + [self._room_handed.get(queue_id, 0)])
        if ticks:
            tick = self._room_tick(queue_id, max(ticks, key=lambda m: m["version"]))
            if tick is not None:
                ready.append(tick)  # (a batch with a tick goes event by event: the screens catch up)
                ready.__dict__.pop("summary", None)
            elif queue_id in self._room_ticks:
                held.append(self._room_ticks[queue_id][0])
        return ready, held

    def _room_tick(self, queue_id: int, tick: dict) -> dict | None:
        """The worker's tick (the queue's version, every few seconds) for a
        room's screens, or None while it tells them nothing.

        Under a crowd a tick nearly always names versions still on their way
        from the other server process; handed out, it sent every page to
        read the events from the database (13.6 % of a server's event loop
        under a crowd of 3,000, py-spy, docs/benchmarks.md session 9). So a
        tick no later than what the screens were handed is dropped, a later
        one waits up to `ROOM_TICK_GRACE` for its events, then goes (the
        screens repair what was lost, as before)."""
        handed = self._room_handed.get(queue_id)
        held = self._room_ticks.get(queue_id)
        if held is not None and held[0]["version"] >= tick["version"]:
            tick = held[0]
        if handed is not None and tick["version"] <= handed:
            self._room_ticks.pop(queue_id, None)
            return None
        now = time.monotonic()
        since = held[1] if held is not None else now
        if handed is None or now - since >= ROOM_TICK_GRACE:
            self._room_ticks.pop(queue_id, None)
            return tick
        self._room_ticks[queue_id] = (tick, since)
        return None

    async def fan_out(self, queue_id: int, messages: list[dict]) -> None:
        """Hand queue messages (in version order) to every local screen of the queue."""
        group = publisher.group_for_queue(queue_id)
        slice_started = time.perf_counter()
        collector.fan_out_started()  # no full collection between its slices (collector.py)
        try:
            for screen in list(self.members.get(group, ())):
                try:
                    for frame in screen.on_queue_messages(messages):
                        if not screen.send_frame_now(frame):  # straight to the socket (wire.py)
                            await screen.send_frame(frame)  # the ASGI path (daphne writes without suspending)
                except Exception:  # one broken screen must not stop the others
                    log.exception("live screen failed on %s", messages[-1].get("type"))
                if time.perf_counter() - slice_started > YIELD_EVERY:
                    # Let the loop answer HTTP requests and flush sockets meanwhile:
                    # a fan-out to thousands must not hold a staff click's response.
                    await asyncio.sleep(0)
                    slice_started = time.perf_counter()
        finally:
            collector.fan_out_finished()

    async def _maintain(self) -> None:
        last_rejoin = last_tick = time.monotonic()
        while True:
            await asyncio.sleep(MAINTAIN_EVERY)
            try:
                if collector.enabled():
                    collector.tick()
                now = time.monotonic()
                if (self.lost and not self.members) and now - last_rejoin <= REJOIN_EVERY:
                    pass  # nothing to probe the layer with: the next screen's join will
                elif self.lost or set(self.members) - self.subscribed or now - last_rejoin > REJOIN_EVERY:
                    was_lost = self.lost
                    self.lost = False
                    if now - last_rejoin > REJOIN_EVERY:
                        last_rejoin = now
                        await self._drop_idle_groups()
                        self.subscribed.clear()
                        self.subscribed_since.clear()
                    if await self._subscribe(list(self.members)) and was_lost:
                        layer_outage.ok()
                        log.info("resyncing %d queue group(s) after the channel layer failed", len(self.members))
                        await self.local_tick()
                if self.in_memory and now - last_tick > LOCAL_TICK_EVERY:
                    last_tick = now
                    await self.local_tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live hub maintenance failed")

    async def _drop_idle_groups(self) -> None:
        watched = {publisher.queue_of_group(g) for g in self.members}
        for queue_id in [q for q in self._recent if q not in watched]:
            del self._recent[queue_id]  # (a queue without screens here: nobody to catch up)
        for group in self.subscribed - set(self.members):
            try:
                await asyncio.wait_for(self.layer.group_discard(group, self.channel), LAYER_TIMEOUT)
            except Exception:
                pass

    async def local_tick(self) -> None:
        """Compare every local queue's version with the database (one query)."""
        ids = [publisher.queue_of_group(g) for g in self.members]
        if not ids:
            return
        versions = await database_sync_to_async(reads.queue_versions)(ids)
        for queue_id, version in versions.items():
            await self.dispatch({"type": "queue.tick", "queue": queue_id, "version": version})

    # --- shared reads --------------------------------------------------------
    def _remember(self, queue_id: int, version: int, message: dict) -> None:
        """Keep `message` among the queue's recent events (`RECENT_KEEP` versions;
        a late one too: the screens that missed it catch up from here)."""
        recent = self._recent.setdefault(queue_id, {})
        recent[version] = message
        if len(recent) > 2 * RECENT_KEEP:  # prune in bulk: amortised, not per message
            floor = self.seen.get(queue_id, version) - RECENT_KEEP
            self._recent[queue_id] = {v: m for v, m in recent.items() if v > floor}

    def recent_run(self, queue_id: int, version: int) -> list[dict]:
        """The queue's events this hub received right after `version`, in order,
        up to the first one it has not received (none if that is the next)."""
        recent = self._recent.get(queue_id)
        run: list[dict] = []
        if recent:
            while (message := recent.get(version + 1 + len(run))) is not None:
                run.append(message)
        return run

    def recent_after(self, queue_id: int, version: int) -> list[dict] | None:
        """The queue's events after `version` up to the newest this hub has seen,
        if it received every one of them; None if one is missing (lost while the
        layer was away, still on its way from another process, or announced only
        by a tick): the database has it."""
        newest = self.seen.get(queue_id, 0)
        if newest - version > RECENT_KEEP:
            return None
        run = self.recent_run(queue_id, version)
        return run[:newest - version] if version + len(run) >= newest else None

    def _advance_line(self, queue_id: int, render: Render) -> Render | None:
        """A queue's waiting line (`lines`) brought up to the newest version
        this hub received without a gap, from those events' keys, not read
        again: under a crowd every connecting page needed a line newer than
        the last read, and reading 10,000 waiting keys one read after another
        took a fifth of a server's samples (py-spy, bench/waiting_room.py,
        session 11). How old a read may be brought forward is the caller's
        `fresh_after` (`SharedRender.newest` never advances an older one): a
        connecting screen takes none older than `LINE_ADVANCE_FOR`, so what no
        event says (the service time of recent stays) is read afresh."""
        run = self.recent_run(queue_id, render.versions.get(queue_id, 0))
        line = render.value.advanced(run) if run else None
        if line is None:
            return None
        return Render({queue_id: run[-1]["version"]}, line, render.started)

    async def events_after(self, queue_id: int, version: int) -> list[dict] | None:
        """Missed events: from the hub's recent messages if it holds them all
        (`recent_after`), else read once for every local screen that missed the same ones."""
        recent = self.recent_after(queue_id, version)
        if recent is not None:
            return recent
        key = (queue_id, version)
        task = self._catch_ups.get(key)
        if task is None:
            task = self.loop.create_task(database_sync_to_async(reads.event_messages)(queue_id, version))
            self._catch_ups[key] = task
            task.add_done_callback(lambda _t: self._catch_ups.pop(key, None))
        return await asyncio.shield(task)

    # --- graceful shutdown -------------------------------------------------------
    def _watch_shutdown(self) -> None:
        """Under daphne (Twisted's reactor), close the screens before the process exits."""
        reactor = sys.modules.get("twisted.internet.reactor")
        if reactor is None or not getattr(reactor, "running", False):
            return
        from twisted.internet.defer import Deferred

        def before_shutdown():
            return Deferred.fromFuture(self.loop.create_task(self.shutdown()))

        reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)

    async def shutdown(self, spread: float | None = None) -> None:
        """Close every screen with CLOSE_RESTART, in random order spread over
        `spread` seconds: each phone's htmx back-off starts from its own close,
        so they come back (to the other processes, or to this one restarted)
        spread out rather than all in the same instant. Screens connecting
        meanwhile are left waiting; the process exit drops them."""
        from django.conf import settings

        self.stopping = True
        spread = settings.LIVE_SHUTDOWN_SPREAD if spread is None else spread
        screens = list(self.screens)
        random.shuffle(screens)
        log.info("closing %d live screen(s) over %.1f s for a restart", len(screens), spread)
        slices = max(1, int(spread / SHUTDOWN_SLICE))
        per_slice = -(-len(screens) // slices)
        started = time.monotonic()
        for k in range(slices):
            for screen in screens[k * per_slice:(k + 1) * per_slice]:
                try:
                    await screen.close_now(CLOSE_RESTART, quiet=True)
                except Exception:
                    pass
            if (k + 1) * per_slice >= len(screens):
                break
            await asyncio.sleep(max(0.0, started + spread * (k + 1) / slices - time.monotonic()))
        await asyncio.sleep(CLOSE_FLUSH_SECONDS)

    async def close(self) -> None:
        """Stop the hub's tasks and leave its groups (tests; server shutdown)."""
        for task in (self._receiver, self._maintainer, *self._room_flushers.values()):
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        if self.channel is not None:
            for group in list(self.subscribed):
                try:
                    await asyncio.wait_for(self.layer.group_discard(group, self.channel), LAYER_TIMEOUT)
                except Exception:
                    pass
        self.subscribed.clear()
        _hubs.pop(self.loop, None)


async def close_current() -> None:
    hub = _hubs.get(asyncio.get_running_loop())
    if hub is not None:
        await hub.close()


def _layer_failed_somewhere() -> None:
    """channels_redis logged a failure on this loop: its hub re-subscribes and resyncs."""
    try:
        hub = _hubs.get(asyncio.get_running_loop())
    except RuntimeError:
        return
    if hub is not None:
        hub.lost = True


for _name in ("channels_redis.pubsub", "channels_redis.core"):
    logging.getLogger(_name).addFilter(QuietTracebacks(layer_outage, _layer_failed_somewhere))
