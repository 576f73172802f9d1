"""Bookable slots: which a queue publishes on a day, and which still have room.

Reads only. A slot is the start instant of one of the schedule's stretches
(`OpeningHours`) stepped by `slot_minutes`, in the location's time zone, on a
day that is not a `ClosedDay`; it is bookable from now until `days_ahead`
days ahead. Services check a requested start with `check_slot` under the
queue's lock; pages and the API list them with `open_slots`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone
from django.utils.translation import gettext as _

from .errors import InvalidInput, NotFound
from .models import (
    BOOKING_CODE_ALPHABET,
    BOOKING_CODE_LENGTH,
    TOKEN_PATTERN,
    Booking,
    BookingSchedule,
    Queue,
    Slot,
)


@dataclass(frozen=True)
class SlotChoice:
    starts_at: datetime
    ends_at: datetime
    capacity: int
    booked: int

    @property
    def free(self) -> int:
        return max(self.capacity - self.booked, 0)


def schedule_of(queue: Queue) -> BookingSchedule | None:
    try:
        return queue.booking_schedule
    except BookingSchedule.DoesNotExist:
        return None


def slot_times(schedule: BookingSchedule, day: date) -> list[tuple[datetime, datetime]]:
    """The slots the schedule publishes on `day` (local date), as aware instants."""
    if schedule.closed_days.filter(day=day).exists():
        return []
    tz = ZoneInfo(schedule.queue.location.timezone)
    length = timedelta(minutes=schedule.slot_minutes)
    out = []
    for hours in schedule.hours.filter(weekday=day.weekday()).order_by("opens"):
        start = datetime.combine(day, hours.opens, tz)
        end_of_stretch = datetime.combine(day, hours.closes, tz)
        while start + length <= end_of_stretch:
            out.append((start, start + length))
            start += length
    return sorted(set(out))


def bookable_days(schedule: BookingSchedule, now: datetime | None = None) -> tuple[date, date]:
    """First and last local day on which slots may be booked."""
    today = schedule.queue.location.business_day(now)
    return today, today + timedelta(days=schedule.days_ahead)


def open_slots(queue: Queue, day: date, now: datetime | None = None) -> list[SlotChoice]:
    """The day's future slots with their room (full ones included, with free == 0)."""
    schedule = schedule_of(queue)
    now = now or timezone.now()
    if schedule is None:
        return []
    first, last = bookable_days(schedule, now)
    if not first <= day <= last:
        return []
    times = [(s, e) for s, e in slot_times(schedule, day) if s > now]
    if not times:
        return []
    rows = {r.starts_at: r for r in Slot.objects.filter(queue=queue, starts_at__in=[s for s, _ in times])}
    return [SlotChoice(s, e, rows[s].capacity if s in rows else schedule.per_slot,
                       rows[s].booked if s in rows else 0) for s, e in times]


def check_slot(schedule: BookingSchedule, starts_at: datetime, now: datetime | None = None,
               *, field: str = "starts_at") -> tuple[datetime, datetime]:
    """The (start, end) of the published slot starting at `starts_at`; refused, naming
    `field`, if the schedule publishes no such slot or it is not bookable now."""
    now = now or timezone.now()
    if timezone.is_naive(starts_at):
        raise InvalidInput(_("Give the slot's start with its time zone (e.g. 2027-03-01T09:30:00+01:00)."),
                           field=field)
    if starts_at <= now:
        raise InvalidInput(_("That slot has already started; pick a later one."), field=field)
    tz = ZoneInfo(schedule.queue.location.timezone)
    day = starts_at.astimezone(tz).date()
    first, last = bookable_days(schedule, now)
    if day > last:
        raise InvalidInput(_("Slots can be booked up to %(days)s days ahead, until %(last)s.") % {
            "days": schedule.days_ahead, "last": last}, field=field)
    for start, end in slot_times(schedule, day):
        if start == starts_at:
            return start, end
    raise InvalidInput(_("%(queue)s has no slot starting at %(time)s (%(zone)s); pick one of the listed slots.") % {
        "queue": schedule.queue.name, "time": f"{starts_at.astimezone(tz):%Y-%m-%d %H:%M}", "zone": tz.key},
        field=field)


def booking_by_code(value: str) -> Booking:
    """The booking a kiosk scanned or someone typed: its code ("K7PM 3QXA", any case,
    spaces or dashes) or its booking page's address (what the QR code holds)."""
    value = (value or "").strip()
    if len(value) > 300:
        raise InvalidInput(_("That is not a booking code or booking page address."), field="code")
    match = re.search(rf"/b/({TOKEN_PATTERN})/?$", value)
    if match:
        booking = Booking.objects.filter(token=match.group(1)).first()
    else:
        value = value.upper().replace("-", "").replace(" ", "")
        if len(value) != BOOKING_CODE_LENGTH or any(c not in BOOKING_CODE_ALPHABET for c in value):
            raise InvalidInput(_("A booking code is %(length)s letters and digits, as shown on the booking page.")
                               % {"length": BOOKING_CODE_LENGTH}, field="code")
        booking = Booking.objects.filter(code=value).first()
    if booking is None:
        raise NotFound(_("No booking has that code; check it, or ask at the desk."), field="code")
    return booking


def bookable_queues(location, *, staff: bool = False) -> list[Queue]:
    """The location's counter queues that publish slots (for staff, also those closed to the public)."""
    queues = Queue.objects.filter(location=location, kind=Queue.Kind.COUNTER, booking_schedule__isnull=False)
    if not staff:
        queues = queues.filter(booking_schedule__is_open=True)
    return list(queues.select_related("location", "booking_schedule").order_by("name"))


def slot_days(queue: Queue, count: int, now: datetime | None = None) -> list[date]:
    """The next `count` days (from today) on which the queue publishes a slot not yet started."""
    schedule = schedule_of(queue)
    if schedule is None:
        return []
    now = now or timezone.now()
    first, last = bookable_days(schedule, now)
    days, day = [], first
    while day <= last and len(days) < count:
        if any(start > now for start, _ in slot_times(schedule, day)):
            days.append(day)
        day += timedelta(days=1)
    return days


def check_in_window(booking: Booking) -> tuple[datetime, datetime]:
    """From when to when a check-in is on time (the schedule's early/late minutes)."""
    schedule = booking.slot.queue.booking_schedule
    start = booking.slot.starts_at
    return (start - timedelta(minutes=schedule.early_minutes), start + timedelta(minutes=schedule.late_minutes))


def booking_view(booking: Booking, now: datetime | None = None) -> dict:
    """What the booking page says: when, where, the window, and what the holder may do now."""
    from .models import BookingStatus

    now = now or timezone.now()
    queue = booking.slot.queue
    tz = ZoneInfo(queue.location.timezone)
    opens, closes = check_in_window(booking)
    booked = booking.status == BookingStatus.BOOKED
    same_day = queue.location.business_day(now) == queue.location.business_day(booking.slot.starts_at)
    may_check_in = queue.booking_schedule.self_check_in and now >= opens and (
        booked or (booking.status == BookingStatus.MISSED and same_day))
    return {"booking": booking, "queue": queue, "location": queue.location,
            "starts_at": booking.slot.starts_at.astimezone(tz), "ends_at": booking.slot.ends_at.astimezone(tz),
            "opens": opens.astimezone(tz), "closes": closes.astimezone(tz),
            "may_check_in": may_check_in, "late_now": now > closes, "ticket": booking.ticket}


def day_of_bookings(location, day: date) -> list[Booking]:
    """A location's bookings on a local day, in slot order (staff's list)."""
    tz = ZoneInfo(location.timezone)
    start = datetime.combine(day, datetime.min.time(), tz)
    return list(Booking.objects.filter(slot__queue__location=location, slot__starts_at__gte=start,
                                       slot__starts_at__lt=start + timedelta(days=1))
                .select_related("slot__queue", "ticket__queue").order_by("slot__starts_at", "pk"))
