"""The ticket endpoints do what the console and the patient page rely on."""

import pytest
from django.db import connection

from queueapp.api.auth import issue_token
from queueapp.integrity import validate_queue_integrity
from queueapp.models import ApiToken, Priority, QueueEvent, Ticket
from queueapp.services import do_call_next, do_join, do_transfer
from tests.api_support import (  # noqa: F401 (fixtures)
    Api,
    anonymous,
    as_kiosk,
    as_staff,
    as_staff_token,
    fast_password_hashing,
    kiosk_key,
    staff_key,
)
from tests.conftest import make_counter, make_queue

pytestmark = pytest.mark.django_db


def test_staff_join_answers_number_token_position_wait_and_patient_url(queue, as_staff, staff):
    do_join(queue)
    response = as_staff.post(f"/queues/{queue.pk}/tickets", {"priority": Priority.NORMAL, "note": "wheelchair"})
    assert response.status_code == 201
    body = response.json()
    ticket = Ticket.objects.get(pk=body["id"])
    assert body == {
        "id": ticket.pk, "number": "A-002", "status": "waiting", "token": ticket.token,
        "position": 2, "estimated_wait_seconds": 1.5 * queue.default_service_seconds,
        "patient_path": f"/t/{ticket.token}/", "patient_url": f"http://testserver/t/{ticket.token}/",
    }
    assert ticket.note == "wheelchair"
    event = QueueEvent.objects.get(ticket=ticket)
    assert (event.kind, event.actor) == ("joined", staff)


def test_kiosk_joins_at_its_location_without_a_user(queue, as_kiosk):
    response = as_kiosk.post(f"/queues/{queue.pk}/tickets", {})
    assert response.status_code == 201 and response.json()["number"] == "A-001"
    ticket = Ticket.objects.get()
    assert ticket.priority == Priority.NORMAL
    assert QueueEvent.objects.get(ticket=ticket).actor is None


def test_a_kiosk_join_reads_the_queue_once_and_writes_it_once(queue, as_kiosk, django_assert_num_queries):
    """The kiosk join is the API's hot path (issue 9). On PostgreSQL: the token,
    a plain read of the queue (its location checked on it, and whether any
    webhook could want the join), one statement that moves the queue's
    counters and version and writes the ticket and its event (the only one
    holding the queue row: `services._take`), and the answer's place and wait
    in one statement (`selectors.place_and_wait`) sent with it, in the same
    round trip. On SQLite one transaction that locks the queue and writes
    everything under it. The token was read by the first call and is kept
    (`api.auth`)."""
    as_kiosk.post(f"/queues/{queue.pk}/tickets", {})  # the token's last use is written once a minute
    # PostgreSQL: queue; counters+ticket+event with place+service times+counters (one round trip)
    # SQLite: BEGIN, lock, counters+version, ticket, event, webhooks, COMMIT; place, service times, counters
    with django_assert_num_queries(3 if connection.vendor == "postgresql" else 10):
        response = as_kiosk.post(f"/queues/{queue.pk}/tickets", {})
    assert response.status_code == 201 and response.json()["position"] == 2
    queue.refresh_from_db()
    events = list(QueueEvent.objects.filter(queue=queue).order_by("version").values_list("version", "kind"))
    assert queue.version == 2 and events == [(1, "joined"), (2, "joined")]
    assert validate_queue_integrity(queue) == []


@pytest.mark.django_db(transaction=True)
def test_a_kiosk_join_answers_in_two_round_trips_on_postgresql(queue, as_kiosk, tmp_path):
    """The queue read, then the join's statement with the answer's read sent
    behind it (psycopg's pipeline mode: `services._take.run_take_and_read`):
    two round trips to the database, counted in libpq's trace of the
    connection (each time the server answers after the client sent).

    The join's statement is held on the queue row (another session locks it)
    until the trace shows the read sent behind it: otherwise, on a loaded
    machine, the server may answer the statement before the client has sent
    the read, and psycopg takes that answer in as it sends, which reads as a
    third turn without the client ever having waited for it."""
    import threading
    import time

    import psycopg

    if connection.vendor != "postgresql":
        pytest.skip("the one-statement join is PostgreSQL's")
    as_kiosk.post(f"/queues/{queue.pk}/tickets", {})  # the token read and kept, its last use written
    connection.ensure_connection()
    trace = tmp_path / "trace"
    trace.touch()
    place = connection.settings_dict
    holding, sent_behind = threading.Event(), []

    def hold_the_queue_until_the_read_is_sent() -> None:
        with psycopg.connect(dbname=place["NAME"], host=place["HOST"], port=place["PORT"] or None,
                             user=place["USER"]) as other:
            other.execute("SELECT 1 FROM queueapp_queue WHERE id = %s FOR UPDATE", [queue.pk])
            holding.set()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                # Three Syncs sent: the queue read's, the statement's and the answer's read's
                # (prepared: the trace shows their names, not their text).
                if sum(1 for line in trace.read_text().splitlines() if line.split("\t")[1:2] == ["F"]
                       and "Sync" in line) >= 3:
                    sent_behind.append(True)
                    break
                time.sleep(0.01)
            other.rollback()

    holder = threading.Thread(target=hold_the_queue_until_the_read_is_sent)
    holder.start()
    assert holding.wait(10)
    with open(trace, "w") as f:
        connection.connection.pgconn.trace(f.fileno())
        try:
            response = as_kiosk.post(f"/queues/{queue.pk}/tickets", {})
        finally:
            connection.connection.pgconn.untrace()
    holder.join(30)
    assert sent_behind == [True]
    assert response.status_code == 201 and response.json()["position"] == 2
    lines = [line.split("\t") for line in trace.read_text().splitlines()]
    sides = [line[1] for line in lines]
    sent = " | ".join(" ".join(line[3:])[:70] for line in lines if line[1] == "F")  # what went, should it fail
    assert sum(1 for before, after in zip(sides, sides[1:]) if (before, after) == ("F", "B")) == 2, sent


def test_the_join_answers_the_same_place_and_wait_as_the_pages(location, queue, as_kiosk):
    """The join's answer reads place, service times and counters in one statement
    on PostgreSQL: the same numbers as the pages' reads, with a service history,
    an open counter shared with another queue, a closed one, people of
    higher priority ahead, and a booking placed later in the day behind (the
    place is the waiting counts at its priority and above less those at its
    priority from its own place on: `selectors.place_and_wait_read`)."""
    from datetime import timedelta

    from django.utils import timezone

    from queueapp.models import CounterState, TicketStatus
    from queueapp.selectors import estimate_wait, position_of

    other = make_queue(location, name="Lab", slug="lab", prefix="L")
    shared = make_counter(location, name="Shared", queues=(queue, other))
    closed = make_counter(location, name="Closed", queues=(queue,))
    type(shared).objects.filter(pk=shared.pk).update(state=CounterState.OPEN)
    type(closed).objects.filter(pk=closed.pk).update(state=CounterState.CLOSED)
    now = timezone.now()
    for minutes in (3, 5, 8):
        t = do_join(queue)
        Ticket.objects.filter(pk=t.pk).update(status=TicketStatus.COMPLETED, counter=shared,
                                              called_at=now - timedelta(minutes=minutes + 4),
                                              finished_at=now - timedelta(minutes=minutes))
    do_join(queue, priority=Priority.HIGH)
    booked_later = do_join(queue)
    Ticket.objects.filter(pk=booked_later.pk).update(seq=2**53 - 1)  # as `_line.booking_place` may place one
    do_join(queue)
    answer = as_kiosk.post(f"/queues/{queue.pk}/tickets", {}).json()
    ticket = Ticket.objects.select_related("queue__location", "queue__waiting_room").get(pk=answer["id"])
    position = position_of(ticket)
    assert (answer["position"], answer["estimated_wait_seconds"]) == (
        3, round(estimate_wait(ticket.queue, position).total_seconds()))
    assert answer["estimated_wait_seconds"] > 0


def test_a_kiosk_join_elsewhere_is_refused_and_writes_nothing(location, as_kiosk):
    from queueapp.models import Location

    elsewhere = make_queue(Location.objects.create(name="Hillside", slug="hillside"), name="Other", slug="other")
    response = as_kiosk.post(f"/queues/{elsewhere.pk}/tickets", {})
    assert response.status_code == 403 and "cannot act at another location" in response.json()["detail"]
    elsewhere.refresh_from_db()
    assert (elsewhere.version, elsewhere.last_number) == (0, 0)
    assert not Ticket.objects.filter(queue=elsewhere).exists()
    assert not QueueEvent.objects.filter(queue=elsewhere).exists()


@pytest.mark.parametrize("priority", [Priority.HIGH, Priority.URGENT])
def test_a_kiosk_token_cannot_create_tickets_above_normal_priority(queue, as_kiosk, priority):
    response = as_kiosk.post(f"/queues/{queue.pk}/tickets", {"priority": priority})
    assert response.status_code == 403
    assert response.json()["field"] == "priority"
    assert "normal-priority tickets only" in response.json()["detail"]
    assert not Ticket.objects.exists() and not QueueEvent.objects.exists()


def test_staff_and_a_kiosk_token_allowed_to_may_create_urgent_tickets(location, queue, as_staff_token):
    triage_key = issue_token(location=location, kind=ApiToken.Kind.KIOSK, name="Triage",
                             may_set_priority=True)[1]
    assert Api(key=triage_key).post(f"/queues/{queue.pk}/tickets",
                                    {"priority": Priority.URGENT}).status_code == 201
    assert as_staff_token.post(f"/queues/{queue.pk}/tickets",
                               {"priority": Priority.URGENT}).status_code == 201
    assert list(Ticket.objects.values_list("priority", flat=True)) == [Priority.URGENT] * 2


def test_status_by_token_is_public_and_shows_numbers_never_notes(queue, counter, anonymous):
    ahead = do_join(queue)
    mine = do_join(queue, note="private: diabetic")
    response = anonymous.get(f"/tickets/by-token/{mine.token}")
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "number": "A-002", "status": "waiting", "status_label": "Waiting", "queue": "General",
        "location": "Riverside Clinic", "position": 2,
        "estimated_wait_seconds": 1.5 * queue.default_service_seconds, "counter": None, "call_count": 0,
        "transferred_to_path": None,
    }
    assert "diabetic" not in response.content.decode() and "note" not in body
    do_call_next(counter=counter)
    assert anonymous.get(f"/tickets/by-token/{ahead.token}").json()["counter"] == "Counter 1"
    assert anonymous.get(f"/tickets/by-token/{mine.token}").json()["position"] == 1


def test_a_full_service_cycle_through_the_api(queue, counter, as_staff, staff):
    first = do_join(queue)
    do_join(queue)
    called = as_staff.post(f"/counters/{counter.pk}/call-next").json()
    assert called["detail"] == "A-001 to Counter 1."
    assert (called["ticket"]["id"], called["ticket"]["status"], called["ticket"]["counter"]) == \
        (first.pk, "called", "Counter 1")
    assert as_staff.post(f"/tickets/{first.pk}/recall").json()["call_count"] == 2
    assert as_staff.post(f"/tickets/{first.pk}/start").json()["status"] == "serving"
    done = as_staff.post(f"/tickets/{first.pk}/complete").json()
    assert done["status"] == "completed" and done["finished_at"] is not None
    kinds = list(QueueEvent.objects.filter(ticket=first).values_list("kind", "actor"))
    assert kinds == [("joined", None), ("called", staff.pk), ("recalled", staff.pk),
                     ("started", staff.pk), ("completed", staff.pk)]
    assert validate_queue_integrity() == []


def test_call_next_can_be_limited_to_one_queue(location, queue, as_staff):
    lab = make_queue(location, "Lab", "L")
    room = make_counter(location, "Room 1", [queue, lab])
    do_join(queue, priority=Priority.URGENT)
    lab_ticket = do_join(lab)
    response = as_staff.post(f"/counters/{room.pk}/call-next", {"queue_id": lab.pk})
    assert response.json()["ticket"]["id"] == lab_ticket.pk


def test_call_a_specific_ticket_out_of_turn(queue, counter, as_staff):
    do_join(queue)
    later = do_join(queue)
    body = as_staff.post(f"/tickets/{later.pk}/call", {"counter_id": counter.pk}).json()
    assert (body["number"], body["status"], body["counter_id"]) == ("A-002", "called", counter.pk)


def test_no_show_goes_back_in_line_then_is_final(queue, counter, as_staff):
    queue.recall_limit = 0
    queue.save()
    ticket = do_join(queue)
    do_call_next(counter=counter)
    body = as_staff.post(f"/tickets/{ticket.pk}/no-show").json()
    assert (body["status"], body["no_show_count"]) == ("no_show", 1)


def test_transfer_answers_the_new_ticket_and_the_old_token_points_to_it(location, queue, as_staff, anonymous):
    lab = make_queue(location, "Lab", "L")
    do_join(lab)
    ticket = do_join(queue)
    new = as_staff.post(f"/tickets/{ticket.pk}/transfer", {"to_queue": lab.pk, "to_front": True}).json()
    assert (new["number"], new["queue"], new["position"]) == ("L-002", "Lab", 1)
    old = anonymous.get(f"/tickets/by-token/{ticket.token}").json()
    new_token = Ticket.objects.get(pk=new["id"]).token
    assert (old["status"], old["transferred_to_path"]) == ("transferred", f"/t/{new_token}/")


def test_patient_cancels_with_the_token_and_staff_cancel_by_id(queue, as_staff, anonymous):
    mine = do_join(queue)
    other = do_join(queue)
    body = anonymous.post(f"/tickets/by-token/{mine.token}/cancel").json()
    assert (body["status"], body["position"]) == ("cancelled", None)
    assert QueueEvent.objects.get(ticket=mine, kind="cancelled").data["by"] == "patient"
    assert as_staff.post(f"/tickets/{other.pk}/cancel").json()["status"] == "cancelled"
    assert QueueEvent.objects.get(ticket=other, kind="cancelled").data["by"] == "staff"


def test_the_original_token_cancels_the_ticket_it_was_transferred_to(location, queue, anonymous):
    lab = make_queue(location, "Lab", "L")
    ticket = do_join(queue)
    new = do_transfer(ticket, to_queue=lab)
    body = anonymous.post(f"/tickets/by-token/{ticket.token}/cancel").json()
    assert (body["number"], body["status"]) == ("L-001", "cancelled")
    new.refresh_from_db()
    assert new.status == "cancelled"


def test_staff_reads_a_ticket_with_its_note(queue, as_staff):
    ticket = do_join(queue, note="needs an interpreter")
    body = as_staff.get(f"/tickets/{ticket.pk}").json()
    assert (body["number"], body["note"], body["position"]) == ("A-001", "needs an interpreter", 1)


def test_session_writes_pass_with_the_csrf_token(queue, counter, staff):
    do_join(queue)
    api = Api(user=staff, enforce_csrf=True)
    secret = "k" * 32
    api.client.cookies["csrftoken"] = secret
    response = api.post(f"/counters/{counter.pk}/call-next", headers={"X-CSRFToken": secret})
    assert response.status_code == 200 and response.json()["ticket"]["number"] == "A-001"


def test_api_actions_publish_after_commit(queue, counter, as_staff, published,
                                          django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        as_staff.post(f"/queues/{queue.pk}/tickets", {})
        as_staff.post(f"/counters/{counter.pk}/call-next")
    assert [(m["kind"], m["version"]) for m in published] == [("joined", 1), ("called", 2)]


@pytest.mark.django_db(transaction=True)
def test_concurrent_joins_over_http_get_distinct_gapless_numbers(queue, kiosk_key):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def join(_):
        try:
            return Api(key=kiosk_key).post(f"/queues/{queue.pk}/tickets", {}).json()["number"]
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        numbers = list(pool.map(join, range(40)))
    assert sorted(numbers) == [f"A-{n:03d}" for n in range(1, 41)]
    assert validate_queue_integrity(queue) == []
