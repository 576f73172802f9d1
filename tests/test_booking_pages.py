"""Appointment pages: booking online, the booking page (code, QR, move, cancel,
check in), the kiosk's check-in by QR code or typed code, and the staff's day."""

from __future__ import annotations

import io

import pytest
import segno
import zxingcpp
from django.urls import reverse
from PIL import Image

from queueapp.models import Booking, BookingStatus, QueueEvent, Slot, Ticket
from queueapp.services import do_book, do_join
from queueapp.views.kiosk import qr_svg
from tests.bookings_support import at, clock, make_schedule  # noqa: F401 (fixture)
from tests.conftest import make_user
from tests.pages_helpers import generous_rate_limits  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def schedule(queue):
    return make_schedule(queue)


def decode_qr_of(url: str) -> str:
    """What a camera reads from the QR code the booking page draws for `url`."""
    png = io.BytesIO()
    segno.make(url, error="m").save(png, kind="png", scale=6, border=4)
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.getvalue())))
    assert len(found) == 1
    return found[0].text


def test_booking_online_shows_the_day_s_slots_and_leads_to_a_page_with_code_and_qr(
        client, location, queue, schedule, clock):
    page = client.get(reverse("book", args=[location.slug]), {"queue": queue.pk}).text
    assert "General" in page and 'value="2030-03-04T09:00:00+01:00"' in page and "(2 free)" in page
    response = client.post(reverse("book", args=[location.slug]) + f"?queue={queue.pk}",
                           {"queue": queue.pk, "starts_at": "2030-03-04T09:00:00+01:00"})
    booking = Booking.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("booking", args=[booking.token])
    page = client.get(response["Location"]).text
    url = f"http://testserver/b/{booking.token}/"
    assert booking.code[:4] in page and qr_svg(url, title="QR code of your booking") in page
    assert "Monday 4 March 2030, 09:00" in page and "from 08:45 to 09:10" in page
    assert decode_qr_of(url) == url


@pytest.mark.parametrize("value", ["", "\x00", "2030-03-04T09:00:00", "２０３０-03-04T09:00:00+01:00",
                                   "2030-02-30T09:00:00+01:00", "x" * 5000, "2030-03-04T09:05:00+01:00"])
def test_a_bad_slot_is_refused_naming_it_and_nothing_is_booked(client, location, queue, schedule, clock, value):
    response = client.post(reverse("book", args=[location.slug]), {"queue": queue.pk, "starts_at": value})
    assert response.status_code == 400
    assert "slot" in response.text.lower()
    assert not Booking.objects.exists() and not Slot.objects.exists()


def test_booking_with_a_contact_needs_consent_through_the_alerts_path(client, location, queue, schedule, clock):
    data = {"queue": queue.pk, "starts_at": "2030-03-04T09:00:00+01:00", "alert_contact": "ana@example.org"}
    response = client.post(reverse("book", args=[location.slug]), data)
    assert response.status_code == 400 and "Tick the box" in response.text
    assert not Booking.objects.exists()
    client.post(reverse("book", args=[location.slug]), {**data, "alert_consent": "yes"})
    assert Booking.objects.get().contact_address == "ana@example.org"


def test_a_full_slot_is_refused_clearly(client, location, queue, schedule, clock):
    do_book(queue, starts_at=at(9))
    do_book(queue, starts_at=at(9))
    assert "(full)" in client.get(reverse("book", args=[location.slug]), {"queue": queue.pk}).text
    response = client.post(reverse("book", args=[location.slug]),
                           {"queue": queue.pk, "starts_at": "2030-03-04T09:00:00+01:00"})
    assert response.status_code == 409 and "The 09:00 slot is fully booked (2 places)" in response.text


def test_the_holder_moves_then_cancels(client, queue, schedule, clock):
    booking = do_book(queue, starts_at=at(9))
    page = reverse("booking", args=[booking.token])
    assert client.post(page + "move", {"starts_at": "2030-03-04T10:30:00+01:00"}).status_code == 302
    assert "Monday 4 March 2030, 10:30" in client.get(page).text
    assert client.post(page + "cancel").status_code == 302
    assert "was cancelled" in client.get(page).text
    assert Booking.objects.get().status == BookingStatus.CANCELLED
    refused = client.post(page + "cancel")
    assert refused.status_code == 409 and "nothing to cancel" in refused.text


def test_check_in_from_the_booking_page_on_time_and_late_says_which(client, queue, schedule, clock):
    on_time, late = do_book(queue, starts_at=at(9)), do_book(queue, starts_at=at(9, 15))
    clock.set(at(8, 40))
    early = client.post(reverse("booking", args=[on_time.token]) + "check-in")
    assert early.status_code == 409 and "opens at 08:45" in early.text
    clock.set(at(9))
    client.post(reverse("booking", args=[on_time.token]) + "check-in")
    page = client.get(reverse("booking", args=[on_time.token])).text
    ticket = Ticket.objects.get(booking__pk=on_time.pk)
    assert "You are checked in" in page and ticket.display_number in page
    clock.set(at(9, 26))
    assert "join the line as a walk-in" in client.get(reverse("booking", args=[late.token])).text
    client.post(reverse("booking", args=[late.token]) + "check-in")
    assert "so you joined the line as a walk-in" in client.get(reverse("booking", args=[late.token])).text


def test_the_kiosk_checks_in_by_scanned_qr_code_or_typed_code(client, location, queue, schedule, clock):
    scanned, typed = do_book(queue, starts_at=at(9)), do_book(queue, starts_at=at(9))
    clock.set(at(8, 50))
    assert "I have an appointment" in client.get(reverse("kiosk", args=[location.slug])).text
    form = client.get(reverse("kiosk-check-in", args=[location.slug])).text
    assert 'name="code"' in form and "kiosk_scan.js" in form
    read = decode_qr_of(f"http://testserver/b/{scanned.token}/")
    response = client.post(reverse("kiosk-check-in", args=[location.slug]), {"code": read})
    scanned.refresh_from_db()
    assert response["Location"] == reverse("kiosk-ticket", args=[location.slug, scanned.ticket.token])
    assert "Checked in for your 09:00 appointment" in client.get(response["Location"]).text
    spaced = f" {typed.code[:4].lower()} {typed.code[4:]} "
    client.post(reverse("kiosk-check-in", args=[location.slug]), {"code": spaced})
    typed.refresh_from_db()
    assert typed.status == BookingStatus.CHECKED_IN and typed.checked_in_by == "kiosk"


@pytest.mark.parametrize("code, status, words", [
    ("", 400, "A booking code is 8 letters"), ("\x00", 400, "A booking code"), ("ZZZZZZZZ", 404, "No booking"),
    ("x" * 5000, 400, "not a booking code"), ("１２３４５６７８", 400, "A booking code"),
])
def test_the_kiosk_refuses_a_bad_code_clearly(client, location, queue, schedule, clock, code, status, words):
    response = client.post(reverse("kiosk-check-in", args=[location.slug]), {"code": code})
    assert response.status_code == status and words in response.text
    assert not Ticket.objects.exists()


def test_a_booking_of_another_location_is_not_checked_in_at_this_kiosk(client, other_location, queue, schedule,
                                                                       clock):
    booking = do_book(queue, starts_at=at(9))
    clock.set(at(9))
    response = client.post(reverse("kiosk-check-in", args=[other_location.slug]), {"code": booking.code})
    assert response.status_code == 404 and "another location" in response.text
    assert Booking.objects.get().status == BookingStatus.BOOKED


def test_staff_see_the_day_book_for_someone_and_check_them_in(client, location, queue, schedule, clock, staff):
    do_book(queue, starts_at=at(9))
    client.force_login(staff)
    url = reverse("staff-bookings", args=[location.slug])
    page = client.get(url, {"day": "2030-03-04"}).text
    assert "09:00" in page and "Booked" in page
    assert client.get(reverse("console-home")).text.count(url) == 1
    response = client.post(url + f"?day=2030-03-04&queue={queue.pk}",
                           {"action": "book", "queue": queue.pk, "starts_at": "2030-03-04T10:00:00+01:00",
                            "priority": "10", "note": "wheelchair"})
    assert response.status_code == 302
    booked = Booking.objects.get(slot__starts_at=at(10))
    assert booked.priority == 10 and booked.booked_by == staff and booked.note == "wheelchair"
    assert "wheelchair" in client.get(url, {"day": "2030-03-04"}).text   # staff see their note
    clock.set(at(9, 55))
    client.post(url + "?day=2030-03-04", {"action": "check_in", "booking": booked.pk})
    booked.refresh_from_db()
    assert booked.checked_in_by == "staff" and booked.ticket.priority == 10
    assert QueueEvent.objects.get(ticket=booked.ticket).actor == staff


def test_the_staff_page_refuses_anonymous_and_other_locations(client, location, queue, schedule, other_staff):
    url = reverse("staff-bookings", args=[location.slug])
    assert client.get(url).status_code == 302
    client.force_login(other_staff)
    assert client.get(url).status_code in (403, 404)


@pytest.mark.parametrize("data, field_words", [
    ({"action": "book", "queue": "1x"}, "services listed"), ({"action": "explode"}, "check in, cancel or book"),
    ({"action": "check_in", "booking": "٣"}, "bookings listed"), ({"action": "cancel", "booking": "999"}, "No such"),
])
def test_staff_page_bad_input_is_refused_naming_it(client, location, queue, schedule, clock, staff, data,
                                                   field_words):
    client.force_login(staff)
    response = client.post(reverse("staff-bookings", args=[location.slug]), data)
    assert response.status_code in (400, 404) and field_words in response.text
    assert not Booking.objects.exists()


def test_no_personal_data_in_the_day_s_events(client, location, queue, schedule, clock):
    client.post(reverse("book", args=[location.slug]),
                {"queue": queue.pk, "starts_at": "2030-03-04T09:00:00+01:00",
                 "alert_contact": "+33 6 12 34 56 78", "alert_consent": "yes"})
    booking = Booking.objects.get()
    events = str(list(QueueEvent.objects.values_list("data", flat=True)))
    assert "+336" not in events and booking.code not in events and booking.token not in events
    do_join(queue)
