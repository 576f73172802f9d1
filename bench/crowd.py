"""The waiting room's crowd: thousands of browsers in one cheap process.

Started by `bench/waiting_room.py` as a process of its own (so its CPU is
measured apart from the servers'); reads its plan as JSON on stdin and writes
one JSON line per event on stdout (`started`, `arrived`, `result`). It imports
nothing of the app: only the standard library.

Each visitor does what a browser on the waiting page does:

1. GET `/wait/<room>/?return=<path>` on a keep-alive HTTP/1.1 connection, with
   its own address (X-Forwarded-For) and, from the first answer on, the
   cookies it was given (the signed place). A 503 is tried again on the same
   connection (or a new one if the server closed it) after its Retry-After,
   as the busy page does, until a place or `give_up` seconds.
2. With the page (200): the page's `hx-ws:connect` socket, on a connection of
   its own with the cookies and the Origin, as the browser opens it; a socket
   refused or lost is opened again on the schedule our pages give htmx
   (`reconnect`: first delay, most, ± jitter). The HTTP connection is closed
   once the page is read (a browser would keep it idle for a while; nothing
   more is asked of it here, so it is not kept).
3. When a frame shows the admission (`data-status="confirmed"`, what
   `wait.js` watches for), the page goes (socket closed with 1001), the
   browser loads the same URL again, which answers 302 to the protected site
   with the admission token, and follows it there (a GET; the site's answer
   is checked). An arrival answered 302 at once goes straight to the site.

Why hand-written: the previous client (an aiohttp session, cookie jar and
WebSocket per visitor) cost more CPU per visitor than the servers have to
spare on this machine (docs/benchmarks.md, session 7). Here: one
`asyncio.Protocol` per connection, no task per socket (frames are parsed in
`data_received`, the admission found with a bytes search, nothing decoded),
timers only for Retry-After, reconnects and handshake timeouts. It speaks only
what the servers here answer (HTTP/1.1 with Content-Length or chunked bodies,
WebSocket text frames without extensions, like the previous client, which
offered no compression either).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import random
import resource
import sys
import time
from collections import Counter
from urllib.parse import urlsplit

ADMITTED = b'data-status="confirmed"'  # what wait.js watches for in the live status
STATUS = b'data-status="'
POSITION = b'class="position-number">'
SOCKET_PATH = b'hx-ws:connect="'
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HANDSHAKE_TIMEOUT = 60.0  # seconds a browser waits for the socket's answer (the previous client: 60)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Answer:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict, body: bytes):
        self.status, self.headers, self.body = status, headers, body


def parse_head(head: bytes) -> tuple[int, dict]:
    """Status and headers (names lower-cased; Set-Cookie kept as a list)."""
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers: dict = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        value = value.strip()
        if name == b"set-cookie":
            headers.setdefault(name, []).append(value)
        else:
            headers[name] = value
    return status, headers


class Http(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection: one request in flight at a time."""

    __slots__ = ("transport", "buffer", "waiter", "closed")

    def __init__(self):
        self.transport = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def request(self, data: bytes) -> asyncio.Future:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        if self.buffer:  # (an answer that came before it was asked for: read it now)
            self.data_received(b"")
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None and not self.waiter.done():
            answer = self._answer(final=False)
            if answer is not None:
                self.waiter.set_result(answer)

    def _answer(self, *, final: bool) -> Answer | None:
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        status, headers = parse_head(bytes(buffer[:end]))
        start = end + 4
        if b"content-length" in headers:
            stop = start + int(headers[b"content-length"])
            if len(buffer) < stop:
                return None
            body = bytes(buffer[start:stop])
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            body, stop = self._chunked(start)
            if body is None:
                return None
        elif status in (204, 304) or 100 <= status < 200:
            body, stop = b"", start
        elif final:  # the body runs to the end of the connection
            body, stop = bytes(buffer[start:]), len(buffer)
        else:
            return None
        del buffer[:stop]
        if headers.get(b"connection", b"").lower() == b"close":
            self.closed = True
            self.transport.close()
        return Answer(status, headers, body)

    def _chunked(self, at: int) -> tuple[bytes | None, int]:
        buffer, parts = self.buffer, []
        while True:
            line_end = buffer.find(b"\r\n", at)
            if line_end < 0:
                return None, 0
            size = int(bytes(buffer[at:line_end]).split(b";")[0], 16)
            at = line_end + 2
            if size == 0:
                trailer_end = buffer.find(b"\r\n", at)  # no trailers are sent here
                return (b"".join(parts), trailer_end + 2) if trailer_end >= 0 else (None, 0)
            if len(buffer) < at + size + 2:
                return None, 0
            parts.append(bytes(buffer[at:at + size]))
            at += size + 2

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            answer = self._answer(final=True)
            if answer is not None:
                self.waiter.set_result(answer)
            else:
                self.waiter.set_exception(ConnectionResetError("the server closed the connection"))


class Socket(asyncio.Protocol):
    """The page's WebSocket: the handshake, then server frames parsed in place."""

    __slots__ = ("visitor", "key", "transport", "buffer", "open", "frames", "timer")

    def __init__(self, visitor: "Visitor", key: bytes):
        self.visitor, self.key = visitor, key
        visitor.socket = self
        self.transport = None
        self.buffer = bytearray()
        self.open = False
        self.frames = 0  # frames on this connection (the first shows the state at connect)
        self.timer = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        v = self.visitor
        transport.write(b"GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nOrigin: %s\r\n%s\r\n"
                        % (v.socket_path, v.host_header, self.key, v.origin, v.cookie_header()))
        self.timer = asyncio.get_running_loop().call_later(HANDSHAKE_TIMEOUT, self._timed_out)

    def _timed_out(self) -> None:
        self.visitor.crowd.tally["socket handshake timeout"] += 1
        self.transport.abort()

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.open:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.timer.cancel()
            status, headers = parse_head(bytes(buffer[:end]))
            accept = base64.b64encode(hashlib.sha1(self.key + WS_GUID).digest())
            if status != 101 or headers.get(b"sec-websocket-accept") != accept:
                self.visitor.crowd.tally[f"socket {status}"] += 1
                self.transport.abort()
                return
            self.open = True
            self.visitor.socket_opened()
            del buffer[:end + 4]
        at, size = 0, len(buffer)
        while size - at >= 2:
            first, second = buffer[at], buffer[at + 1]
            length, head = second & 0x7F, 2
            if length == 126:
                if size - at < 4:
                    break
                length, head = int.from_bytes(buffer[at + 2:at + 4]), 4
            elif length == 127:
                if size - at < 10:
                    break
                length, head = int.from_bytes(buffer[at + 2:at + 10]), 10
            end = at + head + length
            if end > size:
                break
            opcode = first & 0x0F
            if opcode <= 2:  # text, binary, continuation
                self.frames += 1
                self.visitor.crowd.frames += 1
                self.visitor.shown(buffer, at + head, end)
                if buffer.find(ADMITTED, at + head, end) >= 0:
                    self.visitor.admitted(first_frame=self.frames == 1)
                    return  # the page goes; the rest does not matter
            elif opcode == 9:  # ping: pong with the same payload
                self.send(0xA, bytes(buffer[at + head:end]))
            elif opcode == 8:  # the server closes: answer, as a browser does
                self.send(0x8, bytes(buffer[at + head:at + head + 2]))
                self.transport.close()
                return
            at = end
        del buffer[:at]

    def send(self, opcode: int, payload: bytes) -> None:
        """A client frame (masked, as clients must), payload under 126 bytes."""
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.transport.write(bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked)

    def leave(self) -> None:
        """The page is going away (1001), as a browser navigating elsewhere closes it."""
        if not self.transport.is_closing():
            self.send(0x8, (1001).to_bytes(2))
            self.transport.close()

    def connection_lost(self, exc) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.visitor.socket_lost(self)


class Visitor:
    __slots__ = ("crowd", "n", "host", "port", "host_header", "origin", "address", "cookies", "http", "due", "sent",
                 "placed", "statuses", "error", "token", "socket_path", "socket", "sockets", "page_open",
                 "saw", "entered", "attempt", "last_frame", "last_waiting_at", "opened_at", "lost_at")

    def __init__(self, crowd: "Crowd", n: int, due: float):
        self.crowd, self.n, self.due = crowd, n, due
        self.host, self.port = crowd.servers[n % len(crowd.servers)]
        self.host_header = f"{self.host}:{self.port}".encode()
        self.origin = b"http://" + self.host_header  # the page's own origin
        self.address = f"{crowd.address_prefix}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}".encode()
        self.cookies: dict[bytes, bytes] = {}
        self.http: Http | None = None
        self.sent = self.placed = None  # seconds since the start: first try, the answer with a place
        self.statuses: list[int] = []
        self.error = None
        self.token = None
        self.socket_path = None
        self.socket: Socket | None = None
        self.sockets = 0  # connections opened (1 + reconnects)
        self.page_open = False
        self.saw = None  # "live": a frame on an open page; "reconnect": the first frame of a new socket
        self.entered = None  # the protected site's answer to the admission
        self.attempt = 0
        # What the page last showed, for a page that never saw its admission
        # (the bench names the cause): [wall time, data-status, position or
        # None, frames so far]; and when its last socket opened and was lost.
        self.last_frame = None
        self.last_waiting_at = None  # (wall time) of the last frame that showed it waiting
        self.opened_at = self.lost_at = None

    def shown(self, buffer: bytearray, start: int, end: int) -> None:
        at = buffer.find(STATUS, start, end)
        if at < 0:
            return
        at += len(STATUS)
        status = bytes(buffer[at:buffer.find(b'"', at, end)]).decode()
        position = None
        at = buffer.find(POSITION, start, end)
        if at >= 0:
            at += len(POSITION)
            try:
                position = int(buffer[at:buffer.find(b"<", at, end)])
            except ValueError:
                pass
        frames = self.last_frame[3] + 1 if self.last_frame else 1
        self.last_frame = [time.time(), status, position, frames]
        if status == "waiting":
            self.last_waiting_at = self.last_frame[0]

    def cookie_header(self) -> bytes:
        if not self.cookies:
            return b""
        return b"Cookie: " + b"; ".join(b"%s=%s" % item for item in self.cookies.items()) + b"\r\n"

    async def get(self, host: str, port: int, target: bytes, *, headers: bytes = b"") -> Answer:
        """One request on this visitor's keep-alive connection to (host, port)."""
        crowd = self.crowd
        data = b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/html\r\n%s%s\r\n" % (
            target, host.encode(), port, headers, self.cookie_header())
        reused = self.http is not None and not self.http.closed
        while True:
            if self.http is None or self.http.closed:
                _, self.http = await crowd.loop.create_connection(Http, host, port)
            try:
                async with asyncio.timeout(crowd.request_timeout):
                    answer = await self.http.request(data)
                break
            except TimeoutError:
                self.close_http()  # the browser gives up on this connection
                raise
            except ConnectionResetError:
                if not reused:
                    raise
                reused = False  # an idle connection the server closed: a browser tries a new one
        for cookie in answer.headers.get(b"set-cookie", ()):
            name, _, value = cookie.split(b";", 1)[0].partition(b"=")
            self.cookies[name.strip()] = value.strip()
        return answer

    def close_http(self) -> None:
        if self.http is not None:
            self.http.transport.close()
            self.http = None

    async def wait_page(self, started: float, answers: Counter, statuses: list) -> Answer:
        """The room's URL until it answers something other than 503 (the busy page's reloads)."""
        crowd = self.crowd
        while True:
            answer = await self.get(self.host, self.port, crowd.wait_target,
                                    headers=b"X-Forwarded-For: %s\r\n" % self.address)
            statuses.append(answer.status)
            answers[answer.status] += 1
            if answer.status != 503:
                return answer
            retry = int(answer.headers.get(b"retry-after", b"5"))
            if crowd.now() + retry - started > crowd.give_up:
                return answer
            await asyncio.sleep(retry)

    async def arrive(self) -> None:
        crowd = self.crowd
        self.sent = crowd.now()
        step = "arrival"
        try:
            answer = await self.wait_page(self.sent, crowd.answers, self.statuses)
            if answer.status in (200, 302):
                self.placed = crowd.now()
            if answer.status == 302:
                self.close_http()
                step = "entering"
                await self.enter(answer)
                return
            if answer.status != 200:
                self.error = f"arrival answered {answer.status}"
                return
            self.close_http()
            at = answer.body.find(SOCKET_PATH) + len(SOCKET_PATH)
            self.socket_path = answer.body[at:answer.body.index(b'"', at)]
            self.token = self.socket_path.rstrip(b"/").rsplit(b"/", 1)[1].decode()
            step = "socket"
            await self.open_socket()
        except TimeoutError:
            self.error = f"{step} timed out"
        except Exception as exc:  # counted and reported, never retried
            self.error = f"{step}: {type(exc).__name__}: {exc}"
        finally:
            if self.placed is None and self.http is not None:
                self.close_http()

    async def open_socket(self) -> None:
        crowd = self.crowd
        self.sockets += 1
        key = base64.b64encode(os.urandom(16))
        try:
            await crowd.loop.create_connection(lambda: Socket(self, key), self.host, self.port)
        except OSError as exc:
            crowd.tally[f"socket connect {type(exc).__name__}"] += 1
            self.socket_lost(None)

    def socket_opened(self) -> None:
        self.opened_at = time.time()
        self.page_open = True
        self.attempt = 0
        self.crowd.open_pages += 1

    def socket_lost(self, socket: Socket | None) -> None:
        crowd = self.crowd
        if socket is not None and socket.open:
            self.lost_at = time.time()
            self.page_open = False
            crowd.open_pages -= 1
        if socket is not self.socket or self.saw or crowd.leaving:
            return
        # htmx reconnects on our pages' schedule (settings.LIVE_RECONNECT_*)
        crowd.tally["socket reopened"] += 1
        self.attempt += 1
        first, most, jitter = crowd.reconnect
        delay = min(first * 2 ** (self.attempt - 1), most)
        delay = max(0.0, delay + random.uniform(-jitter, jitter) * delay)
        crowd.loop.call_later(delay, lambda: crowd.loop.create_task(self.open_socket()))

    def admitted(self, *, first_frame: bool) -> None:
        if self.saw:
            return
        self.saw = "reconnect" if first_frame and self.sockets > 1 else "live"
        crowd = self.crowd
        crowd.loop.create_task(self.follow())

    async def follow(self) -> None:
        """wait.js reloads the room's URL, which sends the browser on to the site."""
        crowd = self.crowd
        if self.socket is not None:
            self.socket.leave()
        try:
            answer = await self.wait_page(crowd.now(), crowd.reloads, [])
            self.close_http()
            if answer.status != 302:
                self.entered = f"reload answered {answer.status}"
                return
            await self.enter(answer)
        except (TimeoutError, OSError) as exc:
            self.entered = f"following: {type(exc).__name__}"
            self.close_http()

    async def enter(self, answer: Answer) -> None:
        """Follow the redirect to the protected site with the admission token."""
        location = urlsplit(answer.headers[b"location"].decode())
        target = (location.path + ("?" + location.query if location.query else "")).encode()
        http, self.http = self.http, None
        self.cookies, cookies = {}, self.cookies  # another site: none of the room's cookies
        try:
            site = await self.get(location.hostname, location.port or 80, target)
            self.entered = site.status
        finally:
            self.close_http()
            self.http, self.cookies = http, cookies


class Crowd:
    def __init__(self, plan: dict):
        self.loop = asyncio.get_running_loop()
        self.servers = [(host, int(port)) for host, port in plan["servers"]]
        self.wait_target = f"/wait/{plan['room']}/?return={plan['return']}".encode()
        self.visitors_count = plan["visitors"]
        self.arrival_seconds = plan["arrival_seconds"]
        self.live_seconds = plan["live_seconds"]
        self.give_up = plan["give_up_seconds"]
        self.request_timeout = plan["request_timeout"]
        self.reconnect = tuple(plan["reconnect"])
        self.address_prefix = plan.get("address_prefix", "10")
        self.answers: Counter = Counter()  # arrivals' answers, by status
        self.reloads: Counter = Counter()  # answers to the reload that follows an admission
        self.tally: Counter = Counter()
        self.frames = 0
        self.open_pages = 0
        self.leaving = False
        self.started = self.loop.time()

    def now(self) -> float:
        return self.loop.time() - self.started

    async def run(self) -> dict:
        emit({"event": "started"})
        cpu0 = cpu_seconds()
        gap = self.arrival_seconds / self.visitors_count
        visitors = [Visitor(self, n, n * gap) for n in range(self.visitors_count)]
        tasks = []
        for visitor in visitors:
            delay = visitor.due - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(self.loop.create_task(visitor.arrive()))
        await asyncio.gather(*tasks)
        arrived_at, cpu1, frames1 = self.now(), cpu_seconds(), self.frames
        emit({"event": "arrived", "at": arrived_at})
        await asyncio.sleep(self.live_seconds)
        live_end, cpu2, frames2 = self.now(), cpu_seconds(), self.frames
        # The bench stops the admissions, lets the last frames come, then says "leave":
        # every admission made while the pages were there had its chance to show.
        emit({"event": "live-over", "at": live_end})
        await self.loop.run_in_executor(None, sys.stdin.readline)
        left_at = time.time()  # (wall clock, as the database's: the pages' times below are too)
        self.leaving = True
        open_when_left = [v.page_open for v in visitors]
        for visitor in visitors:
            if visitor.socket is not None:
                visitor.socket.transport.abort()
        await asyncio.sleep(0.5)
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return {
            "event": "result",
            "arrived_at": arrived_at, "live_end": live_end,
            "cpu": {"arrivals": cpu1 - cpu0, "live": cpu2 - cpu1},
            "frames": {"arrivals": frames1, "live": frames2 - frames1},
            "open_pages_at_end": self.open_pages, "answers": dict(self.answers), "reloads": dict(self.reloads),
            "tally": dict(self.tally),
            "still_busy": len(pending), "left_at": left_at,
            "visitors": [[v.due, v.sent, v.placed, v.statuses, v.error, v.token, v.sockets, v.saw, v.entered,
                          v.last_frame, is_open, v.opened_at, v.lost_at, v.last_waiting_at] for v, is_open in zip(visitors, open_when_left)],
        }


def emit(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def main() -> None:
    plan = json.loads(sys.stdin.readline())
    emit(await Crowd(plan).run())


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # two sockets per visitor at most
    asyncio.run(main())
