"""Row locks every service takes before deciding anything positional."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import gettext as _

from ..models import Queue, Ticket
from ..errors import NotFound


def lock_queue(queue_id: int) -> Queue:
    """Lock one queue row for the rest of the transaction.

    `of=("self",)` keeps PostgreSQL from also locking the joined location row.
    On SQLite the IMMEDIATE transaction already serialises writers. The waiting
    room (if any) comes along: the wait estimate asks `room_slug`, which would
    otherwise cost a query of its own after every join.
    """
    try:
        return (Queue.objects.select_for_update(of=("self",)).select_related("location", "waiting_room")
                .get(pk=queue_id))
    except Queue.DoesNotExist:
        raise NotFound(_("Queue %(id)s does not exist.") % {"id": queue_id}) from None


def lock_queues(queue_ids: Iterable[int]) -> list[Queue]:
    """Lock several queue rows in primary-key order, so two transactions that
    need the same pair never wait on each other in opposite orders."""
    ids = sorted(set(queue_ids))
    queues = list(
        Queue.objects.select_for_update(of=("self",)).select_related("location")
        .filter(pk__in=ids).order_by("pk")
    )
    if len(queues) != len(ids):
        missing = set(ids) - {q.pk for q in queues}
        raise NotFound(_("Queue %(id)s does not exist.") % {"id": sorted(missing)[0]})
    return queues


def lock_ticket_queue(ticket_id: int) -> tuple[Queue, Ticket]:
    """Lock a ticket's queue, then read the ticket fresh under that lock.

    The queue is looked up first without a lock (a ticket never changes queue),
    then locked; only then is the ticket's status trusted.
    """
    queue_id = Ticket.objects.filter(pk=ticket_id).values_list("queue_id", flat=True).first()
    if queue_id is None:
        raise NotFound(_("Ticket %(id)s does not exist.") % {"id": ticket_id})
    queue = lock_queue(queue_id)
    ticket = Ticket.objects.select_related("counter").get(pk=ticket_id)
    ticket.queue = queue
    return queue, ticket
