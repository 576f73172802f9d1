"""Admission of HTTP requests: at most so many per process hold a thread.

Every request Django serves here is lent a thread (config/asgi_handler.py)
and most of them then want a database connection from the pool. Under a
crowd (bench/waiting_room.py, docs/benchmarks.md session 7) a daphne process
took every arrival at once: ~1,200 threads, 1,223 of them idle and 80
waiting up to 3 s for one of the pool's 40 connections before answering 503;
the servers used 236 ms of CPU per visitor against 13.9 ms alone, in thread
wake-ups, Redis connections and copies rather than places. Here a request
waits for a seat on the event loop (no thread, no database) and, if none
frees within a short wait, is answered the busy 503 there
(`queueapp.overload.busy_response`): a crowd is shed early and cheaply and
the requests inside go at the speed of the pool.

Staff first (as `queueapp.live.precedence` puts staff before screens): a
request carrying credentials (the session cookie of a login, or an
`Authorization` header: API tokens, a room's key, the metrics token) is
let in before any waiting anonymous one, may use `reserve` seats that an
anonymous request never takes, and waits longer before its 503. Whether the
credentials are good is the view's business, later; only a session cookie
whose value has the shape of a session key (django.contrib.sessions': 32 of
its key characters) counts, so a cookie made up without care gets the public
lane, and one made up in that shape gets no further than the same bounded
seats, where the view refuses it as it would an anonymous request
(tests/test_admission_server.py).

A waiting room's visitor who already holds a place (its page, reloaded, or
the reload that follows an admission: `queueapp.views.rooms.holds_place`, the
signed cookie checked here on the loop) goes before the anonymous arrivals
too, but never into the staff reserve: turned away like a new arrival, an
admitted visitor's reload met the busy 503 again and again while its
admission ran out (1,657 such 503s for 650 admissions in a crowd of 3,000,
docs/benchmarks.md, session 8), though serving it takes no place. The
protected site's fetch of the public keys (`/.well-known/jwks.json`) takes
that lane as well: refused, the site cannot check any admitted visitor's
token (4 tokens refused so in a crowd of 3,000, docs/benchmarks.md,
session 9 `crowd`), and it asks once per key it has not seen.

Seats are counted per process, on its event loop (one loop per server
process: no lock needed).
"""

from __future__ import annotations

import asyncio
import re
from collections import deque

from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.http.cookie import parse_cookie

# What a session key the session backends make looks like (`_get_new_session_key`).
SESSION_KEY = re.compile(f"[{re.escape(VALID_KEY_CHARS)}]{{32}}")


# The lanes, first served first: credentials, a waiting room's place, the rest.
STAFF, PLACED, PUBLIC = 0, 1, 2


class Admission:
    """`limit` seats; `reserve` of them only for requests with credentials."""

    def __init__(self, *, limit: int, reserve: int):
        if not 0 <= reserve < limit:
            raise ValueError(f"the staff reserve ({reserve}) must be at least 0 and below the limit ({limit})")
        self.limit, self.reserve = limit, reserve
        self.inside = 0
        self.refused = 0  # requests answered 503 here, since the process started
        self._waiting: list[deque[asyncio.Future]] = [deque(), deque(), deque()]  # per lane

    def _free_for(self, lane: int) -> bool:
        return self.limit - self.inside > (0 if lane == STAFF else self.reserve)

    async def enter(self, *, staff: bool, wait: float, placed: bool = False) -> bool:
        """A seat within `wait` seconds (True), or none (False). Staff waiting
        go first, then visitors holding a place (`placed`); among equals,
        first come first served."""
        lane = STAFF if staff else PLACED if placed else PUBLIC
        queue = self._waiting[lane]
        ahead = any(self._waiting[before] for before in range(lane + 1))
        if not ahead and self._free_for(lane):
            self.inside += 1
            return True
        if wait <= 0:
            self.refused += 1
            return False
        loop = asyncio.get_running_loop()
        seat = loop.create_future()
        queue.append(seat)
        timer = loop.call_later(wait, self._give_up, queue, seat)
        try:
            let_in = await seat
        except asyncio.CancelledError:  # the client went away while it waited
            if seat.done() and not seat.cancelled() and seat.result():
                self.leave()  # a seat was given just before: pass it on
            else:
                self._forget(queue, seat)
            raise
        finally:
            timer.cancel()
        if not let_in:
            self.refused += 1
        return let_in

    def leave(self) -> None:
        self.inside -= 1
        self._let_in()

    def _let_in(self) -> None:
        for lane, queue in enumerate(self._waiting):
            while queue and self._free_for(lane):
                seat = queue.popleft()
                if not seat.done():
                    self.inside += 1
                    seat.set_result(True)
            if queue:
                return  # the later lanes wait behind this one (anonymous requests behind staff)

    def _give_up(self, queue: deque, seat: asyncio.Future) -> None:
        if not seat.done():
            self._forget(queue, seat)
            seat.set_result(False)

    def _forget(self, queue: deque, seat: asyncio.Future) -> None:
        try:
            queue.remove(seat)
        except ValueError:
            pass
        self._let_in()  # it may have stood in front of someone who fits

    @property
    def waiting(self) -> int:
        return sum(len(queue) for queue in self._waiting)


def has_credentials(scope: dict, session_cookie: str) -> bool:
    """Whether the request says who it is: an `Authorization` header or a
    session cookie in the shape of a session key."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return True
        if name == b"cookie":
            key = parse_cookie(value.decode("latin-1")).get(session_cookie)
            if key is not None and SESSION_KEY.fullmatch(key):
                return True
    return False


# Paths the protected site behind a waiting room fetches (never a visitor's arrival).
SITE_PATHS = frozenset({"/.well-known/jwks.json"})


def ahead_of_arrivals(scope: dict) -> bool:
    """Whether the request goes before new arrivals (the placed lane): a
    visitor holding a place, or the protected site fetching the keys."""
    return scope["path"] in SITE_PATHS or holds_place(scope)


def holds_place(scope: dict) -> bool:
    """Whether the request is a waiting room's page from a browser holding a
    place there (`queueapp.views.rooms.holds_place`: the signed cookie)."""
    from queueapp.views import rooms  # (imports the models: only once Django is set up)

    for name, value in scope.get("headers", ()):
        if name == b"cookie" and rooms.COOKIE_PREFIX.encode() in value:  # (a quick test before parsing)
            return rooms.holds_place(scope["path"], parse_cookie(value.decode("latin-1")))
    return False
