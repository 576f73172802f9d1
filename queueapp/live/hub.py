"""The per-process fan-out: one channel-layer subscription per queue, many screens.

Stock Channels gives every consumer its own channel and group membership, so
one event to a queue watched by 5,000 phones is 5,000 channel sends (inside
Redis for the core layer, 5,000 queue hand-offs and task wake-ups for the
pub/sub and in-memory layers). Here each server process has one `Hub` (per
event loop) with one channel; it joins `queue.<id>` once for all local
screens of that queue and calls each screen's `on_queue_message` directly,
which decides in microseconds, without a query, what (if anything) to send.

What a hub also owns, because it is per process and shared by its screens:
- `events_after`: catch-up reads of missed events, one query per
  (queue, version) however many screens missed the same events;
- `boards`/`feeds`: the latest rendered lobby board per location and console
  feed per counter, refreshed once per change for all screens showing it;
- `lines`: each queue's waiting keys at its latest version, so a burst of
  phones (re)connecting costs one ticket lookup each, not a position count;
- with the in-memory layer, a local tick (the worker cannot reach this
  process), and with every layer, re-subscription after the layer failed,
  followed by a resync of every screen (messages may have been lost).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer

from . import publisher, reads, render

log = logging.getLogger(__name__)

LAYER_TIMEOUT = 3.0
MAINTAIN_EVERY = 2.0  # seconds between health checks of the subscription
LOCAL_TICK_EVERY = 4.0  # in-memory layer only: how often screens compare versions with the DB
REJOIN_EVERY = 600.0
YIELD_EVERY = 0.005  # seconds of fan-out work between yields to the event loop  # refresh group membership (the core Redis layer expires it after a day)

_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}


@dataclass
class Render:
    versions: dict[int, int]
    value: object  # the rendered HTML, or a reads.WaitingLine
    started: float


class SharedRender:
    """The latest render per key (location, counter, queue) in this process,
    loaded at most once at a time and shared by every screen that shows it.
    `load(key, previous)` returns (versions, value); it may reuse `previous`."""

    def __init__(self, load: Callable[[int, Render | None], tuple[dict[int, int], object]]):
        self._load = database_sync_to_async(load)
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
        for _attempt in range(3):
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

    def _forget(self, key: int, started: float) -> None:
        running = self.inflight.get(key)
        if running is not None and running[0] == started:
            del self.inflight[key]


def _board(location_id: int, _previous=None) -> tuple[dict[int, int], str]:
    context = reads.display_context(location_id)
    return context["versions"], render.display_frame(context)


def _feed(counter_id: int, _previous=None) -> tuple[dict[int, int], str]:
    context = reads.console_context(counter_id)
    return context["versions"], render.console_feed(context)


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
        self._last_warning = 0.0
        self.boards = SharedRender(_board)
        self.feeds = SharedRender(_feed)
        self.lines = SharedRender(reads.waiting_line)
        publisher.set_home_loop(loop)

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
            self._warn("could not subscribe to the channel layer", exc)
            self.lost = True
            return False

    def _start(self) -> None:
        if self._maintainer is None:
            self._maintainer = self.loop.create_task(self._maintain())
        if self._receiver is None and self.channel is not None:
            self._receiver = self.loop.create_task(self._receive())

    # --- receiving -----------------------------------------------------------
    async def _receive(self) -> None:
        delay = 0.5
        while True:
            try:
                message = await self.layer.receive(self.channel)
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the core Redis layer raises while Redis is away
                self._warn("channel layer receive failed", exc)
                self.lost = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            await self.dispatch(message)

    async def dispatch(self, message: dict) -> None:
        """Hand one queue message to every local screen of that queue."""
        if not isinstance(message, dict) or message.get("type") not in ("queue.event", "queue.tick"):
            return
        queue_id, version = message.get("queue"), message.get("version", 0)
        if isinstance(version, int) and version > self.seen.get(queue_id, 0):
            self.seen[queue_id] = version
        group = publisher.group_for_queue(queue_id)
        slice_started = time.perf_counter()
        for screen in list(self.members.get(group, ())):
            try:
                frame = screen.on_queue_message(message)
                if frame:
                    await screen.send_frame(frame)  # (daphne writes without suspending)
            except Exception:  # one broken screen must not stop the others
                log.exception("live screen failed on %s", message.get("type"))
            if time.perf_counter() - slice_started > YIELD_EVERY:
                # Let the loop answer HTTP requests and flush sockets meanwhile:
                # a fan-out to thousands must not hold a staff click's response.
                await asyncio.sleep(0)
                slice_started = time.perf_counter()

    async def _maintain(self) -> None:
        last_rejoin = last_tick = time.monotonic()
        while True:
            await asyncio.sleep(MAINTAIN_EVERY)
            try:
                now = time.monotonic()
                if self.lost or set(self.members) - self.subscribed or now - last_rejoin > REJOIN_EVERY:
                    was_lost = self.lost
                    self.lost = False
                    if now - last_rejoin > REJOIN_EVERY:
                        last_rejoin = now
                        await self._drop_idle_groups()
                        self.subscribed.clear()
                        self.subscribed_since.clear()
                    if await self._subscribe(list(self.members)) and was_lost:
                        log.info("channel layer back; resyncing %d queue group(s)", len(self.members))
                        await self.local_tick()
                if self.in_memory and now - last_tick > LOCAL_TICK_EVERY:
                    last_tick = now
                    await self.local_tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live hub maintenance failed")

    async def _drop_idle_groups(self) -> None:
        for group in self.subscribed - set(self.members):
            try:
                await asyncio.wait_for(self.layer.group_discard(group, self.channel), LAYER_TIMEOUT)
            except Exception:
                pass

    async def local_tick(self) -> None:
        """Compare every local queue's version with the database (one query)."""
        ids = [int(g.split(".", 1)[1]) for g in self.members]
        if not ids:
            return
        versions = await database_sync_to_async(reads.queue_versions)(ids)
        for queue_id, version in versions.items():
            await self.dispatch({"type": "queue.tick", "queue": queue_id, "version": version})

    # --- shared reads --------------------------------------------------------
    def current_line(self, queue_id: int) -> Render | None:
        """The cached waiting line of a queue, if it is still exact for a screen
        that has just joined: loaded while this hub was subscribed, and no
        message since announced a newer version. Any later event reaches the
        new screen through the subscription, so no query is needed."""
        got = self.lines.latest.get(queue_id)
        since = self.subscribed_since.get(publisher.group_for_queue(queue_id))
        if got is None or since is None or self.lost or got.started < since:
            return None
        if self.seen.get(queue_id, 0) > got.versions.get(queue_id, 0):
            return None
        return got

    async def events_after(self, queue_id: int, version: int) -> list[dict] | None:
        """Missed events, read once for every local screen that missed the same ones."""
        key = (queue_id, version)
        task = self._catch_ups.get(key)
        if task is None:
            task = self.loop.create_task(database_sync_to_async(reads.event_messages)(queue_id, version))
            self._catch_ups[key] = task
            task.add_done_callback(lambda _t: self._catch_ups.pop(key, None))
        return await asyncio.shield(task)

    def _warn(self, what: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_warning > 30:
            self._last_warning = now
            log.warning("%s: %s: %s", what, type(exc).__name__, exc)

    async def close(self) -> None:
        """Stop the hub's tasks and leave its groups (tests; server shutdown)."""
        for task in (self._receiver, self._maintainer):
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
