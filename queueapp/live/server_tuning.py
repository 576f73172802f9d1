"""Per-connection costs of the WebSocket server stack that are pure waste.

autobahn (daphne's WebSocket layer) pretty-prints its whole configuration for
a debug log line on every new connection, whether or not debug logging is on
(`WebSocketProtocol._connectionMade`: `self.log.debug(..., attrs=pformat(...))`).
A py-spy profile of daphne while 1,000 phones connected at once put ~15 % of
the event loop's time in `pprint`. The log call itself is a no-op below
debug level, so the formatting is made lazy: done only if the line is emitted.
"""

from __future__ import annotations

import pprint


class _LazyPformat:
    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __str__(self) -> str:
        return pprint.pformat(self.obj)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    __repr__ = __str__


def lazy_autobahn_config_log() -> None:
    try:
        from autobahn.websocket import protocol
    except ImportError:  # not served by daphne
        return
    if getattr(protocol, "pformat", None) is pprint.pformat:
        protocol.pformat = _LazyPformat


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
