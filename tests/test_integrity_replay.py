"""validate_queue_integrity replays the events against the ordering rule (issue 10, defect 5).

Faults are planted in the services themselves (their rule swapped for a wrong
one with monkeypatch), so the events are written exactly as a buggy release
would write them; the check must then name every call or admission that did not
take who the rule named. The legitimate exceptions (a ticket staff called on
purpose, allow_skip, transfers to the front, priorities, requeued no-shows) stay
clean.
"""

from __future__ import annotations

import math
import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from queueapp.integrity import validate_queue_integrity
from queueapp.models import Priority, Queue, QueueEvent, Ticket
from queueapp.replay import Line, QueueFacts, replay_problems
from queueapp.services import (
    do_call_next,
    do_call_ticket,
    do_cancel,
    do_complete,
    do_confirm_waitlist,
    do_join,
    do_no_show,
    do_pause,
    do_resume,
    do_set_capacity,
    do_transfer,
)
from queueapp import calling
from queueapp.services import waitlist as waitlist_services
from queueapp.selectors import waiting_tickets
from tests.conftest import make_counter, make_queue

pytestmark = pytest.mark.django_db
K = QueueEvent.Kind


def found(queue, code="out_of_order"):
    return [p for p in validate_queue_integrity(queue) if p.code == code]


@pytest.fixture
def train(location):
    return make_queue(location, "Train 101", "T", kind=Queue.Kind.CAPACITY, capacity=3)


def test_a_waitlist_that_skips_its_head_is_reported(train, monkeypatch):
    # The planted fault: strict order, yet an admission takes the second in line.
    def skips_the_head(queue, **_):
        line = list(waiting_tickets(queue)[:2])
        return [line[-1]] if line and line[-1].party_size <= queue.seats_free else []

    filler = do_join(train, party_size=3)      # T-001 takes every seat
    head = do_join(train, party_size=2)        # T-002 waits
    second = do_join(train)                    # T-003 waits behind it
    monkeypatch.setattr(waitlist_services, "plan_admissions", skips_the_head)
    do_cancel(filler)                                 # three seats free: T-002 fits and must go first
    problems = found(train)
    assert [p.ticket_id for p in problems] == [second.pk]
    assert "confirmed T-003, but the ordering rule named T-002, the head of the line" in problems[0].message
    assert Ticket.objects.get(pk=head.pk).status == "waiting"


def test_strict_order_admitting_behind_a_head_that_does_not_fit_is_reported(train, monkeypatch):
    do_join(train, party_size=2)                      # confirmed: one seat left
    do_join(train, party_size=3)                      # the head: does not fit
    behind = do_join(train)                    # strict order: waits behind the head
    assert behind.status == "waiting"
    # The planted fault: a strict waitlist admits by the allow_skip rule.
    monkeypatch.setattr(waitlist_services, "plan_admissions",
                        lambda queue, **_: list(waiting_tickets(queue)
                                                .filter(party_size__lte=queue.seats_free)[:1]))
    assert do_confirm_waitlist(train) == [behind]
    problems = found(train)
    assert [p.ticket_id for p in problems] == [behind.pk]
    assert "named nobody: the head T-002 needs 3 seats, 1 were free (strict order)" in problems[0].message


def test_an_admission_is_judged_by_the_rule_it_recorded(location):
    tables = make_queue(location, "Tables", "R", kind=Queue.Kind.CAPACITY, capacity=3, allow_skip=True)
    do_join(tables, party_size=2)
    do_join(tables, party_size=3)
    assert do_join(tables).status == "confirmed"   # allow_skip: the single goes past the head
    tables.allow_skip = False
    tables.save()                                        # a manager switched to strict order since
    assert validate_queue_integrity(tables) == []


def test_a_call_next_that_skips_the_head_is_reported(queue, counter, monkeypatch):
    first, second, third = (do_join(queue) for _ in range(3))
    real = calling.waiting_tickets
    monkeypatch.setattr(calling, "waiting_tickets", lambda q: real(q).order_by("-seq"))
    called = do_call_next(counter=counter)
    assert called.pk == third.pk
    problems = found(queue)
    assert [p.ticket_id for p in problems] == [third.pk]
    assert "called A-003, but the ordering rule named A-001, the head of the line" in problems[0].message


def test_priority_ignored_by_a_call_is_reported(queue, counter, monkeypatch):
    normal = do_join(queue)
    do_join(queue, priority=Priority.URGENT)
    real = calling.waiting_tickets
    monkeypatch.setattr(calling, "waiting_tickets", lambda q: real(q).order_by("seq"))
    assert do_call_next(counter=counter).pk == normal.pk
    assert [p.ticket_id for p in found(queue)] == [normal.pk]


def test_the_legitimate_exceptions_are_clean(location, queue, counter):
    lab = make_queue(location, "Lab", "L")
    lab_desk = make_counter(location, "Lab desk", [lab])
    tickets = [do_join(queue) for _ in range(4)]
    urgent = do_join(queue, priority=Priority.URGENT)
    assert do_call_next(counter=counter).pk == urgent.pk          # priority first
    do_complete(urgent)
    do_call_ticket(tickets[2], counter=counter)                   # staff chose this one
    do_no_show(tickets[2])                                        # back of the line
    assert do_call_next(counter=counter).pk == tickets[0].pk
    do_transfer(tickets[0], to_queue=lab, to_front=True)          # first in the lab's line
    do_join(lab)
    assert do_call_next(counter=lab_desk).queue_id == lab.pk
    do_cancel(tickets[1])
    do_pause(queue)
    do_resume(queue)
    assert do_call_next(counter=counter).pk == tickets[3].pk
    assert validate_queue_integrity() == []


def test_allow_skip_strict_order_batches_and_capacity_changes_are_clean(location):
    skip = make_queue(location, "Tables", "R", kind=Queue.Kind.CAPACITY, capacity=3, allow_skip=True)
    strict = make_queue(location, "Seats", "S", kind=Queue.Kind.CAPACITY, capacity=3)
    batched = make_queue(location, "Room", "W", kind=Queue.Kind.CAPACITY, capacity=5, batch_size=2)
    for q in (skip, strict):
        do_join(q, party_size=2)
        do_join(q, party_size=2)          # does not fit: waits (skip: the single behind goes first)
        do_join(q)
        do_join(q, priority=Priority.HIGH, party_size=3)
        do_set_capacity(q, capacity=6)
        do_cancel(Ticket.objects.filter(queue=q, status="confirmed").first())
    for _ in range(4):
        do_join(batched)
    do_confirm_waitlist(batched)
    do_confirm_waitlist(batched)
    assert validate_queue_integrity() == []


def test_an_event_whose_status_after_disagrees_with_the_replay_is_reported(queue, counter):
    ticket = do_join(queue)
    do_call_next(counter=counter)
    queue.refresh_from_db()
    with connection.cursor() as cursor:   # appended by hand, as a bad migration or fix-up could
        cursor.execute(
            f"INSERT INTO {QueueEvent._meta.db_table} (queue_id, version, kind, ticket_id, status_after, "
            "created_at, data) VALUES (%s, %s, 'started', %s, 'completed', %s, '{}')",
            [queue.pk, queue.version + 1, ticket.pk, timezone.now()])
    Queue.objects.filter(pk=queue.pk).update(version=queue.version + 1)
    problems = found(queue, "event_status_mismatch")
    assert [p.ticket_id for p in problems] == [ticket.pk]
    assert "started of A-001 records status completed, the replay gives being served" in problems[0].message


# --- cost -------------------------------------------------------------------------


def simulated_day(tickets: int, seed: int = 3) -> tuple[QueueFacts, list[tuple]]:
    """The events of a busy counter queue, generated by a plain simulation of the
    rule (priorities, calls of the head, some chosen calls, requeues, cancellations)."""
    rng = random.Random(seed)
    waiting: dict[int, tuple[int, int]] = {}
    events, version, seq = [], 0, 0

    def add(kind, ticket, status, **data):
        nonlocal version
        version += 1
        events.append((version, kind, ticket, status, data))

    for ticket in range(1, tickets + 1):
        seq += 1
        priority = rng.choice([0] * 8 + [10, 20])
        waiting[ticket] = (priority, seq)
        add(K.JOINED, ticket, "waiting", entered=[priority, seq])
        while waiting and rng.random() < 0.5:
            if rng.random() < 0.05:
                chosen, out = rng.choice(list(waiting)), {"out_of_turn": True}
            else:
                chosen, out = min(waiting, key=lambda t: (-waiting[t][0], waiting[t][1])), {}
            key = waiting.pop(chosen)
            add(K.CALLED, chosen, "called", left=list(key), **out)
            if rng.random() < 0.1:
                seq += 1
                waiting[chosen] = (key[0], seq)
                add(K.REQUEUED, chosen, "waiting", entered=[key[0], seq])
            else:
                add(K.COMPLETED, chosen, "completed")
        if waiting and rng.random() < 0.05:
            gone = rng.choice(list(waiting))
            add(K.CANCELLED, gone, "cancelled", left=list(waiting.pop(gone)))
    facts = QueueFacts(prefix="A", capacity=None, allow_skip=False,
                       numbers={t: t for t in range(1, tickets + 1)},
                       party_sizes={t: 1 for t in range(1, tickets + 1)})
    return facts, events


@pytest.mark.parametrize("tickets", [500, 5000])
def test_the_replay_is_clean_on_a_day_that_follows_the_rule_and_costs_n_log_n(tickets):
    facts, events = simulated_day(tickets)
    line = Line()
    assert list(replay_problems(facts, events, line=line)) == []
    # One heap per party size (1 here): each event costs O(log n) at most, amortised.
    assert line.steps <= 4 * len(events) * math.log2(tickets)


def test_the_check_costs_the_same_queries_whatever_the_length_of_the_day(queue, counter):
    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            assert validate_queue_integrity(queue) == []
        return len(context.captured_queries)

    do_join(queue)
    small = queries()
    for _ in range(60):
        do_join(queue)
        do_complete(do_call_next(counter=counter))
    assert queries() == small
