"""The last place of a slot, booked twice at the same instant: real threads,
the real database (PostgreSQL row locks, SQLite IMMEDIATE transactions), no
mocks. One booking wins, the other is refused with a clear message; and the
database itself refuses an overbooked slot written around the services."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from queueapp.errors import QueueActionError, SlotFull
from queueapp.integrity import validate_queue_integrity
from queueapp.models import Booking, Slot
from queueapp.services import do_book, do_move_booking
from tests.bookings_support import at, clock, make_schedule  # noqa: F401 (fixture)
from tests.test_concurrency import in_threads

pytestmark = pytest.mark.django_db(transaction=True)


def attempt(func, **kwargs):
    try:
        return func(**kwargs)
    except QueueActionError as refusal:
        return refusal


def test_two_bookings_of_the_last_place_one_wins_the_other_is_refused(queue, clock):
    make_schedule(queue, per_slot=3)
    do_book(queue, starts_at=at(9))
    do_book(queue, starts_at=at(9))
    for round_ in range(5):  # several rounds: each a fresh race for one last place
        start = at(13 + round_ // 4, 15 * (round_ % 4))
        do_book(queue, starts_at=start)
        do_book(queue, starts_at=start)
        results = in_threads(2, lambda i: attempt(do_book, queue=queue.pk, starts_at=start))
        won = [r for r in results if isinstance(r, Booking)]
        refused = [r for r in results if not isinstance(r, Booking)]
        assert len(won) == 1 and len(refused) == 1
        assert isinstance(refused[0], SlotFull)
        assert refused[0].message.endswith("slot is fully booked (3 places); pick another.")
        assert refused[0].field == "starts_at"
        slot = Slot.objects.get(queue=queue, starts_at=start)
        assert slot.booked == 3 == Booking.objects.filter(slot=slot).count()
    assert validate_queue_integrity(queue) == []


def test_twenty_people_racing_for_five_places_and_moves_into_the_same_slot(queue, clock):
    make_schedule(queue, per_slot=5)
    movers = [do_book(queue, starts_at=at(8)) for _ in range(4)]

    def work(i):
        if i < len(movers):
            return attempt(do_move_booking, booking=movers[i].pk, starts_at=at(11))
        return attempt(do_book, queue=queue.pk, starts_at=at(11))

    results = in_threads(20, work)
    placed = [r for r in results if isinstance(r, Booking)]
    assert len(placed) == 5
    assert all(isinstance(r, SlotFull) for r in results if not isinstance(r, Booking))
    assert Slot.objects.get(starts_at=at(11)).booked == 5
    assert Booking.objects.filter(slot__starts_at=at(11)).count() == 5
    assert validate_queue_integrity(queue) == []


def test_the_database_refuses_an_overbooked_slot_written_around_the_services(queue, clock):
    make_schedule(queue, per_slot=1)
    booking = do_book(queue, starts_at=at(9))
    with pytest.raises(IntegrityError) as refused:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"UPDATE {Slot._meta.db_table} SET booked = booked + 1 WHERE id = %s",
                           [booking.slot_id])
    if connection.vendor == "postgresql":
        assert "slot_never_overbooked" in str(refused.value)
    assert Slot.objects.get(pk=booking.slot_id).booked == 1
