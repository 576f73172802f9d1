"""Writing a QueueEvent: the one way versions advance and pushes are registered."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from ..models import Counter, Queue, QueueEvent, Ticket


def ticket_snapshot(ticket: Ticket) -> dict:
    """What screens need to know about a ticket: numbers, never names."""
    return {
        "id": ticket.pk,
        "display": ticket.display_number,
        "number": ticket.number,
        "priority": ticket.priority,
        "seq": ticket.seq,
        "status": ticket.status,
        "party_size": ticket.party_size,
        "counter": ticket.counter.name if ticket.counter_id else None,
        "counter_id": ticket.counter_id,
        "call_count": ticket.call_count,
    }


def record_event(
    queue: Queue,
    kind: str,
    *,
    ticket: Ticket | None = None,
    counter: Counter | None = None,
    actor=None,
    left_line: tuple[int, int] | None = None,
    entered_line: tuple[int, int] | None = None,
    data: dict | None = None,
) -> QueueEvent:
    """Append the next event of `queue` and register its publication on commit.

    The caller holds the queue row lock (select_for_update), so reading and
    bumping `queue.version` here cannot race. `left_line`/`entered_line` are
    the ordering keys (priority, seq) of a ticket leaving or entering the
    waiting line: a patient screen recomputes its own position from them
    without a database query.
    """
    assert transaction.get_connection().in_atomic_block, "record_event needs a transaction"
    queue.version += 1
    Queue.objects.filter(pk=queue.pk).update(version=queue.version)
    payload = dict(data or {})
    if left_line is not None:
        payload["left"] = list(left_line)
    if entered_line is not None:
        payload["entered"] = list(entered_line)
    if ticket is not None:
        payload["ticket"] = ticket_snapshot(ticket)
    event = QueueEvent.objects.create(
        queue=queue,
        version=queue.version,
        kind=kind,
        ticket=ticket,
        counter=counter,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        status_after=ticket.status if ticket is not None else "",
        created_at=timezone.now(),
        data=payload,
    )
    message = {"queue": queue.pk, "location": queue.location_id, "version": event.version,
               "kind": kind, "at": event.created_at.isoformat(), **payload}
    # Imported late: the live layer imports models, and tests may swap it.
    from ..live import publisher

    transaction.on_commit(lambda: publisher.publish(message))
    return event
