"""Public request pages of capacity waitlists, dated resources, and the words a
request's page uses on its first paint and on every live update."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from queueapp.live import reads, render
from queueapp.models import QueueEvent, Ticket, TicketStatus
from queueapp.pages import ticket_context
from queueapp.services import DatePassed, do_cancel, do_join, do_set_capacity
from queueapp.services.waitlist import do_expire_offers, do_expire_past_requests
from tests.conftest import make_queue

pytestmark = pytest.mark.django_db


@pytest.fixture
def today(location):
    return location.business_day()


@pytest.fixture
def train(location, today):
    return make_queue(location, "Train 101", "T", slug="train-101", kind="capacity", capacity=6,
                      service_date=today + timedelta(days=3))


@pytest.fixture
def past_train(location, today):
    return make_queue(location, "Train 99", "P", slug="train-99", kind="capacity", capacity=6,
                      service_date=today - timedelta(days=1))


def test_location_page_lists_only_resources_from_today_on(client, location, train, past_train):
    page = client.get(f"/request/{location.slug}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Train 101" in text and "6 of 6 seats free" in text
    assert "Train 99" not in text


def test_a_request_for_seats_opens_its_live_page(client, location, train):
    answer = client.post(f"/request/{location.slug}/{train.slug}/", {"queue": train.pk, "party_size": 4})
    ticket = Ticket.objects.get(queue=train)
    assert answer.status_code == 302 and answer["Location"] == f"/t/{ticket.token}/"
    assert (ticket.party_size, ticket.status) == (4, TicketStatus.CONFIRMED)
    page = client.get(answer["Location"]).content.decode()
    day = train.service_date
    assert f"Confirmed: 4 seats on Train 101, {day.day} {day:%B}." in page


@pytest.mark.parametrize("data, field, words", [
    ({"party_size": 2}, "queue", "Choose what you want seats on."),
    ({"queue": "x", "party_size": 2}, "queue", "Choose one of the dates listed."),
    ({"party_size": 0}, "party_size", "at least 1 seat"),
    ({"party_size": "lots"}, "party_size", "whole number"),
    ({"party_size": 7}, "party_size", "has 6 places in all"),
])
def test_bad_requests_are_refused_in_words_naming_the_field(client, location, train, data, field, words):
    data = {"queue": train.pk, **data} if "queue" not in data and field != "queue" else data
    answer = client.post(f"/request/{location.slug}/", data)
    assert answer.status_code == 400
    text = answer.content.decode()
    assert words in text and f'data-field="{field}"' in text
    assert not Ticket.objects.exists()


def test_a_past_resource_refuses_requests(client, location, past_train):
    page = client.get(f"/request/{location.slug}/{past_train.slug}/")
    assert page.status_code == 409 and "has passed" in page.content.decode()
    answer = client.post(f"/request/{location.slug}/{past_train.slug}/", {"queue": past_train.pk,
                                                                          "party_size": 1})
    assert answer.status_code == 409
    with pytest.raises(DatePassed):
        do_join(past_train)
    assert not Ticket.objects.exists()


def test_waiting_requests_of_a_passed_date_expire_with_an_event_each(location, train, today):
    held = do_join(train, party_size=6)
    waiting = [do_join(train, party_size=2) for _ in range(2)]
    now = timezone.now()
    assert do_expire_past_requests(now=now) == 0  # still ahead
    train.refresh_from_db()
    type(train).objects.filter(pk=train.pk).update(service_date=today - timedelta(days=1))
    assert do_expire_past_requests(now=now) == 2
    assert do_expire_past_requests(now=now) == 0  # once only
    for t in waiting:
        t.refresh_from_db()
        assert t.status == TicketStatus.EXPIRED
        event = QueueEvent.objects.filter(ticket=t).latest("version")
        assert (event.kind, event.data["reason"]) == ("expired", "date passed")
    held.refresh_from_db()
    assert held.status == TicketStatus.CONFIRMED  # confirmed seats stay confirmed


def _live_text(ticket) -> str:
    return render.ticket_status(reads.ticket_view(ticket.token))


def _first_paint(ticket) -> str:
    from django.template.loader import render_to_string

    ticket = Ticket.objects.select_related("queue__location").get(pk=ticket.pk)
    return render_to_string("queueapp/live/ticket_status.html", ticket_context(ticket))


def _words(html: str) -> str:
    import re

    return " ".join(re.sub(r"<[^>]+>", "", html).split())


def test_a_waiting_request_reads_the_same_on_first_paint_and_live(location, train):
    do_join(train, party_size=3)
    do_join(train, party_size=3)  # 6 of 6 taken
    first = do_join(train, party_size=3)
    mine = do_join(train, party_size=3)
    live, paint = _words(_live_text(mine)), _words(_first_paint(mine))
    assert "Waiting for 3 seats: 2nd in line, 0 seats free now." in live
    assert live == paint
    assert "min" not in live and "wait" not in live.lower().replace("waiting", "")
    do_set_capacity(train, capacity=8)  # 2 free: not enough for the head (3)
    assert "Waiting for 3 seats: 2nd in line, 2 seats free now." in _words(_live_text(mine))
    assert _words(_live_text(mine)) == _words(_first_paint(mine))
    do_cancel(first)  # the head leaves: mine is first, and 2 seats are still too few
    assert "Waiting for 3 seats: 1st in line, 2 seats free now." in _words(_live_text(mine))


def test_a_request_ended_by_its_date_says_so_on_first_paint_and_live(location, train, today):
    do_join(train, party_size=6)
    waiting = do_join(train, party_size=2)
    type(train).objects.filter(pk=train.pk).update(service_date=today - timedelta(days=1))
    before = reads.ticket_view(waiting.token)  # the screen as it was, still waiting
    assert do_expire_past_requests() == 1
    ended = QueueEvent.objects.filter(ticket=waiting).latest("version")
    screen = _ScreenOf(before)
    screen._apply_event({**ended.data, "kind": ended.kind, "version": ended.version})
    live, paint = _words(render.ticket_status(screen.view)), _words(_first_paint(waiting))
    day = today - timedelta(days=1)
    assert f"{train.name} on {day.day} {day:%B} has passed, so this request ended without seats." in paint
    assert "offer" not in paint.lower()
    assert live == paint


def test_an_offer_that_lapsed_says_so_not_that_the_date_passed(location, today):
    queue = make_queue(location, "Show", "S", kind="capacity", capacity=2, offer_seconds=600,
                       service_date=today + timedelta(days=1))
    ticket = do_join(queue, party_size=2)
    do_expire_offers(now=timezone.now() + timedelta(seconds=601))
    paint = _words(_first_paint(ticket))
    assert "was not accepted in time" in paint and "has passed" not in paint


def _ScreenOf(view):
    """A ticket screen (`TicketConsumer`, its event rule `_apply_event` and what
    it calls) on a view, without a socket."""
    from queueapp.live.consumers import TicketConsumer

    screen = TicketConsumer.__new__(TicketConsumer)
    screen.view = view
    return screen


def test_an_offer_shows_big_accept_and_decline_and_its_deadline(location, today):
    queue = make_queue(location, "Show", "S", kind="capacity", capacity=2, offer_seconds=600,
                       service_date=today + timedelta(days=1))
    ticket = do_join(queue, party_size=2)
    live = _live_text(ticket)
    assert "Seats offered: accept by" in _words(live)
    assert 'class="btn primary big offer-accept"' in live and 'class="btn warn big offer-decline"' in live
    assert _words(live) == _words(_first_paint(ticket))


def test_a_request_may_leave_a_contact_for_alerts_and_a_bad_one_writes_nothing(client, location, train):
    from queueapp.alerts.models import Contact

    url = f"/request/{location.slug}/{train.slug}/"
    bad = client.post(url, {"queue": train.pk, "party_size": 2, "alert_contact": "pat@", "alert_consent": "yes"})
    assert bad.status_code == 400 and "not an e-mail address" in bad.content.decode()
    assert not Ticket.objects.exists() and not Contact.objects.exists()
    ok = client.post(url, {"queue": train.pk, "party_size": 2, "alert_contact": "pat@example.org",
                           "alert_consent": "yes"})
    assert ok.status_code == 302
    contact = Contact.objects.get()
    assert (contact.ticket.party_size, contact.channel) == (2, "email")
