"""Malformed path segments and numbers never reach a view or the database.

Issue 10, defects 1 and 2: a NUL byte in a ticket token answered 500 on
PostgreSQL on every HTML route taking a token, and `capacity=²` answered 500
(`str.isdigit()` is true for superscripts) while full-width and Arabic-Indic
digits were taken as numbers. Tokens are now matched by a URL converter and
numbers parsed by `queueapp.forms.WholeNumberField`.
"""

from __future__ import annotations

import pytest
from django.test import Client

from queueapp.models import Queue, QueueEvent, Ticket, TicketStatus
from queueapp.services import do_call_next, do_join
from tests.conftest import make_queue
from tests.pages_helpers import generous_rate_limits  # noqa: F401

pytestmark = pytest.mark.django_db

TOKEN_ROUTES = [
    ("get", "/t/{token}/"),
    ("post", "/t/{token}/cancel"),
    ("post", "/t/{token}/accept"),
    ("post", "/t/{token}/decline"),
    ("get", "/kiosk/{slug}/ticket/{token}/"),
    ("get", "/live/ticket/{token}/"),
]
MALFORMED_TOKENS = {
    "NUL byte": "%00",
    "NUL inside a token-long segment": "A" * 10 + "%00" + "A" * 11,
    "too short": "A" * 21,
    "too long": "A" * 23,
    "outside the alphabet": "A" * 21 + "%24",
    "a non-ASCII letter": "A" * 21 + "%C3%A9",
}


@pytest.fixture
def browser(db):
    # A 500 must show as a status here, not as an exception re-raised into the test.
    return Client(raise_request_exception=False)


@pytest.mark.parametrize("method,route", TOKEN_ROUTES)
@pytest.mark.parametrize("token", MALFORMED_TOKENS.values(), ids=MALFORMED_TOKENS.keys())
def test_a_malformed_token_in_a_page_url_is_404(browser, location, method, route, token):
    response = getattr(browser, method)(route.format(token=token, slug=location.slug))
    assert response.status_code == 404


@pytest.mark.parametrize("method,route", TOKEN_ROUTES)
def test_a_real_token_still_reaches_its_page(browser, location, queue, method, route):
    ticket = do_join(queue)
    response = getattr(browser, method)(route.format(token=ticket.token, slug=location.slug))
    # The page, a redirect after the action, or the action refused in words: never "no such route".
    assert response.status_code in (200, 302, 409), response.status_code


@pytest.fixture
def train(location):
    return make_queue(location, "Train 101", "T", kind=Queue.Kind.CAPACITY, capacity=2)


@pytest.mark.parametrize("typed", ["²", "１２", "١٢", "۱۲", "𝟙𝟚", "12.0", "1e3", "-1", "", " ", "0x10",
                                   "9" * 30, "1" * 5000])
def test_capacity_must_be_ascii_digits_and_the_refusal_names_the_field(browser, manager, train, typed):
    browser.force_login(manager)
    response = browser.post(f"/waitlist/{train.pk}/capacity", {"capacity": typed})
    assert response.status_code == 400
    assert "Capacity" in response.text
    train.refresh_from_db()
    assert train.capacity == 2
    assert not QueueEvent.objects.filter(queue=train, kind="capacity_changed").exists()


def test_capacity_in_plain_digits_still_works(browser, manager, train):
    browser.force_login(manager)
    assert browser.post(f"/waitlist/{train.pk}/capacity", {"capacity": " 7 "}).status_code == 302
    train.refresh_from_db()
    assert train.capacity == 7


@pytest.mark.parametrize("typed", ["１", "١", "²"])
def test_console_ticket_and_queue_ids_must_be_ascii_digits(browser, staff, queue, counter, typed):
    ticket = do_join(queue)
    browser.force_login(staff)
    called = browser.post(f"/console/{counter.pk}/act", {"action": "call", "ticket": typed},
                          HTTP_HX_REQUEST="true")
    assert called.status_code == 400 and "ticket must be given by its id" in called.text
    paused = browser.post(f"/console/{counter.pk}/act", {"action": "pause", "queue": typed},
                          HTTP_HX_REQUEST="true")
    assert paused.status_code == 400 and "Choose a queue" in paused.text
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.WAITING


@pytest.mark.parametrize("typed", ["１", "١"])
def test_kiosk_service_must_be_ascii_digits(browser, location, queue, typed):
    response = browser.post(f"/kiosk/{location.slug}/", {"queue": typed})
    assert response.status_code == 400 and "Choose one of the services listed." in response.text
    assert not Ticket.objects.exists()


def test_ids_beyond_64_bits_in_a_page_url_are_404(browser, staff, counter):
    browser.force_login(staff)
    huge = str(2**63)
    assert browser.get(f"/console/{huge}/").status_code == 404
    assert browser.get(f"/waitlist/{huge}/").status_code == 404
    assert browser.get(f"/live/console/{huge}/").status_code == 404
    assert do_call_next(counter=counter) is None  # nothing was touched


UNICODE_DATES = {
    "Arabic-Indic year": "٢٠٢٦-01-01",
    "Arabic-Indic day digit": "2026-01-1١",
    "full-width": "２０２６-０１-０１",
    "Extended Arabic-Indic": "۲۰۲۶-01-01",
    "mathematical digits": "𝟚𝟘𝟚𝟞-01-01",
}


@pytest.mark.parametrize("field", ["start", "end"])
@pytest.mark.parametrize("typed", UNICODE_DATES.values(), ids=UNICODE_DATES.keys())
def test_statistics_dates_must_be_ascii_digits_and_the_refusal_names_the_field(browser, manager, field, typed):
    browser.force_login(manager)
    for query in ({field: typed}, {field: typed, "format": "csv"}):
        response = browser.get("/stats/", query)
        assert response.status_code == 400
        # The refusal names the field as the form labels it ("From", "To"), in the page's language.
        label = {"start": "From", "end": "To"}[field]
        assert f"{label}: Write the date with the digits 0-9, as YYYY-MM-DD." in response.text


@pytest.mark.parametrize("export", ["ticket", "queueevent"])
def test_export_dates_must_be_ascii_digits(browser, export):
    from django.contrib.auth import get_user_model

    browser.force_login(get_user_model().objects.create_superuser("root", password="pw-root"))
    response = browser.get(f"/admin/queueapp/{export}/export/", {"start": "٢٠٢٦-01-01"})
    assert response.status_code == 400
    assert "Write the date with the digits 0-9" in response.text


def test_statistics_dates_in_plain_digits_still_work(browser, manager):
    browser.force_login(manager)
    assert browser.get("/stats/", {"start": "2026-01-01", "end": "2026-01-31"}).status_code == 200
