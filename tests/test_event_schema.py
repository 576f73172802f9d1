"""The event message has one shape, built in one place (`queueapp.events.event_message`).

What a screen receives live and what it reads back when it missed events must
be the same message, key for key: a screen that catches up from the database
would otherwise show something the live push never said.
"""

from __future__ import annotations

import pytest

from queueapp import events
from queueapp.live import reads
from queueapp.models import Queue, QueueEvent
from queueapp.services import (
    do_call_next, do_cancel, do_complete, do_join, do_no_show, do_pause, do_recall, do_resume,
    do_set_capacity, do_set_counter_state, do_start_serving, do_transfer,
)

from .conftest import make_counter, make_queue

pytestmark = pytest.mark.django_db(transaction=True)


# The keys each kind adds to the common ones: what screens may rely on.
KIND_KEYS = {
    "joined": {"ticket", "entered", "entered_at"},
    "called": {"ticket", "left"},
    "recalled": {"ticket"},
    "started": {"ticket"},
    "completed": {"ticket", "service_seconds"},
    "no_show": {"ticket", "no_show_count"},
    "requeued": {"ticket", "entered", "entered_at", "no_show_count", "recall_limit"},
    "paused": set(),
    "resumed": set(),
    "transferred_out": {"ticket", "left", "to_queue", "new_ticket", "new_display"},
    "transferred_in": {"ticket", "entered", "entered_at", "from_queue", "old_ticket", "to_front"},
    # allow_skip: the admission rule it followed, for the integrity replay (queueapp.replay)
    "confirmed": {"ticket", "left", "seats_taken", "capacity", "allow_skip"},
    "capacity_changed": {"from", "to", "seats_taken", "capacity"},
    "cancelled": {"ticket", "by", "was", "seats_released"},
    "counter_state": {"counter", "counter_name", "state", "reason", "open_counters"},
}
# "left" only when the ticket was waiting; seats only on a waitlist (its pages say "N seats free");
# "out_of_turn" only when staff called one chosen ticket.
# A closing counter's held ticket (services.counters) marks its completion, requeue
# (to the front) or transfer with "counter_closing".
# A call under a rule other than strict priority records it (queueapp.calling) for the replay.
OPTIONAL = {"cancelled": {"left", "seats_taken", "capacity"},
            "called": {"out_of_turn", "rule", "ratio", "streak", "overdue_before"},
            "requeued": {"to_front", "counter_closing"}, "completed": {"counter_closing"},
            "transferred_out": {"counter_closing"}}


def _run_a_day(location, queue, counter, staff):
    other = make_queue(location, "Pharmacy", prefix="P")
    a = do_join(queue)
    b = do_join(queue)
    do_join(queue)
    do_call_next(queue, counter=counter, acting_user=staff)
    do_recall(a, acting_user=staff)
    do_start_serving(a, acting_user=staff)
    do_complete(a, acting_user=staff)
    do_call_next(queue, counter=counter, acting_user=staff)
    do_no_show(b, acting_user=staff)
    do_pause(queue, acting_user=staff)
    do_resume(queue, acting_user=staff)
    do_call_next(queue, counter=counter, acting_user=staff)
    do_set_counter_state(counter, state="break", reason="lunch", held="requeue", acting_user=staff)
    do_set_counter_state(counter, state="open", acting_user=staff)
    third = queue.tickets.filter(status="waiting").first()
    do_transfer(third, to_queue=other, acting_user=staff)
    waitlist = make_queue(location, "Tables", prefix="T", kind=Queue.Kind.CAPACITY, capacity=2)
    w1 = do_join(waitlist, party_size=2)
    do_join(waitlist, party_size=1)
    do_set_capacity(waitlist, capacity=4, acting_user=staff)
    do_cancel(w1, by_patient=True)
    return [queue, other, waitlist]


def test_every_published_message_equals_the_catch_up_read_of_its_row(
        location, queue, counter, staff, published):
    queues = _run_a_day(location, queue, counter, staff)

    caught_up = [m for q in queues for m in reads.event_messages(q.pk, 0)]
    by_key = {(m["queue"], m["version"]): m for m in caught_up}
    assert len(published) == len(caught_up) == QueueEvent.objects.count()
    for message in published:
        assert by_key[(message["queue"], message["version"])] == message


def test_message_keys_are_pinned(location, queue, counter, staff, published):
    _run_a_day(location, queue, counter, staff)

    kinds = set()
    for message in published:
        kinds.add(message["kind"])
        assert tuple(message)[:len(events.MESSAGE_KEYS)] == events.MESSAGE_KEYS
        assert message["type"] == events.EVENT_TYPE
        assert message["location"] == location.pk
        extra = set(message) - set(events.MESSAGE_KEYS)
        optional = OPTIONAL.get(message["kind"], set())
        assert extra - optional == KIND_KEYS[message["kind"]], (message["kind"], extra)
        if "ticket" in message:
            assert tuple(message["ticket"]) == events.TICKET_KEYS
        for key in ("left", "entered"):
            if key in message:
                assert isinstance(message[key], list) and len(message[key]) == 2
        if "entered" in message:  # the entering ticket's queued_at, as a number (selectors.overtakes)
            assert isinstance(message["entered_at"], int)
    assert {"joined", "called", "recalled", "started", "completed", "paused", "resumed",
            "transferred_out", "transferred_in", "confirmed", "capacity_changed",
            "cancelled", "counter_state", "requeued"} <= kinds
