"""The waitlist endpoints: state, *Confirm the waitlist*, capacity, and offers by token."""

from datetime import timedelta

import pytest
from django.utils import timezone

from queueapp.models import Queue, QueueEvent, Ticket, TicketStatus
from queueapp.services import do_join
from tests.api_support import (  # noqa: F401 (fixtures)
    Api,
    anonymous,
    as_kiosk,
    as_manager,
    as_other_staff,
    as_staff,
    as_staff_token,
    fast_password_hashing,
    kiosk_key,
    staff_key,
)
from tests.conftest import make_queue

pytestmark = pytest.mark.django_db
S = TicketStatus


@pytest.fixture
def room(location):
    return make_queue(location, "Concert", "C", kind=Queue.Kind.CAPACITY, capacity=4, batch_size=2,
                      offer_seconds=600)


def test_staff_see_seats_and_the_waitlist(room, as_staff):
    for party in (2, 1, 3):
        do_join(room, party_size=party)
    response = as_staff.get(f"/waitlists/{room.pk}")
    assert response.status_code == 200
    assert response.json() == {
        "queue_id": room.pk, "name": "Concert", "service_date": None, "capacity": 4,
        "seats_taken": 0, "seats_free": 4, "waiting": 3, "open_offers": 0, "confirmed": 0,
        "allow_skip": False, "offer_seconds": 600, "batch_size": 2, "max_open_offers": None,
        "is_paused": False,
    }


def test_confirm_admits_one_batch_in_order_and_says_who(room, as_staff_token, staff):
    tickets = [do_join(room) for _ in range(3)]
    response = as_staff_token.post(f"/waitlists/{room.pk}/confirm")
    assert response.status_code == 200
    body = response.json()
    assert [r["number"] for r in body["admitted"]] == ["C-001", "C-002"]
    assert {r["status"] for r in body["admitted"]} == {"offered"}
    assert body["admitted"][0]["offer_expires_at"] is not None
    assert body["waitlist"]["seats_taken"] == 2 and body["waitlist"]["waiting"] == 1
    assert QueueEvent.objects.filter(queue=room, kind="offered", actor=staff).count() == 2
    assert Ticket.objects.get(pk=tickets[2].pk).status == S.WAITING


def test_waitlist_actions_are_for_staff_of_the_location_and_capacity_for_managers(
        room, queue, anonymous, as_kiosk, as_other_staff, as_staff, as_manager):
    assert anonymous.post(f"/waitlists/{room.pk}/confirm").status_code == 401
    assert as_kiosk.post(f"/waitlists/{room.pk}/confirm").status_code == 403
    assert as_other_staff.get(f"/waitlists/{room.pk}").status_code == 403
    refused = as_staff.post(f"/waitlists/{room.pk}/capacity", {"capacity": 9})
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    counter_queue = as_staff.post(f"/waitlists/{queue.pk}/confirm")
    assert counter_queue.status_code == 400 and counter_queue.json()["field"] == "queue_id"
    assert as_manager.post(f"/waitlists/{room.pk}/capacity", {"capacity": 9}).json()["capacity"] == 9


def test_capacity_below_the_seats_held_is_refused_naming_the_field(location, as_manager):
    train = make_queue(location, "Train", "T", kind=Queue.Kind.CAPACITY, capacity=3)
    do_join(train, party_size=3)
    response = as_manager.post(f"/waitlists/{train.pk}/capacity", {"capacity": 2})
    assert response.status_code == 400
    assert response.json() == {
        "detail": "3 seats are already confirmed or offered, so the capacity cannot go below 3. "
                  "Cancel requests first to free seats.",
        "code": "invalid", "field": "capacity"}
    assert as_manager.post(f"/waitlists/{train.pk}/capacity", {"capacity": "4"}).status_code == 400
    assert as_manager.post(f"/waitlists/{train.pk}/capacity", {"capacity": -1}).status_code == 400


def test_holder_accepts_and_declines_with_the_token_only(location, anonymous):
    train = make_queue(location, "Train", "T", kind=Queue.Kind.CAPACITY, capacity=2, offer_seconds=600)
    mine = do_join(train)
    theirs = do_join(train)
    accepted = anonymous.post(f"/waitlists/offers/{mine.token}/accept")
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "confirmed" and accepted.json()["confirmed_at"]
    declined = anonymous.post(f"/waitlists/offers/{theirs.token}/decline")
    assert declined.json()["status"] == "declined"
    again = anonymous.post(f"/waitlists/offers/{theirs.token}/accept")
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"
    assert anonymous.post("/waitlists/offers/nope/accept").status_code == 404


def test_a_late_acceptance_answers_409_offer_expired(location, anonymous):
    train = make_queue(location, "Train", "T", kind=Queue.Kind.CAPACITY, capacity=1, offer_seconds=600)
    offer = do_join(train)
    Ticket.objects.filter(pk=offer.pk).update(offer_expires_at=timezone.now() - timedelta(seconds=1))
    response = anonymous.post(f"/waitlists/offers/{offer.token}/accept")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "offer_expired" and "expired at" in body["detail"]
    assert Ticket.objects.get(pk=offer.pk).status == S.EXPIRED
