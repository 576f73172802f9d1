"""Appointments beside walk-ins: book, move, cancel, check in, mark no-shows.

Every function locks the queue row first (the same lock as every other action
on the queue), so a slot's count is decided under it; the check constraint
`slot_never_overbooked` refuses an overbooked slot even if a bug got past
that. A booking change is a `QueueEvent` (booked, moved, cancelled, missed)
carrying the booking's id and slot, never its contact; a check-in makes a
ticket that joins the line with a JOINED event whose `entered` key is where
the rule below put it, so the integrity replay and the live screens need
nothing new.

The rule (documented in docs/architecture.md, "Appointments"): checked in
within its window (from `early_minutes` before the booked time to
`late_minutes` after it) a booking stands before the walk-ins of its priority
who joined at or after its booked time minus `grace_minutes`
(`_line.booking_place`); later it joins at the back as a walk-in
(`arrived_late`); a booking nobody checked in by the end of its window is
marked missed by the worker. Priority still comes first: an urgent walk-in
goes before an on-time booking of normal priority.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from ..alerts.models import Contact
from ..errors import CheckInNotOpen, InvalidInput, InvalidTransition, NotFound, QueuePaused, SlotFull
from ..models import (Booking, BookingStatus, Priority, Queue, QueueEvent, Slot, booking_status_in_sentence,
                      new_booking_code)
from ..slots import check_in_window, check_slot, schedule_of
from ._events import record_event
from ._line import booking_place
from ._locks import lock_queue
from .tickets import create_ticket_locked

Kind = QueueEvent.Kind
CHECK_IN_WAYS = ("kiosk", "page", "staff")


def _schedule(queue: Queue):
    schedule = schedule_of(queue)
    if schedule is None or queue.kind != Queue.Kind.COUNTER:
        raise InvalidInput(_("%(queue)s takes no appointments.") % {"queue": queue.name}, field="queue")
    return schedule


def _take_place(queue: Queue, start: datetime, end: datetime, capacity: int) -> Slot:
    """One more booking in the slot (queue locked): created on its first booking."""
    slot, _created = Slot.objects.get_or_create(queue=queue, starts_at=start,
                                         defaults={"ends_at": end, "capacity": capacity})
    if slot.booked >= slot.capacity:
        raise SlotFull(ngettext("The %(time)s slot is fully booked (%(places)s place); pick another.",
                                "The %(time)s slot is fully booked (%(places)s places); pick another.",
                                slot.capacity) % {"time": f"{_local(queue, start):%H:%M}", "places": slot.capacity},
                       field="starts_at")
    Slot.objects.filter(pk=slot.pk).update(booked=F("booked") + 1)
    return slot


def _release_place(slot: Slot) -> None:
    Slot.objects.filter(pk=slot.pk).update(booked=F("booked") - 1)


def _local(queue: Queue, at: datetime) -> datetime:
    return at.astimezone(ZoneInfo(queue.location.timezone))


def _slot_data(booking: Booking, slot: Slot) -> dict:
    # The booking's id and time only: its code, token and contact stay out of events.
    return {"booking": booking.pk, "slot": _utc(slot.starts_at)}


def _utc(at: datetime) -> str:
    return at.astimezone(dt_timezone.utc).isoformat()


def _lock_booking(booking_id: int) -> tuple[Queue, Booking]:
    queue_id = Booking.objects.filter(pk=booking_id).values_list("slot__queue_id", flat=True).first()
    if queue_id is None:
        raise NotFound(_("No such booking."))
    queue = lock_queue(queue_id)
    booking = Booking.objects.select_related("slot").get(pk=booking_id)
    return queue, booking


def _pk(obj) -> int:
    return obj if isinstance(obj, int) else obj.pk


@transaction.atomic(durable=True)
def do_book(queue: Queue | int, *, starts_at: datetime, priority: int = Priority.NORMAL,
            contact: tuple[str, str] | None = None, note: str = "", acting_user=None,
            now: datetime | None = None) -> Booking:
    """Book one place in the slot of `queue` starting at `starts_at`. Locks the queue row.

    `contact`: (channel, address) already checked by the alerts' contact parsing
    (`alerts.contacts.alert_contact_from` / `parse_contact`), with consent given;
    it becomes the ticket's alert contact at check-in. Refuses a slot the
    schedule does not publish, one in the past, and a full one (`SlotFull`).
    """
    queue = lock_queue(_pk(queue))
    schedule = _schedule(queue)
    if not schedule.is_open and acting_user is None:
        raise InvalidInput(_("%(queue)s is not taking bookings right now.") % {"queue": queue.name}, field="queue")
    if priority not in Priority.values:
        raise InvalidInput(_("Priority must be one of %(values)s.") % {
            "values": ", ".join(str(v) for v in Priority.values)}, field="priority")
    start, end = check_slot(schedule, starts_at, now)
    slot = _take_place(queue, start, end, schedule.per_slot)
    channel, address = contact or ("", "")
    code = new_booking_code()
    while Booking.objects.filter(code=code).exists():  # 40 bits: a repeat is rare, never fatal
        code = new_booking_code()
    booking = Booking.objects.create(slot=slot, code=code, priority=priority, note=note, contact_channel=channel,
                                     contact_address=address, booked_by=acting_user if getattr(
                                         acting_user, "is_authenticated", False) else None)
    record_event(queue, Kind.BOOKED, actor=acting_user, data=_slot_data(booking, slot))
    return booking


@transaction.atomic(durable=True)
def do_move_booking(booking: Booking | int, *, starts_at: datetime, acting_user=None,
                    now: datetime | None = None) -> Booking:
    """Move a booking not yet checked in to another slot of its queue. Locks the queue row."""
    queue, booking = _lock_booking(_pk(booking))
    if booking.status != BookingStatus.BOOKED:
        raise InvalidTransition(_("This booking is %(status)s; it can no longer be moved.") % {
            "status": booking_status_in_sentence(booking.status)}, field="booking")
    schedule = _schedule(queue)
    start, end = check_slot(schedule, starts_at, now)
    old = booking.slot
    if start == old.starts_at:
        raise InvalidInput(_("The booking is already in that slot."), field="starts_at")
    slot = _take_place(queue, start, end, schedule.per_slot)
    _release_place(old)
    booking.slot = slot
    booking.save(update_fields=["slot"])
    record_event(queue, Kind.BOOKING_MOVED, actor=acting_user,
                 data={**_slot_data(booking, slot), "from": _utc(old.starts_at)})
    return booking


def _end(booking: Booking, status: str, now: datetime) -> None:
    booking.status = status
    booking.ended_at = now
    # Personal data goes when the booking ends: the contact, and the staff note (it may name someone).
    booking.contact_channel = booking.contact_address = booking.note = ""
    booking.save(update_fields=["status", "ended_at", "contact_channel", "contact_address", "note"])


@transaction.atomic(durable=True)
def do_cancel_booking(booking: Booking | int, *, acting_user=None, by_holder: bool = False) -> Booking:
    """Cancel a booking not yet checked in: its place in the slot is free again. Locks the queue row."""
    queue, booking = _lock_booking(_pk(booking))
    if booking.status != BookingStatus.BOOKED:
        raise InvalidTransition(_("This booking is %(status)s; there is nothing to cancel.") % {
            "status": booking_status_in_sentence(booking.status)}, field="booking")
    _release_place(booking.slot)
    _end(booking, BookingStatus.CANCELLED, timezone.now())
    record_event(queue, Kind.BOOKING_CANCELLED, actor=acting_user,
                 data={**_slot_data(booking, booking.slot), "by": "holder" if by_holder else "staff"})
    return booking


@transaction.atomic(durable=True)
def do_check_in(booking: Booking | int, *, via: str, acting_user=None, now: datetime | None = None) -> Booking:
    """The booking's holder arrived: a ticket joins the line. Locks the queue row.

    On time (within the window): the ticket stands where `booking_place` puts
    it. Later, or after the worker marked it missed (the same day): at the back,
    as a walk-in, and the booking says so (`arrived_late`). Before the window
    opens: refused with the time it opens. A paused queue refuses, as for a join.
    """
    if via not in CHECK_IN_WAYS:
        raise InvalidInput(_("Check in by one of %(ways)s.") % {"ways": ", ".join(CHECK_IN_WAYS)}, field="via")
    queue, booking = _lock_booking(_pk(booking))
    schedule = _schedule(queue)
    now = now or timezone.now()
    slot = booking.slot
    opens, closes = check_in_window(booking)
    if booking.status not in (BookingStatus.BOOKED, BookingStatus.MISSED):
        raise InvalidTransition(_("This booking is %(status)s; it cannot be checked in.") % {
            "status": booking_status_in_sentence(booking.status)}, field="booking")
    if booking.status == BookingStatus.MISSED and \
            queue.location.business_day(now) != queue.location.business_day(slot.starts_at):
        raise InvalidTransition(_("This booking was for another day and has ended; take a ticket or book again."),
                                field="booking")
    if now < opens:
        raise CheckInNotOpen(_("Check-in for your %(time)s appointment opens at %(opens)s.") % {
            "time": f"{_local(queue, slot.starts_at):%H:%M}", "opens": f"{_local(queue, opens):%H:%M}"}, field="booking")
    if queue.is_paused:
        raise QueuePaused(_("%(queue)s is not taking anyone right now (paused); please ask at the desk.") % {
            "queue": queue.name})
    on_time = booking.status == BookingStatus.BOOKED and now <= closes
    if on_time:
        place_at = slot.starts_at - timedelta(minutes=schedule.grace_minutes)
        ticket = create_ticket_locked(queue, priority=booking.priority, note=booking.note,
                                      seq=booking_place(queue, place_at), queued_at=min(place_at, now))
    else:
        ticket = create_ticket_locked(queue, priority=booking.priority, note=booking.note)
    if booking.contact_address:
        # The consent given when booking carries over to the ticket's alerts (one contact path).
        Contact.objects.create(ticket=ticket, channel=booking.contact_channel, address=booking.contact_address,
                               consent_at=booking.created_at)
    booking.status = BookingStatus.CHECKED_IN
    booking.ticket = ticket
    booking.arrived_late = not on_time
    booking.checked_in_at = now
    booking.checked_in_by = via
    # The contact and the note now live on the ticket (its alerts, its note), and go with it
    # when its retention ends.
    booking.contact_channel = booking.contact_address = booking.note = ""
    booking.save(update_fields=["status", "ticket", "arrived_late", "checked_in_at", "checked_in_by",
                                "contact_channel", "contact_address", "note"])
    record_event(queue, Kind.JOINED, ticket=ticket, actor=acting_user,
                 entered_line=(ticket.priority, ticket.seq),
                 data={**_slot_data(booking, slot), "arrival": "on_time" if on_time else "late", "via": via})
    return booking


def do_mark_missed_bookings(now: datetime | None = None) -> int:
    """Bookings nobody checked in by the end of their window become no-shows, an
    event each. One transaction per queue, its row locked and the candidates
    re-read under it, so two workers never mark the same booking twice."""
    now = now or timezone.now()
    marked = 0
    queue_ids = (Booking.objects.filter(status=BookingStatus.BOOKED, slot__starts_at__lt=now)
                 .values_list("slot__queue_id", flat=True).distinct())
    for queue_id in list(queue_ids):
        marked += _mark_missed(queue_id, now)
    return marked


@transaction.atomic(durable=True)
def _mark_missed(queue_id: int, now: datetime) -> int:
    queue = lock_queue(queue_id)
    schedule = schedule_of(queue)
    late = timedelta(minutes=schedule.late_minutes if schedule else 0)
    due = list(Booking.objects.select_related("slot").filter(
        status=BookingStatus.BOOKED, slot__queue=queue, slot__starts_at__lt=now - late).order_by("slot__starts_at", "pk"))
    for booking in due:
        _end(booking, BookingStatus.MISSED, now)
        record_event(queue, Kind.BOOKING_MISSED, data=_slot_data(booking, booking.slot))
    return len(due)
