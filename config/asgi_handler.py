"""Django's ASGI handler, with each request's sync work on a reused thread.

Stock Django enters `ThreadSensitiveContext()` per request: the request's
first sync call (a sync view such as every API endpoint, a session write)
starts a new single-thread executor, and leaving the context starts a second
thread to join the first. Two thread starts per request, and `Thread.start`
blocks the event loop until the new thread has run: py-spy of daphne under
`bench/join_throughput.py` showed the loop waiting there for ~12 % of its
samples (issue 9), time in which no screen, staff click or other request
moves.

Here a request borrows an idle single-thread executor and gives it back when
it ends, as a threaded WSGI server reuses its threads. The guarantee Django
relies on is kept: a request's sync calls run one at a time on one thread,
and no two requests share a thread at the same time (an executor goes back
only once nothing it was given is still running, e.g. a view that a client
disconnect left running in its thread). Database connections stay per thread
and per request: Django returns them to the pool when the request finishes.

What a fresh thread would not carry over, a reused one must not either:
Django keeps each connection's transaction bookkeeping on a wrapper per
thread, and a request that left an atomic block open (entered by hand and
never left) leaves that wrapper marked "in a transaction, closed in it" after
`close_old_connections`. On the next request of the thread, a durable atomic
block then refuses to start and, on SQLite, every query fails on the closed
database. So at each request's end, on its own thread, a wrapper left inside
an atomic block is closed and dropped; the next request makes a new one
(tests/test_request_threads.py).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext
from django.conf import settings
from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.db import connections
from django.http.cookie import parse_cookie
from django.utils import translation

from config.admission import Admission, ahead_of_arrivals, has_credentials
from queueapp.live import precedence

log = logging.getLogger(__name__)

MOST_IDLE = 64  # idle request threads kept per process; more than this are let go


_thread = threading.local()


def _mark_lent() -> None:
    _thread.lent = True  # this thread serves request after request


class RequestThread(ThreadPoolExecutor):
    """One thread, lent to one request at a time; knows whether it is idle."""

    def __init__(self):
        super().__init__(max_workers=1, thread_name_prefix="django-request", initializer=_mark_lent)
        self._lock = threading.Lock()
        self._running = 0

    def submit(self, fn, /, *args, **kwargs):
        with self._lock:
            self._running += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _future) -> None:
        with self._lock:
            self._running -= 1

    @property
    def idle(self) -> bool:
        with self._lock:
            return self._running == 0


class ReusedThreadASGIHandler(ASGIHandler):
    def __init__(self):
        super().__init__()
        self._idle: list[RequestThread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        # At most so many requests hold a thread at once; the others wait on
        # the loop, then get the busy 503 (config/admission.py says why).
        self.admission = Admission(limit=settings.HTTP_IN_FLIGHT, reserve=settings.HTTP_STAFF_RESERVE)
        self._unadmitted = tuple(settings.HTTP_ADMISSION_EXEMPT)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # Events committed by requests are sent from this loop, not from a
            # thread of the publisher's own (queueapp/live/publisher.py says why).
            from queueapp.live import publisher  # imports models: only once Django is set up

            self._loop = loop
            publisher.set_home_loop(loop)
        if scope["path"].startswith(self._unadmitted):
            await self._serve(scope, receive, send)
            return
        staff = has_credentials(scope, settings.SESSION_COOKIE_NAME)
        placed = not staff and ahead_of_arrivals(scope)
        wait = (settings.HTTP_STAFF_ADMISSION_WAIT if staff else settings.HTTP_PLACED_ADMISSION_WAIT if placed
                else settings.HTTP_ADMISSION_WAIT)
        if not await self.admission.enter(staff=staff, wait=wait, placed=placed):
            await self._busy(scope, send)
            return
        try:
            await self._serve(scope, receive, send)
        finally:
            self.admission.leave()

    async def _busy(self, scope, send) -> None:
        """The busy 503 (`queueapp.overload.busy_answer`), from the loop: no
        thread, no database, no Django request or response, the body left
        unread (the answer does not need it); bytes made once per language,
        kind and Retry-After. Under a crowd this is most of what the servers
        answer (229,977 of them for 10,000 visitors, docs/benchmarks.md,
        official runs of session 8)."""
        from queueapp.overload import busy_answer, busy_log, retry_after

        said = _Said(scope)
        busy_log.busy(said, f"{self.admission.limit} requests in flight, none finished in time")
        retry = retry_after()
        with translation.override(translation.get_language_from_request(said)):
            content_type, body = busy_answer(api=said.path.startswith("/api/"), reload=said.method == "GET",
                                             retry=retry)
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(retry).encode()), (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": body})

    async def _serve(self, scope, receive, send) -> None:
        thread = self._idle.pop() if self._idle else RequestThread()
        precedence.request_started()  # connecting screens wait meanwhile (staff first)
        try:
            async with ThreadSensitiveContext(executor=thread):
                await self.handle(scope, receive, send)
        finally:
            precedence.request_finished()
            self._give_back(thread)

    def _give_back(self, thread: RequestThread) -> None:
        if thread.idle:
            self._keep(thread)
            return
        # Still running something this request left behind: lend it again
        # only after that (and this no-op queued behind it) has finished.
        loop = asyncio.get_running_loop()
        thread.submit(lambda: None).add_done_callback(
            lambda _f: loop.call_soon_threadsafe(self._keep, thread))

    def _keep(self, thread: RequestThread) -> None:
        if len(self._idle) < MOST_IDLE:
            self._idle.append(thread)
        else:
            thread.shutdown(wait=False)


class _Said:
    """What the busy answer needs of a request, read from its ASGI scope: the
    method and path (the log line) and the language (the language cookie, then
    Accept-Language, as `translation.get_language_from_request` reads them)."""

    __slots__ = ("method", "path", "COOKIES", "META")

    def __init__(self, scope: dict):
        self.method, self.path = scope.get("method", "GET"), scope.get("path", "")
        self.COOKIES, self.META = {}, {}
        language_cookie = settings.LANGUAGE_COOKIE_NAME.encode()
        for name, value in scope.get("headers", ()):
            if name == b"accept-language":
                self.META["HTTP_ACCEPT_LANGUAGE"] = value.decode("latin-1")
            elif name == b"cookie" and language_cookie in value:
                self.COOKIES = parse_cookie(value.decode("latin-1"))


def drop_unfinished_transactions(**_kwargs) -> None:
    """`request_finished` receiver, run on the request's own thread: a
    connection wrapper still inside an atomic block is closed (the database
    rolls the transaction back) and dropped from the thread. Only on a lent
    request thread: elsewhere (Django's test client inside a test's
    transaction) an open block at a request's end belongs to the caller."""
    if not getattr(_thread, "lent", False):
        return
    for conn in connections.all(initialized_only=True):
        if not (conn.in_atomic_block or conn.closed_in_transaction):
            continue
        log.warning("a request left an atomic block open on database %r: rolled back and dropped", conn.alias)
        try:
            conn.close()
            if conn.connection is not None:  # closed inside the block: Django keeps the dead handle
                conn.connection.close()
        except Exception:
            pass  # it is dropped either way
        finally:
            del connections[conn.alias]


signals.request_finished.connect(drop_unfinished_transactions)


def get_asgi_application() -> ReusedThreadASGIHandler:
    """`django.core.asgi.get_asgi_application`, with this handler."""
    import django

    django.setup(set_prefix=False)
    return ReusedThreadASGIHandler()
