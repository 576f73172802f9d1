"""The HTTP client every sender shares (webhooks, SMS providers)."""

from __future__ import annotations

import httpx
from django.conf import settings

_client: httpx.Client | None = None


def http_client() -> httpx.Client:
    """One pooled client per process (thread-safe), with the send timeout."""
    global _client
    if _client is None:
        timeout = settings.ALERTS_SEND_TIMEOUT
        _client = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
                               limits=httpx.Limits(max_connections=max(settings.ALERTS_CONCURRENCY, 10)),
                               follow_redirects=False)
    return _client
