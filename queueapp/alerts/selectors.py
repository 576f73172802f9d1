"""Reads about the outbox: how many messages in each state (metrics, statistics page)."""

from __future__ import annotations

from django.db.models import Count, Q

from .models import OutboxMessage, OutboxState


def state_counts(location_id: int | None = None) -> dict[tuple[str, str], int]:
    """{(state, channel): count}, one GROUP BY; a location's own messages when given
    (its queues' messages, its endpoints' webhooks, its managers' alerts)."""
    messages = OutboxMessage.objects.all()
    if location_id is not None:
        messages = messages.filter(Q(queue__location_id=location_id) | Q(endpoint__location_id=location_id))
    return {(row["state"], row["channel"]): row["n"]
            for row in messages.values("state", "channel").annotate(n=Count("pk")).order_by()}


def totals_by_state(location_id: int | None = None) -> dict[str, int]:
    totals = {state: 0 for state in OutboxState.values}
    for (state, _channel), n in state_counts(location_id).items():
        totals[state] += n
    return totals
