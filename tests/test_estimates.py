"""The wait shown to patients, checked against a scripted day at a clinic."""

import math
import statistics
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from queueapp.estimates import MIN_SAMPLES, Z_80
from queueapp.selectors import estimate_wait, estimate_wait_range, position_of
from queueapp.services import do_call_next, do_complete, do_join, do_set_counter_state, do_start_serving
from tests.conftest import make_counter

pytestmark = pytest.mark.django_db


class Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch):
    """Services and estimates read `timezone.now()`; the script moves it."""
    clock = Clock(datetime(2026, 3, 10, 9, 0, tzinfo=ZoneInfo("Europe/Paris")))
    monkeypatch.setattr(timezone, "now", clock)
    return clock


def serve(counter, clock, seconds: float, staff=None) -> None:
    ticket = do_call_next(counter=counter, acting_user=staff)
    clock.advance(30)  # walking to the counter: the counter waits, so it counts
    do_start_serving(ticket)
    clock.advance(seconds)
    do_complete(ticket)


def test_scripted_morning_gives_the_expected_wait_and_range(location, queue, clock):
    desk1 = make_counter(location, "Desk 1", [queue])
    make_counter(location, "Desk 2", [queue])
    for _ in range(20):
        do_join(queue)
    took = [240, 300, 180, 240, 360, 300, 240, 300]
    for seconds in took:
        serve(desk1, clock, seconds)
    # 12 still waiting; the 5th of them has 4 people ahead, 2 desks open.
    fifth = sorted((t for t in queue.tickets.filter(status="waiting")), key=lambda t: t.seq)[4]
    assert position_of(fifth) == 5
    from_call = [seconds + 30 for seconds in took]
    mean, sd = statistics.fmean(from_call), statistics.pstdev(from_call)
    got = estimate_wait_range(queue, 5)
    assert not got.thin and got.counters == 2
    # 4 ahead and half of the one at each desk: 4.5 services shared by 2 desks.
    assert got.expected == timedelta(seconds=round(4.5 * mean / 2))  # 664 s
    margin = Z_80 * sd * math.sqrt(4.5) / 2
    assert got.low == timedelta(seconds=round(4.5 * mean / 2 - margin))
    assert got.high == timedelta(seconds=round(4.5 * mean / 2 + margin))
    assert estimate_wait(queue, 5) == got.expected


def test_first_in_line_waits_for_half_a_service(queue, clock):
    do_join(queue)  # whoever is at the counter is, on average, half-way through
    assert estimate_wait_range(queue, 1).expected == timedelta(seconds=queue.default_service_seconds / 2)


def test_thin_history_is_blended_with_the_default_and_shown_as_a_wide_range(location, queue, clock):
    counter = make_counter(location, "Desk 1", [queue])
    for _ in range(6):
        do_join(queue)
    serve(counter, clock, 120)
    serve(counter, clock, 60)
    got = estimate_wait_range(queue, 3)
    assert got.thin
    mean = (150 + 90 + queue.default_service_seconds * (MIN_SAMPLES - 2)) / MIN_SAMPLES
    assert got.expected == timedelta(seconds=round(2.5 * mean))
    assert (got.low, got.high) == (timedelta(seconds=round(1.25 * mean)), timedelta(seconds=round(3.75 * mean)))


def test_no_history_uses_the_queues_default(queue, clock):
    assert estimate_wait(queue, 3) == timedelta(seconds=2.5 * queue.default_service_seconds)


def test_service_times_older_than_the_window_are_forgotten(location, queue, clock):
    counter = make_counter(location, "Desk 1", [queue])
    for _ in range(8):
        do_join(queue)
    for _ in range(6):
        serve(counter, clock, 900)  # a slow morning
    assert estimate_wait(queue, 2) == timedelta(seconds=1.5 * 930)
    clock.advance(4 * 3600)
    assert estimate_wait(queue, 2) == timedelta(seconds=1.5 * queue.default_service_seconds)


def test_closing_a_counter_lengthens_the_wait(location, queue, clock):
    desk1 = make_counter(location, "Desk 1", [queue])
    desk2 = make_counter(location, "Desk 2", [queue])
    before = estimate_wait(queue, 5)
    do_set_counter_state(desk2, state="break", reason="lunch")
    assert estimate_wait(queue, 5) == before * 2
    do_set_counter_state(desk1, state="closed")
    assert estimate_wait(queue, 5) == before * 2  # nobody open: still counts one
    do_set_counter_state(desk2, state="open")
    do_set_counter_state(desk1, state="open")
    assert estimate_wait(queue, 5) == before


def test_a_counter_shared_with_another_queue_counts_as_its_share(location, queue, clock):
    from tests.conftest import make_queue

    lab = make_queue(location, "Lab", "L")
    make_counter(location, "Desk 1", [queue])
    make_counter(location, "Desk 2", [queue, lab])  # calls across both in turn
    got = estimate_wait_range(queue, 4)
    assert got.counters == 1.5
    assert got.expected == timedelta(seconds=round(3.5 * queue.default_service_seconds / 1.5))
    assert estimate_wait_range(lab, 4).counters == 0.5


def test_a_capacity_waitlist_shows_no_time(location):
    from tests.conftest import make_queue

    seats = make_queue(location, "Seats", "W", kind="capacity", capacity=2)
    assert estimate_wait(seats, 3) is None and estimate_wait_range(seats, 3) is None
