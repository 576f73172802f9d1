"""Appointments beside walk-ins: booking, moving, cancelling, checking in at the
edges of the window, the place a booking takes in line beside walk-ins and
priorities, and no-shows. Real database (SQLite or PostgreSQL); the services'
clock is set by the test (`timezone.now`)."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from queueapp.integrity import validate_queue_integrity
from queueapp.models import Booking, BookingStatus, ClosedDay, Priority, QueueEvent, Slot
from queueapp.selectors import waiting_tickets
from queueapp.services import (
    CheckInNotOpen,
    InvalidInput,
    InvalidTransition,
    QueuePaused,
    SlotFull,
    do_book,
    do_call_next,
    do_cancel_booking,
    do_check_in,
    do_join,
    do_mark_missed_bookings,
    do_move_booking,
    do_pause,
)
from tests.bookings_support import MONDAY, at, clock, make_schedule  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db
K = QueueEvent.Kind


@pytest.fixture
def schedule(queue):
    return make_schedule(queue)


def line(queue) -> list[int]:
    return list(waiting_tickets(queue).values_list("pk", flat=True))


def test_a_booking_takes_a_place_in_its_slot_and_the_last_place_is_refused(queue, schedule, clock):
    first = do_book(queue, starts_at=at(9))
    do_book(queue, starts_at=at(9))
    with pytest.raises(SlotFull, match="09:00 slot is fully booked"):
        do_book(queue, starts_at=at(9))
    slot = Slot.objects.get(queue=queue, starts_at=at(9))
    assert (slot.booked, slot.capacity) == (2, 2)
    assert len(first.code) == 8 and len(first.token) == 22
    assert QueueEvent.objects.filter(queue=queue, kind=K.BOOKED).count() == 2
    assert validate_queue_integrity(queue) == []


@pytest.mark.parametrize("starts_at, message", [
    (at(9, 5), "no slot starting at 2030-03-04 09:05"),       # not on the 15-minute grid
    (at(12, 15), "no slot starting"),                         # lunch break
    (at(6, 0), "already started"),                            # before now (the clock is at 07:00)
    (at(9, day=MONDAY + timedelta(days=5)), "no slot starting"),   # Saturday: no hours
    (at(9, day=MONDAY + timedelta(days=40)), "up to 30 days ahead"),
])
def test_a_slot_the_schedule_does_not_publish_is_refused_naming_the_field(queue, schedule, clock, starts_at,
                                                                          message):
    with pytest.raises(InvalidInput, match=message) as refused:
        do_book(queue, starts_at=starts_at)
    assert refused.value.field == "starts_at"
    assert not Booking.objects.exists() and not Slot.objects.exists()


def test_a_closed_day_publishes_no_slot(queue, schedule, clock):
    ClosedDay.objects.create(schedule=schedule, day=MONDAY, reason="Public holiday")
    with pytest.raises(InvalidInput, match="no slot"):
        do_book(queue, starts_at=at(9))


def test_a_queue_without_schedule_takes_no_booking(queue, clock):
    with pytest.raises(InvalidInput, match="takes no appointments"):
        do_book(queue, starts_at=at(9))


def test_moving_frees_the_old_place_and_takes_the_new_one(queue, schedule, clock):
    booking = do_book(queue, starts_at=at(9))
    do_book(queue, starts_at=at(10))
    do_book(queue, starts_at=at(10))
    with pytest.raises(SlotFull):
        do_move_booking(booking, starts_at=at(10))
    moved = do_move_booking(booking, starts_at=at(11))
    assert moved.slot.starts_at == at(11)
    assert Slot.objects.get(starts_at=at(9)).booked == 0
    assert Slot.objects.get(starts_at=at(11)).booked == 1
    assert validate_queue_integrity(queue) == []


def test_cancelling_frees_the_place_and_erases_the_contact_and_note(queue, schedule, clock):
    booking = do_book(queue, starts_at=at(9), contact=("email", "ana@example.org"), note="Ana, wheelchair")
    do_cancel_booking(booking, by_holder=True)
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELLED and booking.contact_address == "" and booking.note == ""
    assert Slot.objects.get(starts_at=at(9)).booked == 0
    with pytest.raises(InvalidTransition):
        do_cancel_booking(booking)
    event = QueueEvent.objects.get(queue=queue, kind=K.BOOKING_CANCELLED)
    assert "ana@example.org" not in str(event.data) and booking.code not in str(event.data)
    assert validate_queue_integrity(queue) == []


# -- check-in at the edges of the window (09:00 booked: 08:45 to 09:10) --------

def test_check_in_one_second_before_the_window_is_refused_with_its_opening_time(queue, schedule, clock):
    booking = do_book(queue, starts_at=at(9))
    clock.set(at(8, 44, 59))
    with pytest.raises(CheckInNotOpen, match="opens at 08:45"):
        do_check_in(booking, via="kiosk")
    assert Booking.objects.get(pk=booking.pk).status == BookingStatus.BOOKED
    assert not waiting_tickets(queue).exists()


@pytest.mark.parametrize("hh, mm, ss", [(8, 45, 0), (9, 10, 0)])
def test_check_in_at_either_edge_of_the_window_is_on_time(queue, schedule, clock, hh, mm, ss):
    booking = do_book(queue, starts_at=at(9))
    clock.set(at(hh, mm, ss))
    booking = do_check_in(booking, via="kiosk")
    assert booking.status == BookingStatus.CHECKED_IN and not booking.arrived_late
    event = QueueEvent.objects.get(queue=queue, kind=K.JOINED)
    assert event.data["arrival"] == "on_time" and event.data["via"] == "kiosk"


def test_check_in_one_second_after_the_window_joins_as_a_walk_in(queue, schedule, clock):
    booking = do_book(queue, starts_at=at(9))
    clock.set(at(8, 50))
    walk_in = do_join(queue)
    clock.set(at(9, 10, 1))
    booking = do_check_in(booking, via="page")
    assert booking.arrived_late
    assert line(queue) == [walk_in.pk, booking.ticket_id]   # behind everyone: a walk-in
    assert QueueEvent.objects.get(queue=queue, kind=K.JOINED, ticket=booking.ticket).data["arrival"] == "late"


# -- the place in line --------------------------------------------------------

def test_an_on_time_booking_stands_before_walk_ins_who_joined_after_its_time_minus_the_grace(
        queue, schedule, clock):
    booking = do_book(queue, starts_at=at(9))          # grace 5 min: its place is 08:55
    clock.set(at(8, 50))
    before = do_join(queue)
    clock.set(at(8, 54, 59))
    just_before = do_join(queue)
    clock.set(at(8, 55))
    at_the_instant = do_join(queue)
    clock.set(at(9, 2))
    after = do_join(queue)
    clock.set(at(9, 5))
    booking = do_check_in(booking, via="kiosk")
    assert line(queue) == [before.pk, just_before.pk, booking.ticket_id, at_the_instant.pk, after.pk]
    assert validate_queue_integrity(queue) == []


def test_an_early_arrival_lets_walk_ins_who_join_before_its_place_go_first(queue, schedule, clock):
    booking = do_book(queue, starts_at=at(9))
    clock.set(at(8, 46))
    booking = do_check_in(booking, via="kiosk")   # its place, 08:55, is still ahead
    clock.set(at(8, 50))
    earlier = do_join(queue)
    clock.set(at(8, 56))
    later = do_join(queue)
    assert line(queue) == [earlier.pk, booking.ticket_id, later.pk]


def test_bookings_of_the_same_slot_stand_in_the_order_they_checked_in(queue, schedule, clock):
    a, b = do_book(queue, starts_at=at(9)), do_book(queue, starts_at=at(9))
    c = do_book(queue, starts_at=at(8, 45))
    clock.set(at(8, 50))
    walk_in = do_join(queue)
    clock.set(at(8, 52))
    c = do_check_in(c, via="kiosk")              # booked earlier: its place, 08:40, is before the walk-in
    clock.set(at(9))
    b = do_check_in(b, via="kiosk")
    a = do_check_in(a, via="staff")
    assert line(queue) == [c.ticket_id, walk_in.pk, b.ticket_id, a.ticket_id]
    assert validate_queue_integrity(queue) == []


def test_priority_comes_before_appointments_and_appointments_keep_theirs(queue, schedule, clock):
    normal_booking = do_book(queue, starts_at=at(9))
    urgent_booking = do_book(queue, starts_at=at(9, 30), priority=Priority.URGENT)
    clock.set(at(8, 40))
    early_normal = do_join(queue)
    clock.set(at(9))
    high = do_join(queue, priority=Priority.HIGH)
    late_normal = do_join(queue)
    clock.set(at(9, 1))
    normal_booking = do_check_in(normal_booking, via="kiosk")
    clock.set(at(9, 20))
    urgent_booking = do_check_in(urgent_booking, via="kiosk")
    # Urgent (a booking) > high (a walk-in) > normal, and among normal: the 08:40
    # walk-in, then the 09:00 booking (place 08:55), then the 09:00 walk-in.
    assert line(queue) == [urgent_booking.ticket_id, high.pk, early_normal.pk, normal_booking.ticket_id,
                           late_normal.pk]


def test_a_called_booking_is_called_in_the_rule_s_order(queue, schedule, clock, counter):
    booking = do_book(queue, starts_at=at(9))
    clock.set(at(8, 57))
    walk_in = do_join(queue)
    clock.set(at(9))
    booking = do_check_in(booking, via="kiosk")
    assert do_call_next(counter=counter).pk == booking.ticket_id
    assert validate_queue_integrity(queue) == []


def test_a_paused_queue_refuses_a_check_in(queue, schedule, clock):
    booking = do_book(queue, starts_at=at(9))
    do_pause(queue)
    clock.set(at(9))
    with pytest.raises(QueuePaused):
        do_check_in(booking, via="kiosk")
    assert Booking.objects.get(pk=booking.pk).status == BookingStatus.BOOKED


def test_the_contact_and_note_given_when_booking_move_to_the_ticket(queue, schedule, clock):
    booking = do_book(queue, starts_at=at(9), contact=("email", "ana@example.org"), note="needs an interpreter")
    clock.set(at(9))
    booking = do_check_in(booking, via="kiosk")
    assert booking.contact_address == "" and booking.note == ""
    assert booking.ticket.note == "needs an interpreter"
    contact = booking.ticket.alert_contacts.get()
    assert (contact.channel, contact.address) == ("email", "ana@example.org")
    assert "ana@example.org" not in str(QueueEvent.objects.filter(queue=queue).values_list("data", flat=True))


# -- no-shows -----------------------------------------------------------------

def test_a_booking_not_checked_in_by_the_end_of_its_window_is_a_no_show_with_an_event(
        queue, schedule, clock):
    missed = do_book(queue, starts_at=at(9), contact=("email", "ana@example.org"))
    kept = do_book(queue, starts_at=at(9, 15))
    clock.set(at(9, 10))
    assert do_mark_missed_bookings() == 0             # the window's last instant: still on time
    clock.set(at(9, 10, 1))
    assert do_mark_missed_bookings() == 1
    assert do_mark_missed_bookings() == 0             # never twice
    missed.refresh_from_db()
    kept.refresh_from_db()
    assert missed.status == BookingStatus.MISSED and missed.contact_address == ""
    assert kept.status == BookingStatus.BOOKED
    event = QueueEvent.objects.get(queue=queue, kind=K.BOOKING_MISSED)
    assert event.data == {"booking": missed.pk, "slot": at(9).astimezone(UTC).isoformat()}
    assert validate_queue_integrity(queue) == []


def test_a_no_show_arriving_later_that_day_joins_as_a_walk_in(queue, schedule, clock):
    booking = do_book(queue, starts_at=at(9))
    clock.set(at(9, 30))
    do_mark_missed_bookings()
    booking = do_check_in(booking, via="staff")
    assert booking.status == BookingStatus.CHECKED_IN and booking.arrived_late
    clock.set(at(9, day=MONDAY + timedelta(days=1)))
    other = do_book(queue, starts_at=at(10, day=MONDAY + timedelta(days=1)))
    clock.set(at(10, 30, day=MONDAY + timedelta(days=1)))
    do_mark_missed_bookings()
    clock.set(at(9, day=MONDAY + timedelta(days=2)))
    with pytest.raises(InvalidTransition, match="another day"):
        do_check_in(other, via="kiosk")


# -- integrity ----------------------------------------------------------------

def test_integrity_reports_a_slot_count_that_disagrees_with_its_bookings(queue, schedule, clock):
    do_book(queue, starts_at=at(9))
    Slot.objects.filter(starts_at=at(9)).update(booked=2)
    problems = validate_queue_integrity(queue)
    assert [p.code for p in problems] == ["slot_count"]
    assert "counts 2 booked; 1 bookings hold a place in it" in problems[0].message


def test_the_worker_marks_no_shows_every_minute():
    from queueapp import jobs, worker

    job = next(job for job in worker.JOBS if job.func is jobs.mark_missed_bookings)
    assert job.every == 60


def test_the_line_clock_never_goes_back_so_a_later_walk_in_stands_behind(queue, clock):
    clock.set(at(9))
    first = do_join(queue)
    clock.set(at(8, 59))      # the system clock stepped back
    second = do_join(queue)
    same_instant = do_join(queue)
    assert first.seq < second.seq < same_instant.seq
    assert line(queue) == [first.pk, second.pk, same_instant.pk]
