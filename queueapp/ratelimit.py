"""Per-client limits on creating tickets, kept in Django's cache.

A fixed window per client and scope: the first request of a window adds a key
that expires with the window, later ones increment it. With Redis as the cache
(REDIS_URL set) the count is shared by every web process; with the embedded
default it is per process, which is what one process needs.

Online joins are counted per browser (a signed cookie the join page sets) and,
with a much higher cap, per address: a clinic's shared Wi-Fi puts every
patient behind one address, so the address alone would refuse the sixth
person in the waiting room. A client that drops the cookie gets a new one each
time and meets the address cap instead. The kiosk is one device serving
everyone: it is counted per address.

Limits are settings (`TICKET_RATE_LIMITS`, env `JOIN_RATE_LIMIT`,
`JOIN_ADDRESS_RATE_LIMIT` and `KIOSK_RATE_LIMIT` as "count/seconds"); see
README "Rate limits".
"""

from __future__ import annotations

import secrets
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext, gettext_lazy, ngettext

from .errors import QueueActionError


class RateLimited(QueueActionError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


def client_id(request: HttpRequest) -> str:
    """The client's address; behind a proxy, the header it sets (RATE_LIMIT_CLIENT_HEADER)."""
    header = getattr(settings, "RATE_LIMIT_CLIENT_HEADER", "")
    if header and request.META.get(header):
        # X-Forwarded-For: "client, proxy1, proxy2"; the proxy appends, so take the last hop it added.
        return request.META[header].split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "unknown")


BROWSER_COOKIE = "queue_browser"
BROWSER_COOKIE_SALT = "queueapp.ratelimit.browser"
BROWSER_COOKIE_MAX_AGE = 365 * 24 * 3600


def browser_id(request: HttpRequest) -> str:
    """This browser's id from its signed cookie, or a new one (`remember_browser`
    sets it on the response). A forged or altered cookie counts as none."""
    if not hasattr(request, "queue_browser"):
        known = request.get_signed_cookie(BROWSER_COOKIE, default=None, salt=BROWSER_COOKIE_SALT)
        request.queue_browser = known or secrets.token_urlsafe(16)
        request.queue_browser_is_new = known is None
    return request.queue_browser


def remember_browser(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    if getattr(request, "queue_browser_is_new", False):
        response.set_signed_cookie(BROWSER_COOKIE, request.queue_browser, salt=BROWSER_COOKIE_SALT,
                                   max_age=BROWSER_COOKIE_MAX_AGE, httponly=True, samesite="Lax",
                                   secure=request.is_secure())
    return response


def check_join_rate(request: HttpRequest) -> None:
    """Count one online join: per address (the high cap), then per browser."""
    check_rate(request, "join_address", refusal=gettext_lazy("Too many tickets from this network"))
    check_rate(request, "join", client=f"browser:{browser_id(request)}")


def check_rate(request: HttpRequest, scope: str, *, client: str | None = None,
               refusal: str = gettext_lazy("Too many tickets from this device")) -> None:
    """Count one ticket for this client (default: its address) in `scope`;
    raise RateLimited past the limit."""
    limit, window = settings.TICKET_RATE_LIMITS[scope]
    now = int(time.time())
    started = now - now % window
    key = f"ratelimit:{scope}:{client or client_id(request)}:{started}"
    if cache.add(key, 1, timeout=window + 1):
        return
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: a new window
        cache.add(key, 1, timeout=window + 1)
        return
    if count > limit:
        retry = max(1, started + window - now)
        raise RateLimited(
            gettext("%(refusal)s: at most %(limit)s in %(window)s. Please try again in %(retry)s, or ask at "
                    "the desk.") % {"refusal": refusal, "limit": limit, "window": _human(window),
                                    "retry": _human(retry)},
            retry_after=retry,
        )


def _human(seconds: int) -> str:
    if seconds < 60:
        return ngettext("%(count)s second", "%(count)s seconds", seconds) % {"count": seconds}
    minutes = (seconds + 59) // 60
    return ngettext("%(count)s minute", "%(count)s minutes", minutes) % {"count": minutes}
