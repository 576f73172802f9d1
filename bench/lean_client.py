"""A light WebSocket client for connect benchmarks: phones that cost the
benchmark's own process little, so that on a 2-core machine the client is
not what a burst waits on.

bench/restart.py's phones use the `websockets` library: its client costs
about as much CPU per connection as a bare server (handshake objects, a task
per reading loop, the frame parser). With 5,000 of them connecting at once,
the client's one process was busy for the first 1.7-1.9 s before any
handshake, even against a bare server (bench/connect_phases.py, session 13),
so a server's "connects per second" also measured the client.

This one is an `asyncio.Protocol` per phone: it writes a fixed upgrade
request (a fresh random Sec-WebSocket-Key each time), reads the status line
and headers until the blank line, then reads the server's frames (unmasked,
never compressed: no extension is asked for) and gives each text frame to
`Phone.on_frame`. It answers nothing (no pong, no close handshake), which the
servers measured here do not need from a screen that only reads. On any
failure or close it comes back with the same back-off as bench/restart.py's
phones, and counts the failure or close code the same way.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct

from bench.restart import next_delay

OPEN_TIMEOUT = 10.0


class _Conn(asyncio.Protocol):
    __slots__ = ("phone", "request", "stats", "buf", "upgraded", "done", "transport", "timer", "close_code", "failure")

    def __init__(self, phone, request: bytes, stats, done: asyncio.Future):
        self.phone, self.request, self.stats, self.done = phone, request, stats, done
        self.buf = b""
        self.upgraded = False
        self.transport = None
        self.close_code = None
        self.failure = None
        self.timer = asyncio.get_running_loop().call_later(OPEN_TIMEOUT, self._open_timeout)

    def _open_timeout(self) -> None:
        if not self.upgraded and self.transport is not None:
            self.failure = "open timeout"
            self.transport.abort()

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            status = buf[:buf.find(b"\r\n")].split(b" ", 2)
            if len(status) < 2 or status[1] != b"101":
                self.failure = f"HTTP {status[1].decode() if len(status) > 1 else '?'}"
                self.transport.abort()
                return
            self.upgraded = True
            self.timer.cancel()
            self.phone.open = True
            self.stats.opens += 1
            buf = buf[end + 4:]
        at = 0
        while len(buf) - at >= 2:
            opcode, length = buf[at] & 0x0F, buf[at + 1] & 0x7F
            head = 2
            if length == 126:
                if len(buf) - at < 4:
                    break
                length, head = struct.unpack_from("!H", buf, at + 2)[0], 4
            elif length == 127:
                if len(buf) - at < 10:
                    break
                length, head = struct.unpack_from("!Q", buf, at + 2)[0], 10
            if len(buf) - at < head + length:
                break
            payload = buf[at + head:at + head + length]
            at += head + length
            if opcode == 1:
                self.phone.on_frame(payload)
            elif opcode == 8:
                self.close_code = struct.unpack_from("!H", payload)[0] if len(payload) >= 2 else 1005
                self.transport.close()
        self.buf = buf[at:]

    def connection_lost(self, exc) -> None:
        self.timer.cancel()
        if not self.done.done():
            self.done.set_result(None)


def upgrade_request(path: str, host: str, origin: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n").encode()


async def run_lean_phone(phone, host: str, port: int, path: str, origin: str, stats,
                         backoff: tuple[float, float, float]) -> None:
    """One phone, forever, as bench/restart.py's `run_phone` (one server, no proxy order)."""
    loop = asyncio.get_running_loop()
    attempt = 0
    while True:
        done = loop.create_future()
        conn = None
        try:
            _transport, conn = await loop.create_connection(
                lambda: _Conn(phone, upgrade_request(path.format(token=phone.token), f"{host}:{port}", origin),
                              stats, done), host, port)
            await done
        except ConnectionRefusedError:
            stats.failures["refused"] += 1
        except OSError as exc:
            stats.failures[type(exc).__name__] += 1
        if conn is not None:
            if conn.upgraded:
                attempt = 0
                stats.closes[conn.close_code if conn.close_code is not None else "dropped (1006)"] += 1
            else:
                stats.failures[conn.failure or "handshake dropped"] += 1
        phone.open = False
        phone.position = None
        attempt += 1
        await asyncio.sleep(next_delay(attempt, backoff))
