"""The ticket actions: what each does, what it refuses, and the events it leaves."""

import json

import pytest

from queueapp.integrity import validate_queue_integrity
from queueapp.models import Priority, QueueEvent, Ticket, TicketStatus
from queueapp.selectors import estimate_wait, position_of
from queueapp.services import (
    CounterBusy,
    InvalidInput,
    InvalidTransition,
    QueueFull,
    QueuePaused,
    do_call_next,
    do_call_ticket,
    do_cancel,
    do_complete,
    do_join,
    do_no_show,
    do_pause,
    do_recall,
    do_resume,
    do_start_serving,
    do_transfer,
)
from tests.conftest import make_counter, make_queue

pytestmark = pytest.mark.django_db


def test_join_gives_consecutive_numbers_positions_and_an_estimate(queue):
    first = do_join(queue)
    second = do_join(queue)
    assert (first.number, second.number) == (1, 2)
    assert (position_of(first), position_of(second)) == (1, 2)
    assert first.display_number == "A-001"
    assert estimate_wait(queue, position_of(second)).total_seconds() == 1.5 * queue.default_service_seconds
    assert len(first.token) >= 22  # 128 bits, URL-safe base64


def test_priority_goes_ahead_of_normal_but_keeps_join_order_within_priority(queue):
    normal = do_join(queue)
    urgent = do_join(queue, priority=Priority.URGENT)
    high1 = do_join(queue, priority=Priority.HIGH)
    high2 = do_join(queue, priority=Priority.HIGH)
    order = [position_of(Ticket.objects.get(pk=t.pk)) for t in (urgent, high1, high2, normal)]
    assert order == [1, 2, 3, 4]


def test_call_next_calls_highest_priority_then_oldest_across_counter_queues(location, queue):
    lab = make_queue(location, "Lab", "L")
    counter = make_counter(location, "Room 1", [queue, lab])
    a1 = do_join(queue)
    l1 = do_join(lab)
    l2 = do_join(lab, priority=Priority.HIGH)
    called = do_call_next(counter=counter)
    assert called.pk == l2.pk and called.status == TicketStatus.CALLED and called.counter == counter
    do_complete(called)
    assert do_call_next(counter=counter).pk == a1.pk
    do_complete(a1.pk)
    assert do_call_next(counter=counter).pk == l1.pk


def test_call_next_refuses_while_counter_holds_a_ticket(queue, counter):
    do_join(queue)
    do_join(queue)
    do_call_next(counter=counter)
    with pytest.raises(CounterBusy, match="Counter 1 still has A-001"):
        do_call_next(counter=counter)


def test_call_next_on_empty_queue_returns_none(counter):
    assert do_call_next(counter=counter) is None


def test_call_next_refuses_paused_queue(queue, counter):
    do_join(queue)
    do_pause(queue)
    with pytest.raises(QueuePaused, match="paused"):
        do_call_next(counter=counter)
    do_resume(queue)
    assert do_call_next(counter=counter).number == 1


def test_call_next_skips_paused_queue_when_counter_serves_another(location, queue):
    lab = make_queue(location, "Lab", "L")
    counter = make_counter(location, "Room 1", [queue, lab])
    do_join(queue)
    lab_ticket = do_join(lab)
    do_pause(queue)
    assert do_call_next(counter=counter).pk == lab_ticket.pk


def test_join_refuses_paused_and_full_queues(queue):
    do_pause(queue)
    with pytest.raises(QueuePaused, match="not taking new tickets"):
        do_join(queue)
    do_resume(queue)
    queue.max_waiting = 1
    queue.save()
    do_join(queue)
    with pytest.raises(QueueFull, match="full"):
        do_join(queue)
    assert Ticket.objects.count() == 1


def test_join_refuses_unknown_priority_and_party_size(queue):
    with pytest.raises(InvalidInput, match="Priority must be one of"):
        do_join(queue, priority=7)
    with pytest.raises(InvalidInput, match="party size must be 1"):
        do_join(queue, party_size=2)
    assert not Ticket.objects.exists() and not QueueEvent.objects.exists()


def test_complete_refuses_a_ticket_never_called(queue):
    ticket = do_join(queue)
    with pytest.raises(InvalidTransition, match="never called"):
        do_complete(ticket)


def test_full_service_cycle_leaves_one_event_per_action(queue, counter, staff):
    ticket = do_join(queue, acting_user=staff)
    do_call_next(counter=counter, acting_user=staff)
    do_recall(ticket, acting_user=staff)
    do_start_serving(ticket, acting_user=staff)
    do_complete(ticket, acting_user=staff)
    kinds = list(QueueEvent.objects.filter(queue=queue).values_list("kind", "version", "status_after"))
    assert kinds == [("joined", 1, "waiting"), ("called", 2, "called"), ("recalled", 3, "called"),
                     ("started", 4, "serving"), ("completed", 5, "completed")]
    ticket.refresh_from_db()
    assert ticket.call_count == 2 and ticket.finished_at is not None
    assert validate_queue_integrity(queue) == []


def test_no_show_requeues_to_the_back_until_recall_limit_then_final(queue, counter):
    queue.recall_limit = 1
    queue.save()
    late = do_join(queue)
    other = do_join(queue)
    do_call_next(counter=counter)
    requeued = do_no_show(late)
    assert requeued.status == TicketStatus.WAITING and requeued.counter is None
    assert position_of(requeued) == 2  # behind `other`
    assert do_call_next(counter=counter).pk == other.pk
    do_complete(other)
    do_call_next(counter=counter)
    final = do_no_show(late)
    assert final.status == TicketStatus.NO_SHOW and final.no_show_count == 2
    assert validate_queue_integrity(queue) == []


def test_call_specific_ticket_refuses_one_already_called(queue, location, counter):
    ticket = do_join(queue)
    second_counter = make_counter(location, "Counter 2", [queue])
    do_call_ticket(ticket, counter=counter)
    with pytest.raises(InvalidTransition, match="not waiting"):
        do_call_ticket(ticket, counter=second_counter)


def test_call_specific_ticket_refuses_counter_not_serving_its_queue(location, queue):
    other_counter = make_counter(location, "Desk 9", [])
    ticket = do_join(queue)
    with pytest.raises(InvalidInput, match="does not serve"):
        do_call_ticket(ticket, counter=other_counter)


def test_cancel_by_patient_and_refusal_while_serving(queue, counter):
    ticket = do_join(queue)
    behind = do_join(queue)
    cancelled = do_cancel(ticket, by_patient=True)
    assert cancelled.status == TicketStatus.CANCELLED
    assert position_of(Ticket.objects.get(pk=behind.pk)) == 1
    do_call_next(counter=counter)
    do_start_serving(behind)
    with pytest.raises(InvalidTransition, match="being served"):
        do_cancel(behind)


def test_transfer_gives_a_new_number_at_the_back_or_front(location, queue, counter):
    lab = make_queue(location, "Lab", "L")
    waiting_in_lab = do_join(lab)
    ticket = do_join(queue)
    do_call_next(counter=counter)
    new = do_transfer(ticket, to_queue=lab)
    assert new.display_number == "L-002" and position_of(new) == 2
    old = Ticket.objects.get(pk=ticket.pk)
    assert old.status == TicketStatus.TRANSFERRED and old.transferred_to_id == new.pk
    front = do_transfer(do_join(queue), to_queue=lab, to_front=True)
    assert position_of(front) == 1
    assert position_of(Ticket.objects.get(pk=waiting_in_lab.pk)) == 2
    assert validate_queue_integrity() == []


def test_transfer_refuses_other_location(queue, other_location):
    elsewhere = make_queue(other_location, "Elsewhere", "E")
    ticket = do_join(queue)
    with pytest.raises(InvalidInput, match="within one location"):
        do_transfer(ticket, to_queue=elsewhere)
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.WAITING


def test_actions_publish_only_after_commit(queue, counter, published, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        ticket = do_join(queue)
        do_call_next(counter=counter)
    assert len(callbacks) == 2
    assert [(m["kind"], m["version"]) for m in published] == [("joined", 1), ("called", 2)]
    assert published[0]["entered"] == published[1]["left"] == [0, ticket.seq]
    assert published[1]["ticket"]["counter"] == "Counter 1"


def test_refused_action_publishes_nothing(queue, published, django_capture_on_commit_callbacks):
    do_pause(queue)
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(QueuePaused):
            do_join(queue)
    assert [m["kind"] for m in published] == []


def test_a_waitlist_request_cannot_be_called_to_a_counter(location):
    train = make_queue(location, "Train 101", "T", kind="capacity", capacity=1)
    desk = make_counter(location, "Desk 1", [train])
    do_join(train)
    waiting = do_join(train)  # no seat left: waits
    with pytest.raises(InvalidInput, match="is a waitlist"):
        do_call_ticket(waiting, counter=desk)
    assert Ticket.objects.get(pk=waiting.pk).status == TicketStatus.WAITING


def test_published_events_never_carry_the_patients_token(queue, counter, published,
                                                        django_capture_on_commit_callbacks):
    # Every screen of the queue receives these messages; the token is the patient's credential.
    with django_capture_on_commit_callbacks(execute=True):
        ticket = do_join(queue)
        do_call_next(counter=counter)
    assert len(published) == 2
    for message in published:
        assert ticket.token[:6] not in json.dumps(message)
    assert ticket.token[:6] not in json.dumps(list(QueueEvent.objects.values_list("data", flat=True)))
