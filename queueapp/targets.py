"""Service targets: the longest wait a queue aims for (`Queue.target_wait_minutes`).

The one rule for "past the target", used by the console's waiting list and the
lobby display (first paint and live updates come from the same reads,
`live.reads`), by the managers' staff wait alert (`alerts.jobs.staff_wait_alerts`)
and, for tickets already called, by the statistics' share served within target
(`stats`, with the statistics' own definition of a wait: from taking the ticket
to its last call).

A waiting ticket is past the target once it has been in the line (since
`queued_at`: a missed call puts it back with a new time) for the target's
minutes or longer. Screens carry the instant it passes (`passes_at`) so a page
can flag a row when that moment comes without a server round trip.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import F, Q
from django.db.models.lookups import LessThanOrEqual


def target_of(queue) -> timedelta | None:
    """The queue's target as a duration; None when it has none."""
    minutes = getattr(queue, "target_wait_minutes", None)
    return timedelta(minutes=minutes) if minutes else None


def passes_at(queue, queued_at: datetime) -> datetime | None:
    """The instant a ticket in line since `queued_at` passes the target."""
    target = target_of(queue)
    return queued_at + target if target is not None else None


def past_target(queue, queued_at: datetime, now: datetime) -> bool:
    """Whether a ticket in line since `queued_at` is past the target at `now`."""
    at = passes_at(queue, queued_at)
    return at is not None and now >= at


def served_within_target(wait) -> Q:
    """Tickets (of a queue with a target) whose `wait` expression, in seconds,
    is within their queue's target: the statistics' share served within target."""
    return Q(queue__target_wait_minutes__isnull=False) & Q(
        LessThanOrEqual(wait, F("queue__target_wait_minutes") * 60))
