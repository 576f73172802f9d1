"""When the database is saturated: answer 503 at once, never a 500, never after 20 s.

Two pieces:

- `short_pool_wait(seconds)`: a public page that anyone may hit by the
  thousand (a waiting room's arrivals) waits at most `seconds` for a
  database connection from the pool, not the pool's 20 s (the bound is read
  by the PostgreSQL backend in `config.postgresql`; other backends ignore it).
- `DatabaseBusyMiddleware`: a pool timeout or another `OperationalError`
  (lost connection, lock or statement timeout) that escapes a page or an API
  view becomes a 503 with `Retry-After` and one sentence: JSON in the API's
  error shape under `/api/`, otherwise a small page that retries by itself.
  Neither touches the database (no session, no navigation) to say so.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from contextvars import ContextVar
from functools import wraps

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.translation import get_language, get_language_bidi
from django.utils.translation import gettext_lazy as _
from django.utils.deprecation import MiddlewareMixin

log = logging.getLogger(__name__)

POOL_WAIT: ContextVar[float | None] = ContextVar("queueapp_pool_wait", default=None)
PUBLIC_POOL_WAIT = 3.0  # seconds a public arrival waits for a connection
RETRY_AFTER = 5  # seconds: the shortest Retry-After of a busy answer
# Each busy answer's Retry-After is RETRY_AFTER plus a whole number of seconds
# up to this, at random: with one value for everyone, a crowd turned away
# together came back together, a wave every 5 s that the request gate turned
# away again (229,977 busy answers for 10,000 visitors, docs/benchmarks.md,
# official runs of session 8).
RETRY_SPREAD = 5
BUSY_SENTENCE = _("So many people are arriving at once that we could not answer in time. "
                  "Your place is not lost: please try again in a few seconds.")
BUSY_CODE = "unavailable"


def short_pool_wait(seconds: float = PUBLIC_POOL_WAIT):
    """Decorate a sync view: its database connection comes within `seconds` or
    the request answers 503 (through the middleware below)."""
    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            token = POOL_WAIT.set(seconds)
            try:
                return view(*args, **kwargs)
            finally:
                POOL_WAIT.reset(token)
        return wrapper
    return decorate


def retry_after() -> int:
    """A busy answer's Retry-After in seconds (RETRY_AFTER + 0..RETRY_SPREAD, at random)."""
    return RETRY_AFTER + random.randint(0, RETRY_SPREAD)


# The busy answer per (language, API or page, reloads itself, Retry-After):
# the same bytes for every 503 of a crowd, made once each. A crowd of 3,000
# got 21,502 of them, and their template render was a tenth of the servers'
# busy samples (py-spy, docs/benchmarks.md, session 8).
_BUSY_ANSWERS: dict[tuple[str, bool, bool, int], tuple[str, bytes]] = {}


def busy_answer(*, api: bool, reload: bool, retry: int) -> tuple[str, bytes]:
    """(content type, body) of the busy answer, in the active language."""
    key = (get_language(), api, reload, retry)
    answer = _BUSY_ANSWERS.get(key)
    if answer is None:
        if api:
            answer = ("application/json", json.dumps(
                {"detail": str(BUSY_SENTENCE), "code": BUSY_CODE, "field": None}).encode())
        else:
            # No request context (it would read the session): the language comes from
            # LocaleMiddleware's guess, or the handler's, which is active.
            answer = ("text/html; charset=utf-8", render_to_string("queueapp/busy.html", {
                "sentence": BUSY_SENTENCE, "retry": retry, "reload": reload,
                "LANGUAGE_CODE": key[0], "LANGUAGE_BIDI": get_language_bidi()}).encode())
        _BUSY_ANSWERS[key] = answer
    return answer


def busy_response(request: HttpRequest) -> HttpResponse:
    retry = retry_after()
    content_type, body = busy_answer(api=request.path.startswith("/api/"), reload=request.method == "GET",
                                     retry=retry)
    response = HttpResponse(body, status=503, content_type=content_type)
    response["Retry-After"] = str(retry)
    response["Cache-Control"] = "no-store"
    return response


LOG_EVERY = 1.0  # seconds: at most one "answered 503" line per process per this interval


class _BusyLog:
    """One line per `LOG_EVERY` seconds, counting the 503s it stands for. A
    storm answered a line per 503 (4,161 in a 1,000-visitor bench run), and
    the request threads then queued for the log handler's lock (py-spy: a
    fifth of the request threads' samples in `Handler.handle`)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._last = float("-inf")
        self._quiet = 0

    def busy(self, request: HttpRequest, reason: Exception | str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < LOG_EVERY:
                self._quiet += 1
                return
            self._last, quiet, self._quiet = now, self._quiet, 0
        also = f"; {quiet} more 503(s) since the last line" if quiet else ""
        if isinstance(reason, Exception):
            reason = f"database busy ({type(reason).__name__}: {str(reason).splitlines()[0] if str(reason) else ''})"
        log.warning("%s %s answered 503: %s%s", request.method, request.path, reason, also)


busy_log = _BusyLog()  # shared by the middleware and the server's admission (config/admission.py)


class DatabaseBusyMiddleware(MiddlewareMixin):
    """A saturated or unreachable database answers 503, Retry-After, one sentence."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        busy_log.busy(request, exception)
        response = busy_response(request)
        response._has_been_logged = True  # `busy_log` says it (or counts it); Django would add an ERROR per request
        return response
