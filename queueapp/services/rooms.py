"""Virtual waiting rooms: admit visitors to another site at a rate, never more inside than allowed.

A waiting room (`models.WaitingRoom`) is a capacity queue whose visitors are
one-seat tickets. Inside = CONFIRMED tickets = `queue.seats_taken`, which the
check constraint keeps within `queue.capacity` (the most inside at once).

- Admission (`admit_room_locked`, queue row locked): evenly spaced at the
  room's rate. `next_admission_at` is the earliest instant of the next
  admission; a cycle admits everyone whose slot has come (never more than the
  free places), and moves it on by one interval per admission. Credit for
  slots nobody used is kept for at most `SLACK` (one worker cycle), so an
  idle room does not save up a burst. Runs on a join, on a release and in the
  worker's cycle (`run_room_cycles`, every second).
- Release: the protected site reports "done" (COMPLETED) or "abandoned"
  (CANCELLED) over the API; an admission nobody reported frees itself
  `admission_seconds` after it was made (EXPIRED, `do_expire_admissions`).

Every admission and every release is a QueueEvent of the room's queue.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from ..estimates import service_seconds
from ..models import Priority, Queue, QueueEvent, Ticket, TicketStatus, WaitingRoom
from ._events import record_event
from ._locks import lock_queue
from .errors import InvalidInput, InvalidTransition, NotFound, QueueFull, QueuePaused
from .tickets import create_ticket_locked
from .waitlist import _each_queue, _set_seats, admit_locked

Kind = QueueEvent.Kind
SLACK = timedelta(seconds=1)  # unused admission slots older than this are lost
ROOM_KEY_PREFIX = "qr_"
OUTCOMES = {"done": (TicketStatus.COMPLETED, Kind.COMPLETED),
            "abandoned": (TicketStatus.CANCELLED, Kind.CANCELLED)}


def _room_of(queue: Queue) -> WaitingRoom:
    room = WaitingRoom.objects.get(queue_id=queue.pk)
    room.queue = queue
    return room


def admission_allowance(room: WaitingRoom, now: datetime) -> tuple[int, datetime]:
    """How many the rate lets in at `now`, and the slot the first of them takes."""
    interval = timedelta(seconds=room.admission_interval)
    slot = max(room.next_admission_at or now, now - SLACK)
    if slot > now:
        return 0, slot
    return int((now - slot) / interval) + 1, slot


def admit_room_locked(room: WaitingRoom, queue: Queue, *, now: datetime) -> list[Ticket]:
    """Admit whoever the rate and the free places allow (queue row locked by the caller)."""
    allowed, slot = admission_allowance(room, now)
    if allowed <= 0 or queue.seats_free <= 0:
        return []
    admitted = admit_locked(queue, now=now, cycle=True, budget=allowed)
    if admitted:
        room.next_admission_at = slot + len(admitted) * timedelta(seconds=room.admission_interval)
        WaitingRoom.objects.filter(pk=room.pk).update(next_admission_at=room.next_admission_at)
    return admitted


@transaction.atomic(durable=True)
def do_create_waiting_room(*, location, name: str, slug: str, prefix: str, target_url: str,
                           admit_per_minute: int, max_inside: int,
                           admission_seconds: int = 600) -> WaitingRoom:
    """A waiting room and its queue (a capacity queue of `max_inside` places that
    admits only through the room's cycle: `batch_size` is set for that)."""
    for field, value, least in (("admit_per_minute", admit_per_minute, 1), ("max_inside", max_inside, 1),
                                ("admission_seconds", admission_seconds, 10)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InvalidInput(f"{field} must be a whole number of at least {least}.", field=field)
    from django.core.exceptions import ValidationError
    from django.core.validators import URLValidator, validate_slug

    try:
        validate_slug(slug)
    except ValidationError:
        raise InvalidInput("slug may only hold letters, digits, - and _.", field="slug") from None
    try:
        URLValidator(schemes=["http", "https"])(target_url)
    except ValidationError:
        raise InvalidInput("target_url must be an http(s) address such as https://shop.example.com/.",
                           field="target_url") from None
    if WaitingRoom.objects.filter(slug=slug).exists() or Queue.objects.filter(location=location, slug=slug).exists():
        raise InvalidInput(f"A waiting room or queue called {slug!r} exists already.", field="slug")
    if not re.fullmatch(r"[A-Z0-9]{1,4}", prefix):
        raise InvalidInput("prefix must be 1-4 capital letters or digits.", field="prefix")
    queue = Queue.objects.create(location=location, name=name, slug=slug, prefix=prefix,
                                 kind=Queue.Kind.CAPACITY, capacity=max_inside, batch_size=max_inside)
    return WaitingRoom.objects.create(queue=queue, slug=slug, target_url=target_url,
                                      admit_per_minute=admit_per_minute, admission_seconds=admission_seconds)


@transaction.atomic(durable=True)
def do_enter_line(room: WaitingRoom | int, *, now: datetime | None = None) -> Ticket:
    """A visitor arrives: a place at the back of the line, admitted at once if the
    rate and the free places allow. Locks the room's queue row."""
    room_id = room if isinstance(room, int) else room.pk
    queue_id = WaitingRoom.objects.filter(pk=room_id).values_list("queue_id", flat=True).first()
    if queue_id is None:
        raise NotFound(f"Waiting room {room_id} does not exist.")
    queue = lock_queue(queue_id)
    room = _room_of(queue)
    if queue.is_paused:
        raise QueuePaused(f"{queue.name} is closed for now; please come back later.")
    if queue.max_waiting is not None:
        from ..selectors import waiting_tickets

        if waiting_tickets(queue).count() >= queue.max_waiting:
            raise QueueFull(f"{queue.name} is full; please come back later.")
    ticket = create_ticket_locked(queue, priority=Priority.NORMAL)
    record_event(queue, Kind.JOINED, ticket=ticket, entered_line=(ticket.priority, ticket.seq))
    admit_room_locked(room, queue, now=now or timezone.now())
    ticket.refresh_from_db(fields=["status", "confirmed_at"])
    ticket.queue = queue
    return ticket


@transaction.atomic(durable=True)
def do_release_visitor(room: WaitingRoom, visitor_id: int, *, outcome: str,
                       now: datetime | None = None) -> Ticket:
    """The protected site says a visitor is done or abandoned: their place inside
    goes to the next in line (at the room's rate). Locks the room's queue row."""
    if outcome not in OUTCOMES:
        raise InvalidInput(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}.", field="outcome")
    queue = lock_queue(room.queue_id)
    room = _room_of(queue)
    ticket = Ticket.objects.filter(queue=queue, pk=visitor_id).first()
    if ticket is None:
        raise NotFound(f"Visitor {visitor_id} never entered {room.slug}.", field="visitor_id")
    if ticket.status != TicketStatus.CONFIRMED:
        raise InvalidTransition(f"Visitor {visitor_id} is not inside: {_state_words(ticket)}.",
                                field="visitor_id")
    ticket.queue = queue
    now = now or timezone.now()
    status, kind = OUTCOMES[outcome]
    _release(queue, ticket, status=status, kind=kind, now=now, reason=outcome)
    admit_room_locked(room, queue, now=now)
    return ticket


def _state_words(ticket: Ticket) -> str:
    return {TicketStatus.WAITING: "still waiting in line", TicketStatus.COMPLETED: "already reported done",
            TicketStatus.CANCELLED: "already left", TicketStatus.EXPIRED: "the admission expired"
            }.get(ticket.status, ticket.get_status_display().lower())


def _release(queue: Queue, ticket: Ticket, *, status: str, kind: str, now: datetime, reason: str) -> None:
    ticket.status = status
    ticket.finished_at = now
    ticket.save(update_fields=["status", "finished_at"])
    _set_seats(queue, -1)
    # A stay that ends can change the room's pace (`estimates.room_interval`)
    # and so every wait shown: the event carries it, as a completion does.
    record_event(queue, kind, ticket=ticket,
                 data={"reason": reason, "seats_released": 1, "seats_taken": queue.seats_taken,
                       "capacity": queue.capacity, "service_seconds": service_seconds(queue)})


def do_expire_admissions(*, now: datetime | None = None) -> int:
    """Free every admission not reported within its lifetime; one transaction per
    room. Candidates are read without a lock and re-read under the queue lock,
    so two workers never release the same visitor twice."""
    now = now or timezone.now()
    rooms = WaitingRoom.objects.values_list("queue_id", "admission_seconds")
    due = [queue_id for queue_id, seconds in rooms
           if Ticket.objects.filter(queue_id=queue_id, status=TicketStatus.CONFIRMED,
                                    confirmed_at__lte=now - timedelta(seconds=seconds)).exists()]
    return sum(_each_queue(due, lambda queue_id: _expire_room(queue_id, now=now)))


@transaction.atomic(durable=True)
def _expire_room(queue_id: int, *, now: datetime) -> int:
    queue = lock_queue(queue_id)
    room = _room_of(queue)
    lapsed = list(Ticket.objects.filter(
        queue=queue, status=TicketStatus.CONFIRMED,
        confirmed_at__lte=now - timedelta(seconds=room.admission_seconds)).order_by("confirmed_at", "pk"))
    for ticket in lapsed:
        ticket.queue = queue
        _release(queue, ticket, status=TicketStatus.EXPIRED, kind=Kind.EXPIRED, now=now, reason="not reported")
    admit_room_locked(room, queue, now=now)
    return len(lapsed)


def run_room_cycles(*, now: datetime | None = None) -> int:
    """The worker's admission cycle over every room with someone waiting and a place free."""
    from django.db.models import F

    candidates = (Queue.objects.filter(waiting_room__isnull=False, is_paused=False,
                                       seats_taken__lt=F("capacity"), tickets__status=TicketStatus.WAITING)
                  .values_list("pk", flat=True).distinct().order_by("pk"))
    return sum(_each_queue(list(candidates), lambda queue_id: len(_room_cycle(queue_id, now=now))))


@transaction.atomic(durable=True)
def _room_cycle(queue_id: int, *, now: datetime | None) -> list[Ticket]:
    queue = lock_queue(queue_id)
    return admit_room_locked(_room_of(queue), queue, now=now or timezone.now())


# --- the room's API key ---------------------------------------------------------

def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def do_issue_room_key(room: WaitingRoom) -> str:
    """A new API key for the protected site (replaces the old one); only its
    digest is kept, so it is shown once."""
    key = ROOM_KEY_PREFIX + secrets.token_urlsafe(32)
    WaitingRoom.objects.filter(pk=room.pk).update(token_digest=_digest(key))
    room.token_digest = _digest(key)
    return key


def room_key_matches(room: WaitingRoom, key: str) -> bool:
    return bool(room.token_digest) and hmac.compare_digest(room.token_digest, _digest(key))
