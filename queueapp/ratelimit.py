"""Per-client limits on creating tickets, kept in Django's cache.

A fixed window per client and scope: the first request of a window adds a key
that expires with the window, later ones increment it. With Redis as the cache
(REDIS_URL set) the count is shared by every web process; with the embedded
default it is per process, which is what one process needs.

Limits are settings (`TICKET_RATE_LIMITS`, env `JOIN_RATE_LIMIT` and
`KIOSK_RATE_LIMIT` as "count/seconds"); see README "Rate limits".
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from .services.errors import QueueActionError


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


def check_rate(request: HttpRequest, scope: str) -> None:
    """Count one ticket for this client in `scope`; raise RateLimited past the limit."""
    limit, window = settings.TICKET_RATE_LIMITS[scope]
    now = int(time.time())
    started = now - now % window
    key = f"ratelimit:{scope}:{client_id(request)}:{started}"
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
            f"Too many tickets from this device: at most {limit} in {_human(window)}. "
            f"Please try again in {_human(retry)}, or ask at the desk.",
            retry_after=retry,
        )


def _human(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = (seconds + 59) // 60
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
