"""Many people clicking at once, with real threads on the real database.

No mocks: every thread opens its own connection (SQLite file with IMMEDIATE
transactions and a busy timeout, or PostgreSQL through psycopg's pool) and
goes through the same service functions a view would.
"""

import threading
from collections import Counter as Tally
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from queueapp.integrity import validate_queue_integrity
from queueapp.models import QueueEvent, Ticket, TicketStatus
from queueapp.selectors import position_of
from queueapp.services import CounterBusy, do_call_next, do_complete, do_join
from tests.conftest import make_counter

pytestmark = pytest.mark.django_db(transaction=True)


def in_threads(n: int, work, *, workers: int | None = None) -> list:
    """Run work(i) for i in range(n) on `workers` threads started together."""
    workers = workers or n
    start = threading.Barrier(workers)

    def run(i):
        try:
            if i < workers:
                start.wait(timeout=30)
            return work(i)
        finally:
            connections.close_all()  # each thread's own connection

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, range(n)))


def test_200_concurrent_joins_get_distinct_gapless_numbers_and_places(queue):
    results = in_threads(200, lambda i: do_join(queue.pk), workers=50)
    numbers = sorted(r.number for r in results)
    assert numbers == list(range(1, 201))
    positions = sorted(position_of(Ticket.objects.get(pk=r.pk)) for r in results)
    assert positions == list(range(1, 201))
    assert len({r.token for r in results}) == 200
    versions = sorted(QueueEvent.objects.filter(queue=queue).values_list("version", flat=True))
    assert versions == list(range(1, 201))
    assert validate_queue_integrity(queue) == []


def test_four_counters_calling_next_until_empty_call_every_ticket_once(location, queue):
    joined = [do_join(queue).pk for _ in range(120)]
    counters = [make_counter(location, f"Counter {i}", [queue]) for i in range(1, 5)]
    calls: list[list[int]] = [[] for _ in counters]

    def serve(i):
        counter = counters[i]
        while True:
            ticket = do_call_next(counter=counter.pk)
            if ticket is None:
                return
            calls[i].append(ticket.pk)
            do_complete(ticket.pk)

    in_threads(4, serve)
    called = [pk for per_counter in calls for pk in per_counter]
    assert sorted(called) == sorted(joined)            # nobody skipped
    assert max(Tally(called).values()) == 1            # nobody called twice
    # Each counter saw tickets in line order: the rule holds under contention.
    for per_counter in calls:
        assert per_counter == sorted(per_counter)
    assert set(Ticket.objects.values_list("status", flat=True)) == {TicketStatus.COMPLETED}
    assert validate_queue_integrity(queue) == []


def test_joins_and_calls_interleaved_keep_the_queue_consistent(location, queue):
    counters = [make_counter(location, f"Desk {i}", [queue]) for i in range(1, 3)]

    def work(i):
        if i % 3:
            return do_join(queue.pk) and "joined"
        try:
            ticket = do_call_next(counter=counters[i % 2].pk)
        except CounterBusy:
            # A colleague at the same desk clicked first: refused, not corrupted.
            return "busy"
        if ticket is None:
            return "empty"
        do_complete(ticket.pk)
        return "served"

    outcomes = Tally(in_threads(90, work, workers=12))
    assert outcomes["joined"] == 60
    assert outcomes["served"] == Ticket.objects.filter(status=TicketStatus.COMPLETED).count()
    assert outcomes["served"] + Ticket.objects.filter(status=TicketStatus.WAITING).count() == 60
    assert validate_queue_integrity(queue) == []
    assert Ticket.objects.filter(status__in=[TicketStatus.CALLED, TicketStatus.SERVING]).count() == 0
