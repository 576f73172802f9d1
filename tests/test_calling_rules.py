"""The calling rules (queueapp.calling, docs/calling-rules.md): a ratio of priority
and normal tickets, a maximum wait, how appointments stand among them, the choice
across a counter's queues, and the integrity replay judging calls by the same rule."""

from __future__ import annotations

import pytest

from queueapp.calling import Rule
from queueapp.integrity import validate_queue_integrity
from queueapp.models import Counter, Priority, Queue, QueueEvent
from queueapp.replay import QueueFacts, replay_problems
from queueapp.services import do_book, do_call_next, do_check_in, do_complete, do_join
from tests.bookings_support import at, clock, make_schedule  # noqa: F401 (fixture)
from tests.conftest import make_counter, make_queue

pytestmark = pytest.mark.django_db

URGENT, HIGH, NORMAL = Priority.URGENT, Priority.HIGH, Priority.NORMAL


def _rule(queue, **fields):
    Queue.objects.filter(pk=queue.pk).update(**fields)


def _serve_all(counter) -> list[int]:
    called = []
    while (ticket := do_call_next(counter=counter)) is not None:
        called.append(ticket.pk)
        do_complete(ticket)
    return called


def test_a_ratio_calls_two_priority_tickets_then_one_normal(location, queue, counter, clock):
    _rule(queue, calling_rule="ratio", ratio_priority=2, ratio_normal=1)
    n1, n2 = do_join(queue), do_join(queue)
    p1, p2, p3 = do_join(queue, priority=URGENT), do_join(queue, priority=HIGH), do_join(queue, priority=HIGH)
    assert _serve_all(counter) == [p1.pk, p2.pk, n1.pk, p3.pk, n2.pk]
    assert validate_queue_integrity(queue) == []


def test_a_ratio_gives_an_empty_class_turn_to_the_other(location, queue, counter, clock):
    _rule(queue, calling_rule="ratio", ratio_priority=1, ratio_normal=2)
    n1, n2, n3 = do_join(queue), do_join(queue), do_join(queue)
    p1 = do_join(queue, priority=HIGH)
    # 1 priority, 2 normal, then priority's turn with none waiting: normal again.
    assert _serve_all(counter) == [p1.pk, n1.pk, n2.pk, n3.pk]
    assert validate_queue_integrity(queue) == []


def test_past_the_maximum_wait_a_ticket_goes_first_whatever_its_priority(location, queue, counter, clock):
    _rule(queue, max_wait_minutes=15)
    old = do_join(queue)
    clock.advance(minutes=10)
    younger = do_join(queue)
    urgent = do_join(queue, priority=URGENT)
    assert do_call_next(counter=counter).pk == urgent.pk  # nobody past 15 min yet
    do_complete(urgent)
    urgent2 = do_join(queue, priority=URGENT)
    clock.advance(minutes=6)  # old has waited 16 min, younger 6
    assert do_call_next(counter=counter).pk == old.pk
    do_complete(old)
    assert _serve_all(counter) == [urgent2.pk, younger.pk]
    events = QueueEvent.objects.filter(queue=queue, kind="called").order_by("version")
    assert all("overdue_before" in e.data for e in events)
    assert validate_queue_integrity(queue) == []


def test_appointments_priorities_ratio_and_maximum_wait_combine_as_documented(location, queue, counter, clock):
    """docs/calling-rules.md, "Appointments": an on-time booking is a normal ticket
    placed at its booked time minus the grace; the ratio counts it as normal; the
    maximum wait counts from that place."""
    make_schedule(queue, grace=5)
    booking = do_book(queue, starts_at=at(9), now=at(7))
    _rule(queue, calling_rule="ratio", ratio_priority=2, ratio_normal=1, max_wait_minutes=15)
    clock.set(at(8, 40))
    walk_in = do_join(queue)
    clock.set(at(8, 50))
    booked = do_check_in(booking, via="kiosk").ticket
    clock.set(at(8, 56))
    later = do_join(queue)
    urgent = do_join(queue, priority=URGENT)
    clock.set(at(9, 0))
    # 09:00: the walk-in has waited 20 min (past 15): first. Then the urgent case
    # (the ratio's priority turn), then the normal class in line order: the
    # booking (placed 08:55) before the walk-in who came at 08:56.
    assert _serve_all(counter) == [walk_in.pk, urgent.pk, booked.pk, later.pk]
    assert validate_queue_integrity(queue) == []


def test_across_queues_a_counter_can_pick_the_longest_wait_or_by_weight(location, clock):
    lab, pharmacy = make_queue(location, "Lab", prefix="L"), make_queue(location, "Pharmacy", prefix="P")
    desk = make_counter(location, "Desk", [lab, pharmacy])
    long_normal = do_join(pharmacy)
    clock.advance(minutes=5)
    fresh_urgent = do_join(lab, priority=URGENT)
    clock.advance(minutes=1)
    assert do_call_next(counter=desk).pk == fresh_urgent.pk  # by priority (the default)
    do_complete(fresh_urgent)
    fresh_urgent = do_join(lab, priority=URGENT)
    Counter.objects.filter(pk=desk.pk).update(across_queues="longest_wait")
    assert do_call_next(counter=desk).pk == long_normal.pk
    do_complete(long_normal)

    Counter.objects.filter(pk=desk.pk).update(across_queues="weight")
    _rule(lab, call_weight=1)
    _rule(pharmacy, call_weight=10)
    short = do_join(pharmacy)  # waits 1 min x 10 against the urgent lab ticket's 1 min x 1
    clock.advance(minutes=1)
    assert do_call_next(counter=desk).pk == short.pk
    for q in (lab, pharmacy):
        assert validate_queue_integrity(q) == []


def _facts():
    return QueueFacts(prefix="A", capacity=None, allow_skip=False, numbers={1: 1, 2: 2, 3: 3},
                      party_sizes={})


def test_the_replay_flags_a_call_the_ratio_did_not_name():
    joined = [(1, "joined", 1, "waiting", {"entered": [0, 100]}),
              (2, "joined", 2, "waiting", {"entered": [20, 200]}),
              (3, "joined", 3, "waiting", {"entered": [20, 300]})]
    ratio = {"rule": "ratio", "ratio": [2, 1]}
    right = [*joined, (4, "called", 2, "called", {**ratio, "streak": 0}),
             (5, "called", 3, "called", {**ratio, "streak": 1}),
             (6, "called", 1, "called", {**ratio, "streak": 2})]
    assert list(replay_problems(_facts(), right)) == []
    wrong = [*joined, (4, "called", 2, "called", {**ratio, "streak": 0}),
             (5, "called", 1, "called", {**ratio, "streak": 1})]  # A-003's priority turn
    assert [f.code for f in replay_problems(_facts(), wrong)] == ["out_of_order"]


def test_the_replay_flags_an_overdue_ticket_left_waiting():
    events = [(1, "joined", 1, "waiting", {"entered": [0, 100]}),
              (2, "joined", 2, "waiting", {"entered": [20, 200]}),
              (3, "called", 2, "called", {"rule": "priority", "overdue_before": 150})]
    problems = list(replay_problems(_facts(), events))
    assert [f.code for f in problems] == ["out_of_order"]
    assert "A-001" in problems[0].message


def test_the_console_shows_the_queues_rule(client, queue, counter, staff):
    _rule(queue, calling_rule="ratio", ratio_priority=3, ratio_normal=1, max_wait_minutes=30)
    client.force_login(staff)
    page = client.get(f"/console/{counter.pk}/").content.decode()
    assert str(Rule("ratio", 3, 1, 30).describe()) in page
    assert "3 priority then 1 normal" in page and "waiting over 30 min goes first" in page


def test_the_console_shows_how_the_counter_chooses_across_its_queues(client, location, staff):
    general, pharmacy = make_queue(location, "General", prefix="A"), make_queue(location, "Pharmacy", prefix="P")
    Queue.objects.filter(pk=pharmacy.pk).update(call_weight=3)
    both = make_counter(location, "Desk 3", [general, pharmacy])
    alone = make_counter(location, "Desk 1", [general])
    client.force_login(staff)
    page = client.get(f"/console/{both.pk}/").content.decode()
    assert "Across this counter's queues: Highest priority, then longest waiting" in page
    Counter.objects.filter(pk=both.pk).update(across_queues="weight")
    page = client.get(f"/console/{both.pk}/").content.decode()
    assert ("Across this counter's queues: Waiting time times the queue's weight (General ×1, Pharmacy ×3)"
            in page.replace("&#x27;", "'"))
    assert "Across this counter" not in client.get(f"/console/{alone.pk}/").content.decode()  # one queue: no choice
