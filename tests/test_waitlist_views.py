"""The staff waitlist page and the patient's accept/decline, as plain forms and with htmx."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from queueapp.models import Queue, QueueEvent, Ticket, TicketStatus
from queueapp.services import do_join
from tests.conftest import make_queue

pytestmark = pytest.mark.django_db

S = TicketStatus
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def train(location):
    return make_queue(location, "Train 101", "T", kind=Queue.Kind.CAPACITY, capacity=2)


@pytest.fixture
def offers(location):
    return make_queue(location, "Tables", "R", kind=Queue.Kind.CAPACITY, capacity=2, offer_seconds=900)


def test_staff_see_seats_and_the_waiting_line(client, staff, train):
    do_join(train, party_size=2)
    do_join(train)
    client.force_login(staff)
    page = client.get(f"/waitlist/{train.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="seats-taken">2<' in html and "T-002" in html
    assert "Set capacity" not in html          # managers only


def test_anonymous_go_to_login_and_other_locations_are_refused(client, other_staff, train):
    with override_settings(LOGIN_URL="/login/"):
        assert client.get(f"/waitlist/{train.pk}/").url.startswith("/login/?next=")
    client.force_login(other_staff)
    refused = client.post(f"/waitlist/{train.pk}/confirm")
    assert refused.status_code == 403
    assert "not staff at this location" in refused.content.decode()


def test_a_counter_queue_has_no_waitlist_page(client, staff, queue):
    client.force_login(staff)
    assert client.get(f"/waitlist/{queue.pk}/").status_code == 404


def test_confirm_as_a_plain_form_redirects_and_as_htmx_answers_with_the_board(client, staff, location):
    room = make_queue(location, "Room", "W", kind=Queue.Kind.CAPACITY, capacity=5, batch_size=2)
    tickets = [do_join(room) for _ in range(3)]
    client.force_login(staff)
    plain = client.post(f"/waitlist/{room.pk}/confirm")
    assert plain.status_code == 302 and plain.url == f"/waitlist/{room.pk}/"
    assert "Confirmed W-001, W-002 (2 seats)." in client.get(plain.url).content.decode()
    swapped = client.post(f"/waitlist/{room.pk}/confirm", **HTMX)
    html = swapped.content.decode()
    assert swapped.status_code == 200 and html.lstrip().startswith('<p class="notice" role="status">')
    board = html.split('<hx-partial hx-target="#waitlist-board" hx-swap="outerHTML">', 1)[1]
    assert board.lstrip().startswith('<section id="waitlist-board"')
    assert "Confirmed W-003 (1 seat)." in html and "<html" not in html
    assert [Ticket.objects.get(pk=t.pk).status for t in tickets] == [S.CONFIRMED] * 3
    assert QueueEvent.objects.filter(queue=room, kind="confirmed", actor=staff).count() == 3


def test_manager_sets_capacity_and_a_too_small_one_is_refused_in_words(client, manager, train):
    do_join(train, party_size=2)
    waiting = do_join(train)
    client.force_login(manager)
    refused = client.post(f"/waitlist/{train.pk}/capacity", {"capacity": "1"}, **HTMX)
    assert refused.status_code == 400
    assert "capacity cannot go below 2" in refused.content.decode()
    bad = client.post(f"/waitlist/{train.pk}/capacity", {"capacity": "lots"})
    assert bad.status_code == 400 and "whole number of seats" in bad.content.decode()
    done = client.post(f"/waitlist/{train.pk}/capacity", {"capacity": "3"})
    assert done.status_code == 302
    assert Ticket.objects.get(pk=waiting.pk).status == S.CONFIRMED


def test_page_warns_of_a_request_larger_than_the_whole_capacity(client, manager, train):
    do_join(train, party_size=2)
    client.force_login(manager)
    client.post(f"/waitlist/{train.pk}/capacity", {"capacity": "3"})
    do_join(train, party_size=3)                   # fits the capacity, waits for seats
    assert client.post(f"/waitlist/{train.pk}/capacity", {"capacity": "2"}).status_code == 302
    html = client.get(f"/waitlist/{train.pk}/").content.decode()
    assert "T-002 asks for 3 seats, more than the whole capacity (2): it blocks everyone behind it" in html


def test_staff_may_not_set_capacity(client, staff, train):
    client.force_login(staff)
    assert client.post(f"/waitlist/{train.pk}/capacity", {"capacity": "9"}).status_code == 403


def test_patient_accepts_an_offer_on_the_ticket_page(client, offers):
    offer = do_join(offers)
    plain = client.post(f"/t/{offer.token}/accept")
    assert plain.status_code == 302 and plain.url == f"/t/{offer.token}/"
    assert Ticket.objects.get(pk=offer.pk).status == S.CONFIRMED


def test_patient_declines_with_htmx_and_sees_the_answer_in_place(client, offers):
    offer = do_join(offers, party_size=2)
    nxt = do_join(offers)
    answer = client.post(f"/t/{offer.token}/decline", **HTMX)
    html = answer.content.decode()
    assert answer.status_code == 200 and 'id="offer-actions"' in html
    assert "You declined the offer" in html and "Accept</button>" not in html
    assert Ticket.objects.get(pk=nxt.pk).status == S.OFFERED


def test_a_late_acceptance_is_refused_with_a_clear_message(client, offers):
    offer = do_join(offers)
    Ticket.objects.filter(pk=offer.pk).update(offer_expires_at=timezone.now() - timedelta(seconds=1))
    answer = client.post(f"/t/{offer.token}/accept")
    assert answer.status_code == 409
    assert "expired at" in answer.content.decode() and "next request in line" in answer.content.decode()
    assert Ticket.objects.get(pk=offer.pk).status == S.EXPIRED
    assert client.post("/t/no-such-token/accept").status_code == 404
    assert client.get(f"/t/{offer.token}/accept").status_code == 405


def test_offer_fragment_shows_the_expiry_and_both_forms(rf, offers):
    from django.template.loader import render_to_string

    offer = do_join(offers)
    html = render_to_string("queueapp/live/offer_actions.html", {"ticket": offer})
    assert f'action="/t/{offer.token}/accept"' in html and f'action="/t/{offer.token}/decline"' in html
    assert f'hx-post="/t/{offer.token}/accept"' in html
    assert 'data-expires="' in html and "1 seat is held for you" in html
