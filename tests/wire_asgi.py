"""The project's ASGI application plus two test-only routes, for
tests/test_live_wire.py (daphne serves this module instead of config.asgi;
never served outside the tests):

- every `Wire.write` in the process is counted; `GET /wire-writes/` answers
  the count, so a test can tell the live screens' frames took the direct path;
- `ws://.../wire-test/`: a bare WebSocket that writes the frames the client
  asks for through `Wire` (the client sends JSON `{"sizes": [...]}`; frame i
  is `"<i>:"` padded with "é" to at least that many bytes), with the socket's
  kernel send buffer made small so that big frames are sent in parts and what
  follows them must wait in Twisted's buffer. After the client's close, one
  more write must raise autobahn's `Disconnected` (logged as WIRE_CLOSED_MARK).
"""

import asyncio
import json
import logging
import socket

from autobahn.exception import Disconnected

from config.asgi import application as real_application
from queueapp.live import wire

WIRE_CLOSED_MARK = "wire test: write after close raised Disconnected"
SMALL_SNDBUF = 4096

log = logging.getLogger("queueapp")
writes = 0
_write = wire.Wire.write


def _counting_write(self, text):
    global writes
    writes += 1
    return _write(self, text)


wire.Wire.write = _counting_write


def frame_text(i: int, size: int) -> str:
    head = f"{i}:"
    return head + "é" * max(0, (size - len(head) + 1) // 2)


async def _wire_test(receive, send) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    line = wire.Wire.behind(send)
    if line is None:
        await send({"type": "websocket.close", "code": 4999})  # no direct path: the test fails
        return
    line.protocol.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_SNDBUF)
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            await asyncio.sleep(0)
            try:
                line.write("after the close")
            except Disconnected:
                log.warning(WIRE_CLOSED_MARK)
            return
        for i, size in enumerate(json.loads(message["text"])["sizes"]):
            line.write(frame_text(i, size))


async def application(scope, receive, send):
    if scope["type"] == "http" and scope["path"] == "/wire-writes/":
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": str(writes).encode()})
        return
    if scope["type"] == "websocket" and scope["path"] == "/wire-test/":
        await _wire_test(receive, send)
        return
    await real_application(scope, receive, send)
