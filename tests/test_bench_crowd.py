"""The waiting-room bench's browser client (`bench/crowd.py`) reads what a server sends
however the bytes are split: a wrong count here would make the bench's figures wrong.
No server needed: the protocol objects are fed bytes as the event loop would."""

from __future__ import annotations

import asyncio
from collections import Counter

from bench import crowd


class FakeTransport:
    def __init__(self):
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    abort = close

    def is_closing(self) -> bool:
        return self.closed


def feed(protocol, data: bytes, step: int) -> None:
    for i in range(0, len(data), step):
        protocol.data_received(data[i:i + step])


def test_http_answers_are_read_whole_however_split_and_the_next_one_kept():
    async def go():
        first = (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: a=1; Path=/\r\n"
                 b"Set-Cookie: b=2\r\n\r\nhello")
        second = b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\nRetry-After: 3\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        for step in (1, 7, len(first + second)):
            http = crowd.Http()
            http.connection_made(FakeTransport())
            answer = http.request(b"GET / HTTP/1.1\r\n\r\n")
            feed(http, first + second, step)
            got = answer.result()
            assert (got.status, got.body, got.headers[b"set-cookie"]) == (200, b"hello", [b"a=1; Path=/", b"b=2"])
            got = await asyncio.wait_for(http.request(b"GET / HTTP/1.1\r\n\r\n"), 1)
            assert (got.status, got.body, got.headers[b"retry-after"]) == (503, b"abcde", b"3")

    asyncio.run(go())


class FakeVisitor:
    socket_path, host_header, origin = b"/ws/ticket/abc/", b"127.0.0.1:1", b"http://127.0.0.1:1"

    def __init__(self):
        self.crowd = type("C", (), {"tally": Counter(), "frames": 0})()
        self.opened = 0
        self.admissions: list[bool] = []
        self.socket = None
        self.last_frame = self.last_waiting_at = None

    shown = crowd.Visitor.shown  # the real record of what the page last showed

    def cookie_header(self) -> bytes:
        return b""

    def socket_opened(self) -> None:
        self.opened += 1

    def admitted(self, *, first_frame: bool) -> None:
        self.admissions.append(first_frame)

    def socket_lost(self, socket) -> None:
        pass


def frame(payload: bytes, opcode: int = 1) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    return bytes((0x80 | opcode, 126)) + n.to_bytes(2) + payload


def opened_socket(accept_key: bytes | None = None):
    visitor = FakeVisitor()
    key = b"dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's example, and its answer
    accept = accept_key or b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    socket = crowd.Socket(visitor, key)
    socket.transport = FakeTransport()
    socket.timer = type("Timer", (), {"cancel": lambda self: None})()  # (the handshake's timeout)
    handshake = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: %s\r\n\r\n" % accept
    return visitor, socket, handshake


def test_socket_frames_are_counted_however_split_and_the_admission_seen_once_it_comes():
    waiting = b'<div id="ticket-status" data-status="waiting">' + b"x" * 300 + b"</div>"
    admitted = b'<div id="ticket-status" data-status="confirmed"><a data-enter>go</a></div>'
    for step in (1, 5, 131, 10_000):
        visitor, socket, handshake = opened_socket()
        feed(socket, handshake + frame(waiting) + frame(b"short waiting") + frame(b"", opcode=9), step)
        assert (visitor.opened, visitor.crowd.frames, visitor.admissions) == (1, 2, [])
        assert visitor.last_frame[1:] == ["waiting", None, 1]  # the second frame named no status
        assert b"\x8a\x80" in socket.transport.written  # the ping answered with a (masked) pong
        feed(socket, frame(admitted), step)
        assert (visitor.crowd.frames, visitor.admissions) == (3, [False])
        assert visitor.last_frame[1:] == ["confirmed", None, 2]


def test_a_socket_with_a_wrong_handshake_answer_is_refused_not_read():
    visitor, socket, handshake = opened_socket(accept_key=b"not-the-right-answer=")
    feed(socket, handshake + frame(b'data-status="confirmed"'), 10_000)
    assert (visitor.opened, visitor.admissions, socket.transport.closed) == (0, [], True)
    assert visitor.crowd.tally["socket 101"] == 1
