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
