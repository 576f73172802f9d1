"""Per-connection costs of the WebSocket server stack that are pure waste.

autobahn (daphne's WebSocket layer) pretty-prints its whole configuration for
a debug log line on every new connection, whether or not debug logging is on
(`WebSocketProtocol._connectionMade`: `self.log.debug(..., attrs=pformat(...))`).
A py-spy profile of daphne while 1,000 phones connected at once put ~15 % of
the event loop's time in `pprint`. The log call itself is a no-op below
debug level, so the formatting is made lazy: done only if the line is emitted.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import pprint


class _Lazy:
    """`func(*args, **kwargs)`, computed only when a log line that uses it is written."""

    __slots__ = ("func", "args", "kwargs")

    def __init__(self, func, args, kwargs):
        self.func, self.args, self.kwargs = func, args, kwargs

    def __str__(self) -> str:
        return str(self.func(*self.args, **self.kwargs))

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    __repr__ = __str__


def _lazily(func):
    def lazy(*args, **kwargs):
        return _Lazy(func, args, kwargs)

    lazy.lazy_of = func
    return lazy


def lazy_autobahn_config_log() -> None:
    """Also autobahn's highlighted type names and values (`hltype`, `hlval`:
    click's colour codes around a qualified name or repr), computed for the
    debug lines of every connect, received chunk and close whether or not
    debug logging is on: ~10 per connection."""
    try:
        from autobahn.twisted import websocket as twisted_websocket
        from autobahn.websocket import protocol
    except ImportError:  # not served by daphne
        return
    if getattr(protocol, "pformat", None) is pprint.pformat:
        protocol.pformat = _lazily(pprint.pformat)
    for module in (protocol, twisted_websocket):
        for name in ("hltype", "hlval"):
            func = getattr(module, name, None)
            if func is not None and not hasattr(func, "lazy_of"):
                setattr(module, name, _lazily(func))


def stop_listening_at_shutdown() -> None:
    """Under daphne: the moment a shutdown starts (SIGTERM), stop accepting
    connections, before the screens are closed with 4012 over
    `LIVE_SHUTDOWN_SPREAD`. Before, the stopping process kept listening for the
    whole spread and exit (5-31 s under load, bench/restart.py): phones closed
    first came back to it within 0.5 s, got a handshake it never answered
    (the exit dropped them: "handshake dropped"), and each such attempt doubled
    their back-off and cost the stopping server work. Now they are refused at
    once (with two processes the proxy sends them to the other one), and the
    connections already open are closed as before. Registered at import, so it
    runs before the hub's and daphne's own "before shutdown" triggers.
    """
    import sys

    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None:
        return

    def stop_listening() -> None:
        from twisted.internet import tcp

        for reader in list(reactor.getReaders()):
            if isinstance(reader, tcp.Port):
                reader.stopListening()

    reactor.addSystemEventTrigger("before", "shutdown", stop_listening)


def exit_without_finalizing() -> None:
    """Under daphne: once Twisted has shut down (the screens closed with 4012,
    the connections gone), leave at once instead of finalizing the interpreter.

    Measured here under load, an idle daphne took 3-6 s from SIGTERM to exit,
    nearly all of it after the reactor stopped (no Python frame on the stack:
    module and object teardown). Every second of it is a second the phones'
    back-off keeps growing while nothing listens. Logs are flushed first.
    Not when profiling (`python -m cProfile` writes its output at exit).
    """
    import os
    import sys

    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or "cProfile" in sys.modules:
        return

    def leave() -> None:
        import logging

        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(0)

    reactor.addSystemEventTrigger("after", "shutdown", leave)


def bounded_accepts(most: int) -> None:
    """Under daphne: take at most `most` connections from the listen queue per
    turn of the event loop (0: leave Twisted's rule alone).

    Twisted's `Port.doRead` accepts up to `numberAccepts` connections per
    turn and raises that by 20 every time it used them all, so in a burst it
    takes in everything the listen queue holds at once. Every connection taken
    in then costs the loop a step on each later turn (read the request, start
    the application, accept, write), so the first handshake is answered only
    after most of the burst has been read; clients time out before any is
    answered, retry, and the loop works for phones that are gone. With a bound,
    a turn takes in a few connections and finishes the ones before: the
    connections in flight stay few, each handshake is answered within a few
    turns, and the rest wait in the kernel's listen queue (the backlog) as
    completed TCP connections.
    """
    try:
        from twisted.internet import tcp
    except ImportError:  # not served by daphne
        return
    original = getattr(tcp.Port.doRead, "__wrapped__", tcp.Port.doRead)
    if most <= 0:  # Twisted's rule again, even if a bound was set before in this process
        tcp.Port.doRead = original
        return

    def doRead(self):
        self.numberAccepts = min(self.numberAccepts, most)
        return original(self)

    doRead.__wrapped__ = original
    tcp.Port.doRead = doRead


def body_left_to_the_application() -> None:
    """Under daphne: Twisted does not parse POST bodies into `request.args`.

    Twisted's `Request.requestReceived` parses every POST with a body: the
    Content-Type header through the stdlib's email parser (`_parseContentType`,
    a `Message` and its header registry per request), then a form's whole body
    into `request.args`. daphne never reads `args`: it hands the raw body to
    the ASGI application, where Django parses it once. py-spy of daphne under
    bench/join_throughput.py put ~7 % of a server's samples during the joins
    (an `application/json` POST) in that header parse alone (issue 9).
    `parsePOSTFormSubmission=False` is Twisted's own switch for it
    (`twisted.web.http.Request.__init__`). A malformed multipart body is then
    answered by Django (400) instead of Twisted dropping the connection.
    """
    try:
        from daphne.http_protocol import WebRequest
    except ImportError:  # not served by daphne
        return
    original = getattr(WebRequest.__init__, "__wrapped__", WebRequest.__init__)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("parsePOSTFormSubmission", False)
        original(self, *args, **kwargs)

    __init__.__wrapped__ = original
    WebRequest.__init__ = __init__


# Seconds a phone whose handshake timed out is asked to wait before trying again.
HANDSHAKE_RETRY_AFTER = 5


def retryable_handshake_timeout() -> None:
    """Under daphne: a WebSocket handshake the application has not accepted
    within `--websocket_connect_timeout` is answered 503 with `Retry-After`,
    not 403 and not a dropped connection.

    Two timers watch a handshake, both set by that one option: autobahn's
    (from the connection's start; it drops the TCP connection without an
    answer) and daphne's checker (every 2 s; it answers "403 Access denied",
    as it does for a real refusal by the application). On a loop stalled past
    both (the waiting room's official run at load 53: 336 sockets answered
    403), whichever runs first decides. Our screens accept at once
    (queueapp/live/consumers.py), so either means the process was too busy to
    run the application in time, not a refusal: the phone may and should try
    again. A real refusal (the application closes before accepting: an
    unknown path, a foreign origin) still answers 403.
    """
    try:
        from autobahn.websocket.types import ConnectionDeny
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:  # not served by daphne
        return

    def answer_retry(protocol) -> None:
        deferred = protocol.handshake_deferred
        del protocol.handshake_deferred  # as daphne's serverReject: a late accept is then ignored
        protocol.server.protocol_disconnected(protocol)
        # autobahn answers a ConnectionDeny with failHandshake(reason, code): this
        # one answer also says when to try again.
        protocol.failHandshake = functools.partial(
            type(protocol).failHandshake, protocol, responseHeaders=[("Retry-After", str(HANDSHAKE_RETRY_AFTER))])
        deferred.errback(ConnectionDeny(code=503, reason="Service Unavailable"))

    def waiting_for_the_application(protocol) -> bool:
        return protocol.state == protocol.STATE_CONNECTING and hasattr(protocol, "handshake_deferred")

    check = getattr(WebSocketProtocol.check_timeouts, "__wrapped__", WebSocketProtocol.check_timeouts)
    timed_out = getattr(WebSocketProtocol.onOpenHandshakeTimeout, "__wrapped__",
                        WebSocketProtocol.onOpenHandshakeTimeout)

    def check_timeouts(self):
        if waiting_for_the_application(self) and 0 <= self.server.websocket_connect_timeout < self.duration():
            answer_retry(self)
            return
        check(self)

    def onOpenHandshakeTimeout(self):
        if waiting_for_the_application(self):
            self.openHandshakeTimeoutCall = None
            answer_retry(self)
            return
        timed_out(self)

    check_timeouts.__wrapped__ = check
    onOpenHandshakeTimeout.__wrapped__ = timed_out
    WebSocketProtocol.check_timeouts = check_timeouts
    WebSocketProtocol.onOpenHandshakeTimeout = onOpenHandshakeTimeout


class InputQueue:
    """daphne's input queue for one WebSocket connection (what the application's
    `receive` reads), holding only what one connection needs.

    daphne gives every connection an `asyncio.Queue`: four deques (items,
    getters, putters, and the `join()` event's waiters) of 760 bytes each
    even when empty, ~3.4 KB per idle screen (bench/live_memory.py) for a
    queue that holds a message for a moment a few times in the socket's
    life. Here: one reader at a time (Channels' consumer loop), a deque only
    while messages wait, the same order, and `get()` cancellable as
    `asyncio.Queue.get` (nothing is lost: a message stays queued)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self):
        self._items: collections.deque | None = None
        self._waiter: asyncio.Future | None = None

    def put_nowait(self, item) -> None:
        if self._items is None:
            self._items = collections.deque()
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self):
        while not self._items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items


class _HandshakePath:
    """What daphne reads of autobahn's handshake request once a socket is open:
    its path (for its access log lines)."""

    __slots__ = ("path",)

    def __init__(self, path: str):
        self.path = path


def lean_websocket_connections(on: bool = True) -> None:
    """Under daphne: each open WebSocket holds what it needs to stay open and
    no more (issue 9, "memory per idle screen"; bench/live_memory.py measures
    each piece with gc and tracemalloc on a daphne holding N screens).

    - its input queue is an `InputQueue` (above), not an `asyncio.Queue`;
    - autobahn's ~40 options (timeouts, limits, flags) are class attributes
      of one protocol class per factory, not copied into every connection's
      `__dict__` at connect (`WebSocketProtocol._connectionMade` copies only
      what the class does not have; daphne sets the options once, before it
      listens);
    - once open, the handshake's leftovers go: autobahn's raw request bytes
      and parsed header dict, the `ConnectionRequest` daphne keeps only to
      log its path, and the Twisted HTTP request that carried the upgrade
      (its headers, body buffer and ~40 attributes stay reachable from the
      HTTP channel, which stays as the transport's producer and for its
      timeout as before).
    `on=False` puts daphne's own behaviour back (bench A/B in one run)."""
    try:
        from daphne.server import Server
        from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
        from twisted.web.http import HTTPChannel
    except ImportError:  # not served by daphne
        return
    originals = {}
    for cls, name in ((Server, "create_application"), (WebSocketFactory, "buildProtocol"),
                      (WebSocketProtocol, "onOpen")):
        method = getattr(cls, name)
        originals[name] = getattr(method, "__wrapped__", method)
        setattr(cls, name, originals[name])
    if not on:
        return

    def create_application(self, protocol, scope):
        if scope["type"] != "websocket":
            return originals["create_application"](self, protocol, scope)
        # daphne's own steps (daphne/server.py), with the smaller queue.
        assert "application_instance" not in self.connections[protocol]
        queue = InputQueue()
        scope.setdefault("asgi", {"version": "3.0"})
        instance = self.application(scope=scope, receive=queue.get, send=functools.partial(self.handle_reply, protocol))
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(instance)
        return queue

    def buildProtocol(self, addr):
        if not self.__dict__.get("_options_on_class"):
            base = self.protocol
            # Each a staticmethod: read on a connection it is the factory's value
            # itself (some are functions, e.g. `perMessageCompressionAccept`,
            # which a plain class attribute would bind as methods).
            self.protocol = type(base.__name__, (base,), {
                "__module__": base.__module__,
                **{name: staticmethod(getattr(self, name)) for name in base.CONFIG_ATTRS}})
            self._options_on_class = True
        return originals["buildProtocol"](self, addr)

    def onOpen(self):
        originals["onOpen"](self)
        self.request = _HandshakePath(self.request.path)
        self.__dict__.pop("http_request_data", None)
        self.__dict__.pop("http_headers", None)
        channel = getattr(self.transport, "producer", None)
        if isinstance(channel, HTTPChannel):
            channel.requests.clear()

    for cls, name, function in ((Server, "create_application", create_application),
                                (WebSocketFactory, "buildProtocol", buildProtocol),
                                (WebSocketProtocol, "onOpen", onOpen)):
        function.__wrapped__ = originals[name]
        setattr(cls, name, function)


def young_collection_threshold(allocations: int) -> None:
    """Collect the youngest generation after `allocations` more container
    objects than were freed, instead of Python's 2,000 (0: leave Python's).

    A WebSocket connect under daphne allocates hundreds of short-lived
    container objects (Twisted's request and headers, deferreds, autobahn's
    handshake state, the consumer's task), most of them alive for a loop
    turn or two. A burst of thousands of connects keeps that many in flight,
    so with Python's threshold nearly every one was scanned by a young
    collection, and again by a middle one, before it died (bench/cold_connect.py
    with gc callbacks, docs/benchmarks.md, session 9 `connect`). A larger
    threshold lets most of them die unscanned; what lives on is scanned as
    before. The cost: a young collection scans up to that many objects at
    once (tens of milliseconds at 50,000), and unreachable cycles wait longer
    to be freed (a few megabytes at most)."""
    import gc

    if allocations > 0:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(allocations, middle, old)


def warm_before_first_connect() -> None:
    """Under daphne, as soon as its reactor runs (it listens already; phones
    arriving meanwhile wait in the listen queue): do what the first connecting
    screen would otherwise pay for on the event loop while the rest of a burst
    waits behind it: the channel layer's import and construction, the template
    engine with its tag libraries and the ticket screen's template, autobahn's
    compiled UTF-8 validator, the process's hub (its shutdown trigger), what
    it holds frozen for the collector (collector.freeze_at_start), and the one database
    thread with a pooled connection.

    Measured before (bench/connect_phases.py: two phones one after the other on
    a fresh daphne, load 15): the first screen cost 270-300 ms of server CPU
    and 2.2-2.9 s to its first frame, the second 0-10 ms; after, 50 ms and
    0.2-0.4 s (docs/benchmarks.md, session 9 `connect`). Not before listening:
    under load daphne already took up to 30 s to listen. A failure here (the
    database or Redis not up yet) is logged and left to the first screen."""
    import logging
    import sys

    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None:
        return
    log = logging.getLogger(__name__)

    async def in_the_loop() -> None:
        try:
            from autobahn.websocket.utf8validator import Utf8Validator
            from channels.db import database_sync_to_async
            from channels.layers import get_channel_layer
            from django.db import connection
            from django.template.loader import get_template

            from . import collector, render
            from .hub import Hub

            Utf8Validator()
            get_channel_layer()
            get_template(render.TICKET_TEMPLATE)
            Hub.current()
            collector.freeze_at_start()  # no full collection due amid the first burst
            # The connection made, used and given back in the database thread
            # itself: `connection.ensure_connection` looked up here would be the
            # loop thread's connection, never closed, one pooled connection
            # held for the process's life (with DB_POOL_MAX=2 an arrival found
            # the pool empty: tests/test_overload.py).
            await database_sync_to_async(lambda: connection.ensure_connection())()
        except Exception as exc:  # never stops the server
            log.info("warm-up skipped: %s", type(exc).__name__)

    reactor.callWhenRunning(lambda: asyncio.get_event_loop().create_task(in_the_loop()))
