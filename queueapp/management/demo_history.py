"""The demo's past week and its day of bookings: played through the real services
on a virtual clock, so the history is what the product itself would have
written (events, versions, numbers, line order) and the integrity check, the
statistics and the day's bookings all read it as real.

Deterministic (a random generator seeded by the day). Used by `seed_demo`
only; `make run` re-seeds only when this file or the command changes.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone

from ..models import Booking, BookingStatus, Counter, Location, Priority, Queue, TicketStatus
from ..services import (
    QueueActionError,
    do_book,
    do_call_next,
    do_cancel,
    do_check_in,
    do_complete,
    do_join,
    do_mark_missed_bookings,
    do_no_show,
    do_start_serving,
)
from ..slots import slot_times

# Walk-ins per minute while open, per queue slug.
ARRIVALS = {"general": 0.07, "pharmacy": 0.03, "lab": 0.025}
BOOKED_SHARE = 0.45  # of the bookable slots' places, booked the evening before
# Minutes from the booked time at which a holder checks in (None: never comes).
ARRIVAL_OFFSETS = [-14, -10, -6, -3, -1, 0, 2, 5, 9, 13, 25, None]


@contextmanager
def virtual_clock():
    """`timezone.now` answers the clock's time while the block runs (the services
    read the time only through it)."""
    clock = {"now": None}
    real = timezone.now
    timezone.now = lambda: clock["now"] or real()
    try:
        yield clock
    finally:
        timezone.now = real


@contextmanager
def unsynced_sqlite():
    """A few thousand small transactions: on SQLite, without waiting for the disk
    after each (a seed interrupted half-way is simply run again)."""
    if connection.vendor != "sqlite" or connection.in_atomic_block:  # (a test's transaction)
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous")
        (before,) = cursor.fetchone()
        cursor.execute("PRAGMA synchronous=OFF")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA synchronous={int(before)}")


def opening(day: date) -> tuple[time, time]:
    return (time(10), time(14)) if day.weekday() >= 5 else (time(9), time(17))


def _counter_queues(location: Location) -> dict[int, list[int]]:
    return {c.pk: list(c.queues.values_list("pk", flat=True)) for c in Counter.objects.filter(location=location)}


def play_day(location: Location, day: date, until: datetime, clock: dict) -> int:
    """One day at the location from opening until `until` (or until the line is
    empty after closing). Returns the number of tickets served."""
    rng = random.Random(day.toordinal())
    tz = ZoneInfo(location.timezone)
    opens, closes = (datetime.combine(day, t, tz) for t in opening(day))
    queues = {q.slug: q for q in location.queues.filter(kind=Queue.Kind.COUNTER)}

    # The evening before: bookings for a share of the day's slots.
    clock["now"] = datetime.combine(day - timedelta(days=1), time(18), tz)
    arrivals: list[tuple[datetime, str, object]] = []
    for queue in queues.values():
        schedule = getattr(queue, "booking_schedule", None)
        if schedule is None:
            continue
        for start, _ in slot_times(schedule, day):
            for _ in range(schedule.per_slot):
                if rng.random() < BOOKED_SHARE:
                    priority = Priority.HIGH if rng.random() < 0.1 else Priority.NORMAL
                    booking = do_book(queue, starts_at=start, priority=priority)
                    offset = rng.choice(ARRIVAL_OFFSETS)
                    if offset is not None:
                        arrivals.append((start + timedelta(minutes=offset), "booking", booking.pk))
    # Walk-ins through the opening hours.
    minute = opens
    while minute < closes:
        for slug, rate in ARRIVALS.items():
            if slug in queues and rng.random() < rate:
                priority = rng.choices([Priority.NORMAL, Priority.HIGH, Priority.URGENT], [90, 7, 3])[0]
                arrivals.append((minute + timedelta(seconds=rng.randrange(60)), "walk_in", (slug, priority)))
        minute += timedelta(minutes=1)
    arrivals.sort(key=lambda a: a[0])

    served_by = _counter_queues(location)
    waiting = {q.pk: 0 for q in queues.values()}
    at_counter: dict[int, tuple[int, str, datetime]] = {}  # counter -> (ticket, phase, when next)
    served, now, index = 0, opens, 0
    last_call = closes + timedelta(hours=2)
    while now <= min(until, last_call):
        clock["now"] = now
        while index < len(arrivals) and arrivals[index][0] <= now:
            at, kind, what = arrivals[index]
            index += 1
            clock["now"] = max(at, opens)
            try:
                if kind == "walk_in":
                    ticket = do_join(queues[what[0]], priority=what[1])
                    waiting[ticket.queue_id] += 1
                else:
                    booking = do_check_in(what, via=rng.choice(["kiosk", "kiosk", "page", "staff"]))
                    waiting[booking.ticket.queue_id] += 1
            except QueueActionError:
                pass  # too early (it comes back), or the queue refused: as in life
        clock["now"] = now
        if now.minute % 5 == 0:
            do_mark_missed_bookings()
        for counter_id, served_queues in served_by.items():
            state = at_counter.get(counter_id)
            if state is not None:
                ticket_id, phase, when = state
                if now < when:
                    continue
                if phase == "called":
                    if rng.random() < 0.05:
                        again = do_no_show(ticket_id)
                        if again.status == TicketStatus.WAITING:
                            waiting[again.queue_id] += 1
                        del at_counter[counter_id]
                    else:
                        do_start_serving(ticket_id)
                        at_counter[counter_id] = (ticket_id, "serving", now + timedelta(minutes=rng.randint(3, 11)))
                    continue
                do_complete(ticket_id)
                served += 1
                del at_counter[counter_id]
            if any(waiting.get(q, 0) for q in served_queues):
                ticket = do_call_next(counter=counter_id)
                if ticket is not None:
                    waiting[ticket.queue_id] -= 1
                    at_counter[counter_id] = (ticket.pk, "called", now + timedelta(minutes=1))
        if now >= closes and not at_counter and not any(waiting.values()):
            break
        now += timedelta(minutes=1)
    if until >= last_call:
        # Past days end clean: whoever was still waiting went home.
        for queue in queues.values():
            for ticket in queue.tickets.filter(status__in=[TicketStatus.WAITING, TicketStatus.CALLED]):
                do_cancel(ticket)
            for ticket_id in queue.tickets.filter(status=TicketStatus.SERVING).values_list("pk", flat=True):
                do_complete(ticket_id)
        do_mark_missed_bookings()
    return served


def play_history(location: Location, days: int = 7) -> int:
    """The past `days` days and today until now; then bookings for the rest of
    today and tomorrow, made now. Returns the tickets served."""
    tz = ZoneInfo(location.timezone)
    today = location.business_day()
    real_now = timezone.now()
    served = 0
    with virtual_clock() as clock, unsynced_sqlite():
        for back in range(days, 0, -1):
            day = today - timedelta(days=back)
            served += play_day(location, day, datetime.combine(day, time(23), tz), clock)
        served += play_day(location, today, real_now, clock)
    rng = random.Random(today.toordinal() + 1)
    for queue in location.queues.filter(kind=Queue.Kind.COUNTER, booking_schedule__isnull=False):
        for day in (today, today + timedelta(days=1)):
            for start, _ in slot_times(queue.booking_schedule, day):
                if start > timezone.now() and rng.random() < BOOKED_SHARE:
                    try:
                        do_book(queue, starts_at=start)
                    except QueueActionError:
                        pass
    return served


def bookings_today(location: Location) -> int:
    tz = ZoneInfo(location.timezone)
    start = datetime.combine(location.business_day(), time(), tz)
    return Booking.objects.filter(slot__queue__location=location, slot__starts_at__gte=start,
                                  slot__starts_at__lt=start + timedelta(days=1)).exclude(
        status=BookingStatus.CANCELLED).count()
