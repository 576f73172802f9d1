"""Hands committed events to the channel layer without making the request wait.

`publish(message)` runs in `transaction.on_commit` of a request thread. It
appends the message to a bounded in-process buffer and wakes a sender task;
it never does I/O itself, so a slow or stopped Redis cannot slow a staff click.

Where the sender runs:
- In a server process, on the server's own event loop (the "home loop",
  registered by the HTTP handler, `config.asgi_handler`, on its first request
  and by `queueapp.live.hub` when the first screen connects), with a layer
  instance of that loop. The loop is already awake to answer the request
  (and serves the screens); its sends are asyncio I/O bounded by
  `SEND_TIMEOUT`, so a slow Redis delays the messages, never the loop.
  Before, a Redis layer's sends ran on a thread of their own: every event
  woke that thread's loop and handed the GIL back and forth, ~0.7 ms of CPU
  per join under daphne (bench/join_throughput.py, issue 9).
- Elsewhere (the worker, commands, tests without a server loop): the in-memory
  layer only reaches consumers of this process, and there are none, so the
  message is dropped at once; a Redis layer reaches every process, so the
  sender owns a background thread with its own event loop and layer.

Failures are logged, retried with back-off in order, and counted. The buffer
is bounded: when it is full the oldest message is dropped (counted in
`failed`). Nothing is lost for good: screens compare versions, and the tick
(`queueapp.jobs.publish_queue_ticks`) makes them re-read what they missed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from itertools import islice
from collections.abc import Callable

from ..events import EVENT_TYPE
from .outage import Outage

log = logging.getLogger(__name__)

BUFFER_LIMIT = 10_000
SEND_TIMEOUT = 2.0  # seconds for one send (a batch) before it counts as failed
# Messages sent together at most: one round trip to Redis for them all (see
# `_send_in_order`).
SEND_BATCH = 200
BACKOFF_FIRST = 0.2
BACKOFF_MAX = 5.0

_sink: list = []  # tests attach lists here (the `published` fixture)


def group_for_queue(queue_id: int) -> str:
    return f"queue.{queue_id}"


def queue_of_group(group: str) -> int:
    """The queue id of a `group_for_queue` name."""
    return int(group.split(".", 1)[1])


def _default_layer_factory():
    from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

    return channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)


def _layer_is_in_memory() -> bool:
    from django.conf import settings

    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    return backend.endswith("InMemoryChannelLayer")


def _run_until_stopped(loop: asyncio.AbstractEventLoop) -> None:
    """The sender thread: its loop until `Publisher.close` stops it, then closed
    here, on this thread. channels_redis wraps the close of every loop its
    layer connected on so that it flushes the layer there; a loop left
    unclosed is closed by the garbage collector on whichever thread drops it
    last, maybe while another loop runs there, and the flush fails ("Cannot run
    the event loop while another loop is running", ignored in `__del__`)."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        try:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()  # channels_redis's flush, then the loop's own close
        except Exception:  # Redis gone while flushing: the connections go with the process
            log.warning("live publisher: closing the sender's loop failed", exc_info=True)
            type(loop).close(loop)  # the loop's own close, past channels_redis's wrapper


class Publisher:
    """A bounded buffer and one sender task; see the module docstring."""

    def __init__(self, *, layer_factory: Callable | None = None, in_memory: bool | None = None,
                 buffer_limit: int = BUFFER_LIMIT, send_timeout: float = SEND_TIMEOUT):
        self._layer_factory = layer_factory or _default_layer_factory
        self._in_memory = in_memory
        self._buffer_limit = buffer_limit
        self._send_timeout = send_timeout
        self._lock = threading.Lock()
        self._pending: deque[tuple[str, dict, float]] = deque()
        self.sent = 0
        self.failed = 0
        self.last_error: str | None = None
        self.outage = Outage("live publisher: channel layer (Redis)", log)
        self._home_loop: asyncio.AbstractEventLoop | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._layers: dict[asyncio.AbstractEventLoop, object] = {}  # a Redis layer instance per loop
        self._task: asyncio.Task | None = None

    # --- called from request threads -------------------------------------------
    def publish(self, message: dict) -> None:
        message = {"type": EVENT_TYPE, **message}
        entry = (group_for_queue(message["queue"]), message, time.monotonic())
        loop = self._target_loop()
        with self._lock:
            if loop is None:  # in-memory layer and no screens in this process
                self.sent += 1
                return
            if len(self._pending) >= self._buffer_limit:
                self._pending.popleft()
                self.failed += 1
            self._pending.append(entry)
        try:
            loop.call_soon_threadsafe(self._kick)
        except RuntimeError:  # that loop has closed (a test's loop, a stopped server)
            with self._lock:
                if self._home_loop is loop:
                    self._home_loop = None

    def health(self) -> dict:
        with self._lock:
            oldest = time.monotonic() - self._pending[0][2] if self._pending else 0.0
            return {"pending": len(self._pending), "oldest_pending_seconds": round(oldest, 3),
                    "last_error": self.last_error, "sent": self.sent, "failed": self.failed}

    def broadcast_ticks(self, versions: dict[int, int], *, timeout: float = 5.0) -> int:
        """Send each queue's current version to its group (the worker's tick).

        Not buffered: a tick that fails is superseded by the next one. Waits at
        most `timeout`; returns how many were sent (all: one batch, see
        `_send_in_order`; 0 when it failed).
        """
        loop = self._target_loop()
        if loop is None or not versions:
            return 0

        async def send() -> int:
            ticks = [(group_for_queue(queue_id), {"type": "queue.tick", "queue": queue_id, "version": version})
                     for queue_id, version in versions.items()]
            await asyncio.wait_for(_send_in_order(self._layer(), ticks), self._send_timeout)
            return len(ticks)

        try:
            if asyncio.get_running_loop() is loop:  # never wait on our own loop
                loop.create_task(send())
                return 0
        except RuntimeError:
            pass
        future = asyncio.run_coroutine_threadsafe(send(), loop)
        try:
            return future.result(timeout)
        except Exception as exc:
            future.cancel()
            self._note_failure(exc, "queue ticks")
            return 0

    def set_home_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The server's loop: every send happens there from now on (in-memory
        layer sends must; see the module docstring)."""
        with self._lock:
            if self._home_loop is loop:
                return
            self._home_loop = loop
        if self._pending:
            try:
                loop.call_soon_threadsafe(self._kick)
            except RuntimeError:
                pass

    def close(self) -> None:
        """Stop the sender thread, if any (tests; pending messages are dropped)."""
        with self._lock:
            loop, self._thread_loop = self._thread_loop, None
        if loop is not None:
            def stop() -> None:
                if self._task is not None and self._task.get_loop() is loop:
                    self._task.cancel()
                loop.call_soon(loop.stop)

            loop.call_soon_threadsafe(stop)

    # --- the sender ------------------------------------------------------------
    def _uses_in_memory(self) -> bool:
        if self._in_memory is None:
            self._in_memory = _layer_is_in_memory()
        return self._in_memory

    def _target_loop(self) -> asyncio.AbstractEventLoop | None:
        home = self._home_loop
        if home is not None and not home.is_closed():
            return home
        if self._uses_in_memory():
            return None
        with self._lock:
            if self._thread_loop is None:
                self._thread_loop = asyncio.new_event_loop()
                threading.Thread(target=_run_until_stopped, args=(self._thread_loop,), name="live-publisher",
                                 daemon=True).start()
            return self._thread_loop

    def _layer(self):
        if self._uses_in_memory():
            from channels.layers import get_channel_layer

            return get_channel_layer()
        # Redis layers hold connections bound to the loop that made them.
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            for old in [lp for lp in self._layers if lp.is_closed()]:
                del self._layers[old]
            layer = self._layers[loop] = self._layer_factory()
        return layer

    def _kick(self) -> None:
        # Runs on the target loop: start the drain unless it is already running.
        if self._task is not None and not self._task.done() and self._task.get_loop() is asyncio.get_running_loop():
            return
        self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        delay = BACKOFF_FIRST
        while True:
            target = self._target_loop()
            if target is not asyncio.get_running_loop():
                # The home loop was registered meanwhile (a thread's drain of
                # messages published before the server's first request): it
                # carries on there, in order. (A send in flight here at that
                # moment may go out twice; screens ignore a version they have.)
                if target is not None:
                    try:
                        target.call_soon_threadsafe(self._kick)
                    except RuntimeError:
                        pass
                return
            with self._lock:
                if not self._pending:
                    return
                batch = list(islice(self._pending, SEND_BATCH))
            try:
                await asyncio.wait_for(_send_in_order(self._layer(), [(g, m) for g, m, _ in batch]),
                                       self._send_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down, slow, or refusing: keep the messages, retry
                self._note_failure(exc, batch[0][0])
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            delay = BACKOFF_FIRST
            with self._lock:
                for entry in batch:  # (unless the full buffer dropped it meanwhile)
                    if self._pending and self._pending[0] is entry:
                        self._pending.popleft()
                self.sent += len(batch)
                self.last_error = None
            self.outage.ok()

    def _note_failure(self, exc: Exception, group: str) -> None:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        with self._lock:
            self.last_error = text
            pending = len(self._pending)
        self.outage.failed(f"could not send to {group}: {text}; {pending} pending")


async def _send_in_order(layer, batch: list[tuple[str, dict]]) -> None:
    """Send the batch's (group, message) pairs, in order.

    On channels_redis's pub/sub layer, every message for one Redis shard goes
    out in one pipelined round trip (PUBLISH after PUBLISH, in order, on one
    connection). One `group_send` at a time waited for each reply, and every
    reply needs a turn of the server's loop: under the waiting room's crowd a
    turn took long enough that each process published a few dozen events a
    second while joins committed more, and the backlog reached 400 events,
    13 s old (`/readyz`'s publisher figures during bench/waiting_room.py), so
    the other process's pages waited for them. The channel names and the
    serializer are the layer's own (channels_redis is pinned; tests run this
    on Redis). Other layers (in-memory): one `group_send` each."""
    from channels_redis.pubsub import RedisPubSubChannelLayer

    if not isinstance(layer, RedisPubSubChannelLayer):
        for group, message in batch:
            await layer.group_send(group, message)
        return
    per_loop = layer._get_layer()
    by_shard: dict[object, list[tuple[str, bytes]]] = {}
    for group, message in batch:
        channel = per_loop._get_group_channel_name(group)
        by_shard.setdefault(per_loop._get_shard(channel), []).append((channel, layer.serialize(message)))
    for shard, messages in by_shard.items():
        async with shard._lock:
            shard._ensure_redis()
            async with shard._redis.pipeline(transaction=False) as pipe:
                for channel, data in messages:
                    pipe.publish(channel, data)
                await pipe.execute()


_publisher = Publisher()


def publish(message: dict) -> None:
    """Called on commit with each event message (connected to
    `queueapp.events.send_event_on_commit` in `queueapp.apps`); returns at once."""
    for sink in _sink:
        sink.append(message)
    _publisher.publish(message)


def health() -> dict:
    """For /readyz and /metrics: pending, oldest_pending_seconds, last_error, sent, failed."""
    return _publisher.health()


def set_home_loop(loop: asyncio.AbstractEventLoop) -> None:
    _publisher.set_home_loop(loop)


def broadcast_ticks(versions: dict[int, int]) -> int:
    return _publisher.broadcast_ticks(versions)


def use(publisher: Publisher) -> Publisher:
    """Swap the process's publisher (tests); returns the previous one."""
    global _publisher
    previous, _publisher = _publisher, publisher
    return previous
