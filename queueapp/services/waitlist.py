"""Capacity waitlists: confirm waiting requests in order without overbooking."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from ..models import Queue, QueueEvent, Ticket, TicketStatus
from ..selectors import waiting_tickets
from ._events import record_event
from ._locks import lock_queue


def admit_locked(queue: Queue, *, acting_user=None) -> list[Ticket]:
    """Confirm waiting requests in order while seats remain (queue locked by caller).

    Strict order by default: when the head needs more seats than are free,
    everyone waits for it. With `allow_skip`, smaller requests behind it go first.
    """
    admitted: list[Ticket] = []
    for ticket in waiting_tickets(queue):
        if queue.seats_free <= 0:
            break
        if ticket.party_size > queue.seats_free:
            if queue.allow_skip:
                continue
            break
        left = (ticket.priority, ticket.seq)
        ticket.queue = queue
        ticket.status = TicketStatus.CONFIRMED
        ticket.confirmed_at = timezone.now()
        ticket.save(update_fields=["status", "confirmed_at"])
        queue.seats_taken += ticket.party_size
        Queue.objects.filter(pk=queue.pk).update(seats_taken=queue.seats_taken)
        record_event(queue, QueueEvent.Kind.CONFIRMED, ticket=ticket, actor=acting_user,
                     left_line=left, data={"seats_taken": queue.seats_taken})
        admitted.append(ticket)
    return admitted


@transaction.atomic(durable=True)
def do_confirm_waitlist(queue: Queue | int, *, acting_user=None) -> list[Ticket]:
    """Confirm the waitlist of a capacity queue. Locks the queue row."""
    queue = lock_queue(queue if isinstance(queue, int) else queue.pk)
    return admit_locked(queue, acting_user=acting_user)
