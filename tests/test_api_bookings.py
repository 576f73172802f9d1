"""Appointments over the API: slots and booking (public), the holder's booking by
token, check-in by code for a kiosk token or staff, the day's list for staff."""

from __future__ import annotations

import json

import pytest

from queueapp.api.auth import issue_token
from queueapp.models import ApiToken, Booking, BookingStatus, QueueEvent
from queueapp.services import do_book
from tests.bookings_support import at, clock, make_schedule  # noqa: F401 (fixture)
from tests.pages_helpers import generous_rate_limits  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def schedule(queue):
    return make_schedule(queue)


def post(client, url, body=None, **headers):
    return client.post(url, json.dumps(body or {}), content_type="application/json", **headers)


def test_the_public_lists_slots_books_and_reads_its_booking(client, queue, schedule, clock):
    slots = client.get(f"/api/queues/{queue.pk}/slots", {"day": "2030-03-04"}).json()
    assert slots["slots"][0] == {"starts_at": "2030-03-04T08:00:00+01:00", "ends_at": "2030-03-04T08:15:00+01:00",
                                 "capacity": 2, "free": 2}
    response = post(client, f"/api/queues/{queue.pk}/bookings", {"starts_at": "2030-03-04T09:00:00+01:00"})
    assert response.status_code == 201
    body = response.json()
    booking = Booking.objects.get()
    assert body["code"] == booking.code and body["booking_path"] == f"/b/{booking.token}/"
    assert body["check_in_opens"] == "2030-03-04T08:45:00+01:00" and body["status"] == "booked"
    assert client.get(f"/api/bookings/by-token/{booking.token}").json() == body
    full = client.get(f"/api/queues/{queue.pk}/slots", {"day": "2030-03-04"}).json()["slots"]
    assert next(s for s in full if s["starts_at"].startswith("2030-03-04T09:00"))["free"] == 1


def test_the_last_place_refused_over_the_api_says_so(client, queue, schedule, clock):
    do_book(queue, starts_at=at(9))
    do_book(queue, starts_at=at(9))
    response = post(client, f"/api/queues/{queue.pk}/bookings", {"starts_at": "2030-03-04T09:00:00+01:00"})
    assert response.status_code == 409
    assert response.json() == {"detail": "The 09:00 slot is fully booked (2 places); pick another.",
                               "code": "slot_full", "field": "starts_at"}


@pytest.mark.parametrize("body, field", [
    ({"starts_at": "2030-03-04T09:05:00+01:00"}, "starts_at"),
    ({"starts_at": "9999-12-31T23:59:00+00:00"}, "starts_at"),
    ({"starts_at": "2030-03-04T09:00:00"}, "starts_at"),
    ({"starts_at": "2030-03-04T09:00:00+01:00", "alert_contact": "ana@example.org"}, "alert_consent"),
    ({"starts_at": "2030-03-04T09:00:00+01:00", "alert_contact": "\x00", "alert_consent": True}, "alert_contact"),
    ({"starts_at": "2030-03-04T09:00:00+01:00", "priority": 20}, "priority"),
])
def test_bad_bookings_are_refused_naming_the_field(client, queue, schedule, clock, body, field):
    response = post(client, f"/api/queues/{queue.pk}/bookings", body)
    assert response.status_code == 400 and response.json()["field"] == field
    assert not Booking.objects.exists()


def test_the_holder_moves_cancels_and_checks_in_by_token(client, queue, schedule, clock):
    booking = do_book(queue, starts_at=at(9))
    moved = post(client, f"/api/bookings/by-token/{booking.token}/move", {"starts_at": "2030-03-04T10:00:00+01:00"})
    assert moved.json()["starts_at"] == "2030-03-04T10:00:00+01:00"
    clock.set(at(10, 11))
    late = post(client, f"/api/bookings/by-token/{booking.token}/check-in").json()
    assert late["status"] == "checked_in" and late["arrived_late"] and late["ticket_number"] == "A-001"
    refused = post(client, f"/api/bookings/by-token/{booking.token}/cancel")
    assert refused.status_code == 409 and refused.json()["code"] == "invalid_transition"
    assert client.get("/api/bookings/by-token/" + "x" * 22).status_code == 404


def test_a_kiosk_token_checks_in_by_code_at_its_location_only(client, location, other_location, queue, schedule,
                                                              clock):
    booking = do_book(queue, starts_at=at(9))
    _, here = issue_token(location=location, kind=ApiToken.Kind.KIOSK, name="door")
    _, there = issue_token(location=other_location, kind=ApiToken.Kind.KIOSK, name="elsewhere")
    clock.set(at(8, 50))
    elsewhere = post(client, "/api/bookings/check-in", {"code": booking.code}, HTTP_AUTHORIZATION=f"Bearer {there}")
    assert elsewhere.status_code == 404
    done = post(client, "/api/bookings/check-in", {"code": f"http://x/b/{booking.token}/"},
                HTTP_AUTHORIZATION=f"Bearer {here}")
    assert done.status_code == 200 and done.json()["status"] == "checked_in" and not done.json()["arrived_late"]
    assert QueueEvent.objects.get(kind="joined").data["via"] == "kiosk"
    assert post(client, "/api/bookings/check-in", {"code": booking.code}).status_code == 401


def test_staff_list_the_day_s_bookings_of_their_location(client, location, queue, schedule, clock, staff,
                                                         other_staff):
    booking = do_book(queue, starts_at=at(9))
    client.force_login(staff)
    rows = client.get(f"/api/locations/{location.pk}/bookings", {"day": "2030-03-04"}).json()
    assert [(r["id"], r["status"]) for r in rows] == [(booking.pk, BookingStatus.BOOKED)]
    assert client.get(f"/api/locations/{location.pk}/bookings", {"day": "2030-13-04"}).status_code == 400
    client.force_login(other_staff)
    assert client.get(f"/api/locations/{location.pk}/bookings", {"day": "2030-03-04"}).status_code == 404
