"""A screen's frames written straight to its socket when daphne serves it.

The stock path of one frame is: Channels' `send` (two coroutines and a
message dict) -> daphne's `handle_reply` (a coroutine, a connections lookup
through Python `__hash__`/`__eq__`, header checks) -> `serverSend` ->
autobahn's `sendMessage`/`sendFrame`/`sendData` (which formats a debug line's
arguments, with click's colours, even when debug logging is off) -> Twisted's
`write`, which only buffers and registers the socket with the event loop for
writing; a later loop turn sends it and unregisters the socket (two epoll
changes per frame). A py-spy profile of daphne fanning one call out to 1,500
screens put ~40 % of the fan-out's CPU in that machinery, beside the `send()`
system call itself, which a bare `websockets` server pays too.

`Wire.behind(send)` finds daphne's WebSocket protocol behind an ASGI `send`
that is daphne's own (nothing wraps it); `Wire.write` then frames the text
with autobahn's `PreparedMessage` (its public broadcast API) and sends it
with one `send()` when nothing is buffered for that socket, as asyncio's own
transports do. What the kernel does not take (a slow phone) goes to Twisted's
buffer, which sends it in order before anything written after it. Everything
else keeps the stock path: a negotiated compression, autobahn's own send
queue or fragmentation, TLS (the transport is then not a plain TCP
connection), another server (uvicorn: no daphne protocol behind `send`), or a
`send` wrapped by middleware or a test.
"""

from __future__ import annotations

import functools

try:  # not served by daphne (or not installed): the stock path only
    from autobahn.exception import Disconnected
    from autobahn.websocket.protocol import PreparedMessage, WebSocketProtocol
    from daphne.server import Server
    from daphne.ws_protocol import WebSocketProtocol as DaphneWebSocket
    from twisted.internet import tcp
except ImportError:  # pragma: no cover - daphne is a runtime dependency
    DaphneWebSocket = None

OPEN = WebSocketProtocol.STATE_OPEN if DaphneWebSocket is not None else None


class Wire:
    """The direct path to one daphne WebSocket connection."""

    __slots__ = ("protocol",)

    def __init__(self, protocol):
        self.protocol = protocol

    @classmethod
    def behind(cls, send) -> Wire | None:
        """The wire to the connection `send` writes to, if `send` is daphne's own."""
        if DaphneWebSocket is None or not isinstance(send, functools.partial):
            return None
        func = send.func
        if (getattr(func, "__func__", None) is not Server.handle_reply
                or not isinstance(getattr(func, "__self__", None), Server)
                or len(send.args) != 1 or send.keywords):
            return None
        protocol = send.args[0]
        return cls(protocol) if isinstance(protocol, DaphneWebSocket) else None

    def write(self, text: str) -> None:
        """Send `text` as one WebSocket text message, now. Raises autobahn's
        `Disconnected` if the connection is closing or closed (as the stock
        path does)."""
        protocol = self.protocol
        if protocol.state != OPEN:
            raise Disconnected("Attempt to send on a closed protocol")
        payload = text.encode()
        if (protocol._perMessageCompress is not None or protocol.send_queue
                or 0 < protocol.autoFragmentSize < len(payload)
                or 0 < protocol.maxMessagePayloadSize < len(payload)):
            protocol.sendMessage(payload)  # autobahn's own rules apply
            return
        frame = PreparedMessage(payload, False, False, True).payloadHybi
        transport = protocol.transport
        if type(transport) is tcp.Server and not transport.TLS:
            send_now(transport, frame)
        else:
            transport.write(frame)


def send_now(transport, data: bytes) -> None:
    """Write `data` to a Twisted TCP connection: one `send()` now if nothing is
    buffered before it (what the kernel does not take is buffered, in order),
    else behind what is buffered."""
    if (transport.dataBuffer or transport._tempDataBuffer or not transport.connected
            or transport.disconnecting or transport._writeDisconnected):
        transport.write(data)  # in order behind the buffer; or dropped as Twisted drops it
        return
    try:
        sent = transport.socket.send(data)
    except BlockingIOError:
        sent = 0
    except OSError:
        # A reset or closed peer: Twisted meets the same error on its own
        # write and closes the connection its usual way.
        transport.write(data)
        return
    if sent < len(data):
        transport.write(data[sent:])
