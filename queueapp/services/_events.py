"""Writing a QueueEvent: the one way versions advance and pushes are registered
(through `queueapp.events`, which builds the message and pushes it on commit)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ..alerts.decide import on_event as decide_alerts
from ..events import event_message, instant_us, send_event_committed, send_event_on_commit, ticket_snapshot
from ..models import Counter, Queue, QueueEvent, Ticket


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
    version_taken: bool = False,
    at: datetime | None = None,
) -> QueueEvent:
    """Append the next event of `queue` and register its publication on commit.

    The caller holds the queue row lock (select_for_update), so reading and
    bumping `queue.version` here cannot race. `left_line`/`entered_line` are
    the ordering keys (priority, seq) of a ticket leaving or entering the
    waiting line: a patient screen recomputes its own position from them
    without a database query. `version_taken`: the caller's own update of the
    queue row already moved `queue.version` on to this event's (a waiting
    room's arrival takes its place and its version in one statement). `at`:
    when it happened, if the caller decided it at an instant of its own (an
    admission: the instant its rate was judged at, also the ticket's
    `confirmed_at`); else now.
    """
    assert transaction.get_connection().in_atomic_block, "record_event needs a transaction"
    if not version_taken:
        queue.version += 1
        Queue.objects.filter(pk=queue.pk).update(version=queue.version)
    payload = event_payload(ticket=ticket, left_line=left_line, entered_line=entered_line, data=data)
    event = QueueEvent.objects.create(
        queue=queue,
        version=queue.version,
        kind=kind,
        ticket=ticket,
        counter=counter,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        status_after=ticket.status if ticket is not None else "",
        created_at=at or timezone.now(),
        data=payload,
    )
    announce_event(event, queue=queue, ticket=ticket, left_line=left_line, entered_line=entered_line)
    return event


def event_payload(*, ticket: Ticket | None, left_line: tuple[int, int] | None = None,
                  entered_line: tuple[int, int] | None = None, data: dict | None = None) -> dict:
    """An event's `data` column, keys in the order screens receive them."""
    payload = dict(data or {})
    if left_line is not None:
        payload["left"] = list(left_line)
    if entered_line is not None:
        payload["entered"] = list(entered_line)
        # When the entering ticket took its place (`queued_at`): a screen further
        # back tells from it whether someone was placed ahead after it joined
        # (`selectors.placed_ahead`) without a query.
        payload["entered_at"] = instant_us(ticket.queued_at)
    if ticket is not None:
        payload["ticket"] = ticket_snapshot(ticket)
    return payload


def announce_event(event: QueueEvent, *, queue: Queue, ticket: Ticket | None,
                   left_line: tuple[int, int] | None = None,
                   entered_line: tuple[int, int] | None = None, webhooks: list | None = None,
                   committed: bool = False) -> None:
    """What follows every event row written in the transaction: the alerts and
    webhooks it makes due (same commit) and its live push (after commit).
    `webhooks`: the endpoints that want this event, when the caller has just
    read them (`alerts.decide.webhook_endpoints`). `committed`: written on a
    connection of its own that has committed (`events.send_event_committed`)."""
    decide_alerts(event, queue=queue, ticket=ticket, left_line=left_line, entered_line=entered_line,
                  webhooks=webhooks)
    send = send_event_committed if committed else send_event_on_commit
    send(event_message(queue_id=queue.pk, location_id=queue.location_id,
                                       version=event.version, kind=event.kind, at=event.created_at,
                                       data=event.data))
