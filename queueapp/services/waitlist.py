"""Capacity waitlists: confirm waiting requests in order without ever overbooking.

A capacity queue has `capacity` seats; `seats_taken` counts the seats held by
confirmed requests and open offers (a check constraint keeps it within
capacity). Every function here locks the queue row first and writes one
QueueEvent per ticket it changes.

Admission rule (`admit_locked`), applied on every *admission cycle*:
- requests are taken in the queue's order: priority first, then first come;
- strict order (the default): when the head needs more seats than are free,
  nobody behind it is admitted, so a party of 4 is never starved by a stream
  of singles. With `allow_skip`, the first requests further back that fit
  are admitted instead (the head keeps its place and goes first as soon as
  enough seats are free);
- with `offer_seconds`, an admission is an OFFER holding the seats until
  `offer_expires_at`; the person accepts (CONFIRMED) or declines, or the
  offer expires and its seats go to the next in line. Without it, an
  admission is a confirmation at once;
- `max_open_offers` caps the offers outstanding at once; `batch_size` caps the
  admissions of one cycle;
- a paused queue admits nobody.

When a cycle runs: without `batch_size`, whenever seats or an offer slot may
have become free (a join, a cancellation, an acceptance, a decline, an expiry,
a capacity increase, resume, staff's *Confirm the waitlist*). With
`batch_size` the queue is a virtual waiting room paced by cycles: only the
worker's cycle (`run_waitlist_cycles`) and staff's *Confirm the waitlist*
admit, each at most `batch_size`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import Queue, QueueEvent, Ticket, TicketStatus, status_in_sentence
from ..selectors import is_waiting_room, plan_admissions, waiting_tickets
from ._events import record_event
from ._line import _front_of_line, _save_counters
from ._locks import lock_queue, lock_ticket_queue
from ..errors import InvalidInput, InvalidTransition, OfferExpired, QueueFull, QueuePaused

Kind = QueueEvent.Kind
log = logging.getLogger(__name__)
MAX_CAPACITY = 1_000_000


def _pk(obj) -> int:
    return obj if isinstance(obj, int) else obj.pk


def _set_seats(queue: Queue, delta: int) -> None:
    # The caller holds the row lock, so the in-memory value is the truth; the
    # check constraint queue_seats_within_capacity refuses any overbooking.
    queue.seats_taken += delta
    Queue.objects.filter(pk=queue.pk).update(seats_taken=queue.seats_taken)


def check_waitlist_room(queue: Queue, ticket: Ticket) -> None:
    """Refuse a new request that would have to wait beyond `max_waiting` (queue locked).

    Checked after admission, so a request that gets seats at once is never
    refused for a full waitlist; raising rolls the whole join back.
    """
    if queue.max_waiting is None or ticket.status != TicketStatus.WAITING:
        return
    waiting = waiting_tickets(queue).count()
    if waiting > queue.max_waiting:
        raise QueueFull(_("%(queue)s is fully booked and its waitlist is full (%(waiting)s waiting); please "
                          "try again later.") % {"queue": queue.name, "waiting": waiting - 1})


def admit_locked(queue: Queue, *, acting_user=None, now: datetime | None = None,
                 cycle: bool = False, budget: int | None = None) -> list[Ticket]:
    """Run one admission cycle (queue row locked by the caller); see the module doc.

    `cycle=False` is an automatic trigger (join, release): a batched waiting room
    ignores it and waits for its next cycle. `budget` replaces `batch_size` as
    the most admitted (a waiting room passes what its rate allows now).
    """
    if queue.kind != Queue.Kind.CAPACITY or queue.is_paused:
        return []
    if queue.batch_size is not None and not cycle:
        return []
    now = now or timezone.now()
    if budget is None:
        budget = queue.batch_size
    admitted: list[Ticket] = []
    for ticket in plan_admissions(queue, budget=budget):
        ticket.queue = queue
        admitted.append(_admit(queue, ticket, acting_user=acting_user, now=now))
    return admitted


def _admit(queue: Queue, ticket: Ticket, *, acting_user, now: datetime) -> Ticket:
    left = (ticket.priority, ticket.seq)
    data: dict = {}
    if queue.offer_seconds:
        ticket.status = TicketStatus.OFFERED
        ticket.offer_expires_at = now + timedelta(seconds=queue.offer_seconds)
        ticket.save(update_fields=["status", "offer_expires_at"])
        kind = Kind.OFFERED
        data["expires_at"] = ticket.offer_expires_at.isoformat()
    else:
        ticket.status = TicketStatus.CONFIRMED
        ticket.confirmed_at = now
        ticket.save(update_fields=["status", "confirmed_at"])
        kind = Kind.CONFIRMED
    _set_seats(queue, ticket.party_size)
    # allow_skip is a setting without events of its own: the admission records the
    # rule it followed, so the integrity replay judges it by that rule (queueapp.replay).
    data.update(seats_taken=queue.seats_taken, capacity=queue.capacity, allow_skip=queue.allow_skip)
    # Stamped with the admission's instant: a waiting room's rate is judged at
    # `now`, and under load the event was written up to 1.8 s later, so the
    # events showed 11 admissions in a second that held 10 (docs/benchmarks.md, session 8).
    record_event(queue, kind, ticket=ticket, actor=acting_user, left_line=left, data=data, at=now)
    return ticket


def _release_offer(queue: Queue, ticket: Ticket, *, status: str, kind: str, now: datetime,
                   acting_user=None) -> None:
    """An offer ends without a confirmation: its seats go back to the pool."""
    ticket.status = status
    ticket.finished_at = now
    ticket.save(update_fields=["status", "finished_at"])
    _set_seats(queue, -ticket.party_size)
    record_event(queue, kind, ticket=ticket, actor=acting_user,
                 data={"seats_released": ticket.party_size, "seats_taken": queue.seats_taken,
                       "capacity": queue.capacity})


def _is_lapsed(ticket: Ticket, now: datetime) -> bool:
    # An offer is good strictly before its expiry instant, never at it.
    return ticket.status == TicketStatus.OFFERED and now >= ticket.offer_expires_at


def _expired_message(ticket: Ticket, queue: Queue) -> str:
    local = ticket.offer_expires_at.astimezone(ZoneInfo(queue.location.timezone))
    return _("Sorry, the offer for %(number)s expired at %(time)s and its seats went to the next request "
             "in line.") % {"number": ticket.display_number, "time": f"{local:%H:%M:%S}"}


@transaction.atomic(durable=True)
def do_confirm_waitlist(queue: Queue | int, *, acting_user=None,
                        now: datetime | None = None) -> list[Ticket]:
    """Staff's *Confirm the waitlist*: one admission cycle. Locks the queue row.

    Returns the requests confirmed (or offered); an empty list when no seat is
    free or nobody waiting fits.
    """
    queue = lock_queue(_pk(queue))
    if queue.kind != Queue.Kind.CAPACITY:
        raise InvalidInput(_("%(queue)s is a counter queue, not a waitlist.") % {"queue": queue.name}, field="queue")
    if is_waiting_room(queue):
        raise InvalidInput(_("%(queue)s is a waiting room: it admits at its own rate.") % {"queue": queue.name},
                           field="queue")
    if queue.is_paused:
        raise QueuePaused(_("%(queue)s is paused; resume it before confirming the waitlist.") % {"queue": queue.name})
    return admit_locked(queue, acting_user=acting_user, now=now, cycle=True)


@transaction.atomic(durable=True)
def do_admit_request(ticket: Ticket | int, *, offer: bool = False, acting_user=None,
                     now: datetime | None = None) -> Ticket:
    """Staff admit one waiting request now, out of turn: confirmed, or offered
    (`offer`, on a waitlist that makes offers). Locks the queue row. Refused if
    its seats are not free: nobody is ever overbooked."""
    queue, ticket = lock_ticket_queue(_pk(ticket))
    if queue.kind != Queue.Kind.CAPACITY or is_waiting_room(queue):
        raise InvalidInput(_("%(queue)s is not a waitlist.") % {"queue": queue.name}, field="queue")
    if ticket.status != TicketStatus.WAITING:
        raise InvalidTransition(_("%(number)s is not waiting: it is %(status)s.") % {
            "number": ticket.display_number, "status": status_in_sentence(ticket.status)}, field="ticket")
    if ticket.party_size > queue.seats_free:
        raise InvalidTransition(_("%(number)s needs %(seats)s seats and only %(free)s are free.") % {
            "number": ticket.display_number, "seats": ticket.party_size, "free": queue.seats_free}, field="ticket")
    if offer and not queue.offer_seconds:
        raise InvalidInput(_("%(queue)s confirms at once; it makes no offers.") % {"queue": queue.name}, field="action")
    now = now or timezone.now()
    if offer:
        return _admit(queue, ticket, acting_user=acting_user, now=now)
    # A direct confirmation, whatever the queue's offer setting.
    seconds, queue.offer_seconds = queue.offer_seconds, None
    try:
        return _admit(queue, ticket, acting_user=acting_user, now=now)
    finally:
        queue.offer_seconds = seconds


@transaction.atomic(durable=True)
def do_move_to_front(ticket: Ticket | int, *, acting_user=None, now: datetime | None = None) -> Ticket:
    """Staff put a waiting request first in its priority (a new place below every
    other); an admission cycle follows, since the new head may fit. Locks the queue row."""
    queue, ticket = lock_ticket_queue(_pk(ticket))
    if is_waiting_room(queue):  # its visitors are let in in arrival order, nobody jumps the line
        raise InvalidInput(_("%(queue)s is a waiting room: it admits at its own rate.") % {"queue": queue.name},
                           field="queue")
    if ticket.status != TicketStatus.WAITING:
        raise InvalidTransition(_("%(number)s is not waiting: it is %(status)s.") % {
            "number": ticket.display_number, "status": status_in_sentence(ticket.status)}, field="ticket")
    left = (ticket.priority, ticket.seq)
    ticket.seq = _front_of_line(queue)
    _save_counters(queue)
    ticket.save(update_fields=["seq"])
    record_event(queue, Kind.REQUEUED, ticket=ticket, actor=acting_user, left_line=left,
                 entered_line=(ticket.priority, ticket.seq), data={"moved": "front"})
    admit_locked(queue, acting_user=acting_user, now=now)
    return ticket


@transaction.atomic(durable=True)
def do_set_capacity(queue: Queue | int, *, capacity: int, acting_user=None,
                    now: datetime | None = None) -> Queue:
    """Change the number of seats. Locks the queue row.

    Refuses to go below the seats already held (confirmed or offered): those
    people were promised a place. A larger capacity admits from the waitlist.
    """
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not 0 <= capacity <= MAX_CAPACITY:
        raise InvalidInput(_("Capacity must be a whole number from 0 to %(most)s.") % {"most": MAX_CAPACITY},
                           field="capacity")
    queue = lock_queue(_pk(queue))
    if queue.kind != Queue.Kind.CAPACITY:
        raise InvalidInput(_("%(queue)s is a counter queue; it has no seats.") % {"queue": queue.name}, field="queue")
    if capacity < queue.seats_taken:
        raise InvalidInput(
            _("%(taken)s seats are already confirmed or offered, so the capacity cannot go below %(taken)s. "
              "Cancel requests first to free seats.") % {"taken": queue.seats_taken}, field="capacity")
    if capacity == queue.capacity:
        raise InvalidTransition(_("%(queue)s already has %(capacity)s seats.") % {
            "queue": queue.name, "capacity": capacity}, field="capacity")
    before = queue.capacity
    queue.capacity = capacity
    Queue.objects.filter(pk=queue.pk).update(capacity=capacity)
    record_event(queue, Kind.CAPACITY_CHANGED, actor=acting_user,
                 data={"from": before, "to": capacity, "seats_taken": queue.seats_taken,
                       "capacity": capacity})
    if capacity > before:
        admit_locked(queue, acting_user=acting_user, now=now)
    return queue


def do_accept_offer(ticket: Ticket | int, *, acting_user=None, now: datetime | None = None) -> Ticket:
    """The person takes the seats they were offered. Locks the ticket's queue row.

    An offer is good until its expiry instant whether or not the worker has run:
    a late acceptance expires the offer right here (its seats go to the next in
    line, committed) and then raises OfferExpired.
    """
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        queue, ticket = lock_ticket_queue(_pk(ticket))
        if ticket.status == TicketStatus.OFFERED and not _is_lapsed(ticket, now):
            ticket.status = TicketStatus.CONFIRMED
            ticket.confirmed_at = now
            ticket.save(update_fields=["status", "confirmed_at"])
            record_event(queue, Kind.ACCEPTED, ticket=ticket, actor=acting_user,
                         data={"seats_taken": queue.seats_taken, "capacity": queue.capacity})
            # One offer fewer is open: under `max_open_offers` the next may get one.
            admit_locked(queue, acting_user=acting_user, now=now)
            return ticket
        if ticket.status == TicketStatus.OFFERED:
            _release_offer(queue, ticket, status=TicketStatus.EXPIRED, kind=Kind.EXPIRED, now=now)
            admit_locked(queue, now=now)
        elif ticket.status != TicketStatus.EXPIRED:
            raise InvalidTransition(_("%(number)s has no open offer to accept: it is %(status)s.") % {
                "number": ticket.display_number, "status": status_in_sentence(ticket.status)})
    raise OfferExpired(_expired_message(ticket, queue))


@transaction.atomic(durable=True)
def do_decline_offer(ticket: Ticket | int, *, acting_user=None, now: datetime | None = None) -> Ticket:
    """The person gives up the seats they were offered; the next in line gets them.

    Locks the ticket's queue row. Declining an offer that has already lapsed
    records it as expired (what really happened) and does not raise.
    """
    now = now or timezone.now()
    queue, ticket = lock_ticket_queue(_pk(ticket))
    if ticket.status == TicketStatus.EXPIRED:
        return ticket
    if ticket.status != TicketStatus.OFFERED:
        raise InvalidTransition(_("%(number)s has no open offer to decline: it is %(status)s.") % {
            "number": ticket.display_number, "status": status_in_sentence(ticket.status)})
    if _is_lapsed(ticket, now):
        _release_offer(queue, ticket, status=TicketStatus.EXPIRED, kind=Kind.EXPIRED, now=now)
    else:
        _release_offer(queue, ticket, status=TicketStatus.DECLINED, kind=Kind.DECLINED, now=now,
                       acting_user=acting_user)
    admit_locked(queue, acting_user=acting_user, now=now)
    return ticket


def do_expire_offers(*, now: datetime | None = None) -> int:
    """Expire every lapsed offer, one transaction per queue; returns how many.

    Safe with several workers: the candidates are read without a lock, then
    each queue row is locked and its lapsed offers re-read under the lock, so a
    second worker finds them already expired and does nothing.
    """
    now = now or timezone.now()
    queue_ids = (Ticket.objects.filter(status=TicketStatus.OFFERED, offer_expires_at__lte=now)
                 .values_list("queue_id", flat=True).distinct().order_by("queue_id"))
    return sum(_each_queue(list(queue_ids), lambda queue_id: _expire_queue_offers(queue_id, now=now)))


@transaction.atomic(durable=True)
def _expire_queue_offers(queue_id: int, *, now: datetime) -> int:
    queue = lock_queue(queue_id)
    lapsed = list(Ticket.objects.filter(queue=queue, status=TicketStatus.OFFERED,
                                        offer_expires_at__lte=now).order_by("offer_expires_at", "pk"))
    for ticket in lapsed:
        ticket.queue = queue
        _release_offer(queue, ticket, status=TicketStatus.EXPIRED, kind=Kind.EXPIRED, now=now)
    if lapsed:
        admit_locked(queue, now=now)
    return len(lapsed)


def run_waitlist_cycles(*, now: datetime | None = None) -> int:
    """The worker's admission cycle over every capacity queue that could admit.

    Batched waiting rooms admit their next batch here; for the others it is a
    safety net (their admissions happen at once, so it normally finds nothing).
    Returns how many requests were admitted.
    """
    candidates = (Queue.objects.filter(kind=Queue.Kind.CAPACITY, is_paused=False, waiting_room__isnull=True,
                                       seats_taken__lt=F("capacity"),
                                       tickets__status=TicketStatus.WAITING)
                  .values_list("pk", flat=True).distinct().order_by("pk"))
    return sum(_each_queue(list(candidates), lambda queue_id: len(_cycle_one(queue_id, now=now))))


def _each_queue(queue_ids: list[int], work) -> list[int]:
    """Run `work` per queue, each in its own transaction; one queue failing (and
    rolled back) is logged and must not starve the others of their expiry."""
    done = []
    for queue_id in queue_ids:
        try:
            done.append(work(queue_id))
        except Exception:
            log.exception("waitlist job failed for queue %s", queue_id)
    return done


@transaction.atomic(durable=True)
def _cycle_one(queue_id: int, *, now: datetime | None) -> list[Ticket]:
    queue = lock_queue(queue_id)
    return admit_locked(queue, now=now, cycle=True)


def past_dated_queue_ids(now: datetime | None = None) -> list[int]:
    """Dated waitlists whose date has passed in their location's time zone and
    that still hold waiting requests or open offers."""
    now = now or timezone.now()
    rows = (Queue.objects.filter(kind=Queue.Kind.CAPACITY, service_date__isnull=False,
                                 service_date__lt=now.date() + timedelta(days=1),
                                 tickets__status__in=[TicketStatus.WAITING, TicketStatus.OFFERED])
            .select_related("location").distinct().order_by("pk"))
    return [q.pk for q in rows if q.service_date < q.location.business_day(now)]


def do_expire_past_requests(*, now: datetime | None = None) -> int:
    """Requests still waiting (or holding an offer) on a date that has passed end
    as EXPIRED, one event each; one transaction per queue. Returns how many."""
    now = now or timezone.now()
    return sum(_each_queue(past_dated_queue_ids(now), lambda queue_id: _expire_past(queue_id, now=now)))


@transaction.atomic(durable=True)
def _expire_past(queue_id: int, *, now: datetime) -> int:
    queue = lock_queue(queue_id)
    if queue.service_date is None or queue.service_date >= queue.location.business_day(now):
        return 0
    ended = 0
    for ticket in Ticket.objects.filter(queue=queue, status__in=[TicketStatus.WAITING, TicketStatus.OFFERED]
                                        ).order_by("-priority", "seq"):
        ticket.queue = queue
        if ticket.status == TicketStatus.OFFERED:
            _release_offer(queue, ticket, status=TicketStatus.EXPIRED, kind=Kind.EXPIRED, now=now)
        else:
            left = (ticket.priority, ticket.seq)
            ticket.status = TicketStatus.EXPIRED
            ticket.finished_at = now
            ticket.save(update_fields=["status", "finished_at"])
            record_event(queue, Kind.EXPIRED, ticket=ticket, left_line=left,
                         data={"reason": "date passed", "seats_taken": queue.seats_taken,
                               "capacity": queue.capacity})
        ended += 1
    return ended
