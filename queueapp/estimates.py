"""Service-time estimates for wait predictions."""

from __future__ import annotations

from .models import Queue


def service_seconds(queue: Queue) -> float:
    """Seconds one ticket takes at one counter, as far as we know."""
    return float(queue.default_service_seconds)
