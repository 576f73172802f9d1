"""A counter's state: open, on a break (with a reason) or closed.

Set in one click from the console (and the API, the admin); a counter that is
not open calls nobody and does not count in wait estimates; closing one that
holds a ticket asks what to do with it, and does all of it or nothing.
"""

from __future__ import annotations

import json
import time as clock

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.db import connection

from queueapp.api.auth import issue_token
from queueapp.integrity import validate_queue_integrity
from queueapp.models import ApiToken, Counter, CounterStateChange, QueueEvent, Ticket, TicketStatus
from queueapp.services import (
    CounterHoldsTicket,
    CounterNotOpen,
    InvalidInput,
    InvalidTransition,
    do_call_next,
    do_call_ticket,
    do_complete,
    do_join,
    do_set_counter_state,
    do_start_serving,
)
from tests.browser_support import database_url_for, run_daphne
from tests.conftest import make_counter, make_queue
from tests.test_concurrency import in_threads
from tests.test_live_server import open_screen

pytestmark = pytest.mark.django_db(transaction=True)


def _fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


def test_a_counter_on_a_break_calls_nobody_and_says_why(queue, counter, staff):
    waiting = do_join(queue)
    do_set_counter_state(counter, state="break", reason="lunch", acting_user=staff)

    with pytest.raises(CounterNotOpen, match=r"^Counter 1 is on a lunch break; open it before calling"):
        do_call_next(counter=counter, acting_user=staff)
    with pytest.raises(CounterNotOpen):
        do_call_ticket(waiting, counter=counter, acting_user=staff)
    assert _fresh(waiting).status == TicketStatus.WAITING

    do_set_counter_state(counter, state="closed", acting_user=staff)
    with pytest.raises(CounterNotOpen, match="is closed"):
        do_call_next(counter=counter, acting_user=staff)
    do_set_counter_state(counter, state="open", acting_user=staff)
    assert do_call_next(counter=counter, acting_user=staff).pk == waiting.pk


def test_every_change_leaves_one_history_row_and_one_event_per_queue_served(location, queue, staff):
    other = make_queue(location, "Pharmacy", prefix="P")
    counter = make_counter(location, "Counter 1", [queue, other])
    do_set_counter_state(counter, state="break", reason="meeting", acting_user=staff)
    do_set_counter_state(counter, state="break", reason="lunch", acting_user=staff)  # another reason
    do_set_counter_state(counter, state="closed", acting_user=staff)

    rows = list(CounterStateChange.objects.filter(counter=counter).values_list(
        "previous_state", "state", "reason", "staff__username"))
    assert rows == [("open", "break", "meeting", "alice"), ("break", "break", "lunch", "alice"),
                    ("break", "closed", "", "alice")]
    for q in (queue, other):
        events = list(QueueEvent.objects.filter(queue=q, kind="counter_state").values_list("data", flat=True))
        assert [(e["state"], e["reason"], e["counter"]) for e in events] == [
            ("break", "meeting", counter.pk), ("break", "lunch", counter.pk), ("closed", "", counter.pk)]
        assert validate_queue_integrity(q) == []
    assert _fresh(counter).state_words == "Closed"


def test_bad_states_and_reasons_are_refused_and_nothing_is_written(counter):
    for kwargs, field in [({"state": "gone"}, "state"), ({"state": "break"}, "reason"),
                          ({"state": "break", "reason": "nap"}, "reason"),
                          ({"state": "closed", "reason": "lunch"}, "reason"),
                          ({"state": "closed", "held": "burn"}, "held")]:
        with pytest.raises(InvalidInput) as refused:
            do_set_counter_state(counter, **kwargs)
        assert refused.value.field == field
    assert not CounterStateChange.objects.exists()
    assert not QueueEvent.objects.filter(kind="counter_state").exists()


def test_closing_with_a_held_ticket_asks_first_and_writes_nothing(queue, counter, staff):
    do_join(queue)
    called = do_call_next(counter=counter)
    versions = _fresh(queue).version

    with pytest.raises(CounterHoldsTicket, match="Counter 1 holds A-001 \\(called\\): choose what to do"):
        do_set_counter_state(counter, state="closed", acting_user=staff)
    with pytest.raises(CounterHoldsTicket):
        do_set_counter_state(counter, state="break", reason="short", acting_user=staff)
    assert _fresh(counter).state == "open"
    assert _fresh(called).status == TicketStatus.CALLED
    assert _fresh(queue).version == versions
    assert not CounterStateChange.objects.exists()


def test_closing_and_finishing_the_held_ticket(queue, counter, staff):
    do_join(queue)
    held = do_start_serving(do_call_next(counter=counter))
    do_set_counter_state(counter, state="closed", held="finish", held_ticket=held, acting_user=staff)

    assert _fresh(held).status == TicketStatus.COMPLETED
    change = CounterStateChange.objects.get()
    assert (change.held_ticket_id, change.held_action) == (held.pk, "finish")
    assert validate_queue_integrity(queue) == []


def test_closing_puts_the_held_ticket_back_first_in_line_for_the_next_counter(location, queue, counter, staff):
    first, second = do_join(queue), do_join(queue)
    urgent = do_join(queue, priority=20)
    assert do_call_next(counter=counter).pk == urgent.pk
    do_set_counter_state(counter, state="break", reason="lunch", held="requeue", acting_user=staff)
    assert _fresh(urgent).status == TicketStatus.WAITING
    desk = make_counter(location, "Counter 2", [queue])
    assert do_call_next(counter=desk).pk == urgent.pk

    # A normal ticket put back stands before the normal tickets that waited behind it.
    do_set_counter_state(counter, state="open", acting_user=staff)
    assert do_call_next(counter=counter).pk == first.pk
    do_set_counter_state(counter, state="closed", held="requeue", acting_user=staff)
    do_complete(urgent)
    assert do_call_next(counter=desk).pk == first.pk
    assert _fresh(second).status == TicketStatus.WAITING
    assert _fresh(first).no_show_count == 0  # not a no-show: the counter closed
    assert validate_queue_integrity(queue) == []


def test_closing_and_transferring_the_held_ticket(location, queue, counter, staff):
    pharmacy = make_queue(location, "Pharmacy", prefix="P")
    do_join(queue)
    held = do_call_next(counter=counter)
    do_set_counter_state(counter, state="closed", held="transfer", to_queue=pharmacy, acting_user=staff)

    held = _fresh(held)
    assert held.status == TicketStatus.TRANSFERRED
    assert held.transferred_to.queue_id == pharmacy.pk
    assert held.transferred_to.status == TicketStatus.WAITING
    for q in (queue, pharmacy):
        assert validate_queue_integrity(q) == []


def test_a_stale_question_is_refused(queue, counter, staff):
    do_join(queue)
    do_join(queue)
    first = do_call_next(counter=counter)
    do_complete(first)
    do_call_next(counter=counter)  # a colleague's tab moved on meanwhile
    with pytest.raises(InvalidTransition, match="holds A-002 now; the page was out of date"):
        do_set_counter_state(counter, state="closed", held="finish", held_ticket=first)
    assert _fresh(counter).state == "open"


def test_call_next_and_a_break_at_the_same_moment_never_leave_a_call_on_a_break(location, queue):
    """Real threads, real database: whichever commits first, a counter on a break
    holds no ticket and no call to it follows its break in the audit trail."""
    for round_ in range(8):
        counter = make_counter(location, f"Desk {round_}", [queue])
        do_join(queue)

        def work(i, counter=counter):
            try:
                if i == 0:
                    return do_call_next(counter=counter)
                return do_set_counter_state(counter, state="break", reason="short", held="requeue")
            except CounterNotOpen as refusal:
                return refusal

        in_threads(2, work)
        counter = _fresh(counter)
        assert counter.state == "break"
        assert not Ticket.objects.filter(counter=counter, status__in=("called", "serving")).exists()
        events = list(QueueEvent.objects.filter(queue=queue, counter=counter).order_by("version")
                      .values_list("kind", flat=True))
        assert "counter_state" in events
        assert "called" not in events[events.index("counter_state"):]
    assert validate_queue_integrity(queue) == []


def test_the_api_sets_the_state_and_the_console_shows_it(client, queue, counter, staff):
    client.force_login(staff)
    answer = client.post(f"/api/counters/{counter.pk}/state", {"state": "break", "reason": "lunch"},
                         content_type="application/json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["state"] == "break" and answer.json()["is_open"] is False
    page = client.get(f"/console/{counter.pk}/").content.decode()
    assert 'data-counter-state="break"' in page and "On a lunch break" in page
    refused = client.post(f"/api/counters/{counter.pk}/call-next", content_type="application/json")
    assert refused.status_code == 409 and refused.json()["code"] == "counter_not_open"


def test_the_console_asks_what_to_do_with_the_held_ticket(client, queue, counter, staff):
    do_join(queue)
    held = do_call_next(counter=counter)
    client.force_login(staff)
    url = f"/console/{counter.pk}/act"

    asked = client.post(url, {"action": "close"})
    page = asked.content.decode()
    assert asked.status_code == 409
    assert "Counter 1 holds A-001 (called)" in page and 'name="held" value="requeue"' in page
    assert _fresh(counter).state == "open"

    answered = client.post(url, {"action": "close", "held": "requeue", "ticket": held.pk}, follow=True)
    assert answered.status_code == 200
    assert "Counter 1 is closed." in answered.content.decode()
    assert _fresh(held).status == TicketStatus.WAITING
    assert _fresh(counter).state == "closed"
    refused = client.post(url, {"action": "call_next"}, follow=True).content.decode()
    assert "Counter 1 is closed; open it before calling tickets." in refused


def test_the_lobby_display_shows_a_break_live_over_a_real_socket(location, queue, counter, staff):
    """daphne and a real WebSocket client: the break is set through the API
    (another request to the same server) and the display's tile changes."""
    _, key = issue_token(location=location, kind=ApiToken.Kind.STAFF, name="Desk", user=staff)

    async def scenario(server):
        async with open_screen(server, f"/ws/display/{location.slug}/") as ws:
            first = await ws.recv()
            assert "On break" not in first
            async with httpx.AsyncClient(base_url=server.url) as http:
                answer = await http.post(f"/api/counters/{counter.pk}/state",
                                         json={"state": "break", "reason": "lunch"},
                                         headers={"Authorization": f"Bearer {key}"})
                assert answer.status_code == 200, answer.text
            deadline = clock.monotonic() + 15
            while clock.monotonic() < deadline:
                frame = await ws.recv()
                if "On a lunch break" in frame:
                    assert 'data-counter-state="break"' in frame
                    return
            raise AssertionError("the display never showed the break")

    with run_daphne(database_url_for(connection.settings_dict)) as server:
        async_to_sync(scenario)(server)
    assert json.dumps(Counter.objects.values("state", "break_reason").get()) == \
        json.dumps({"state": "break", "break_reason": "lunch"})
