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

import logging
import threading
import time
from contextvars import ContextVar
from functools import wraps

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import get_language, get_language_bidi
from django.utils.translation import gettext_lazy as _
from django.utils.deprecation import MiddlewareMixin

log = logging.getLogger(__name__)

POOL_WAIT: ContextVar[float | None] = ContextVar("queueapp_pool_wait", default=None)
PUBLIC_POOL_WAIT = 3.0  # seconds a public arrival waits for a connection
RETRY_AFTER = 5  # seconds
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


# The busy page per (language, reloads itself): the same words for every 503 of
# a crowd, rendered once each. A crowd of 3,000 got 21,502 of them, and their
# template render was a tenth of the servers' busy samples (py-spy,
# docs/benchmarks.md, session 8).
_BUSY_PAGES: dict[tuple[str, bool], str] = {}


def _busy_page(reload: bool) -> str:
    key = (get_language(), reload)
    page = _BUSY_PAGES.get(key)
    if page is None:
        # No request context (it would read the session): the language comes from
        # LocaleMiddleware's guess, or the handler's, which is active.
        page = _BUSY_PAGES[key] = render_to_string("queueapp/busy.html", {
            "sentence": BUSY_SENTENCE, "retry": RETRY_AFTER, "reload": reload,
            "LANGUAGE_CODE": key[0], "LANGUAGE_BIDI": get_language_bidi()})
    return page


def busy_response(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {"detail": str(BUSY_SENTENCE), "code": BUSY_CODE, "field": None}, status=503)
    else:
        response = HttpResponse(_busy_page(request.method == "GET"), status=503)
    response["Retry-After"] = str(RETRY_AFTER)
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
