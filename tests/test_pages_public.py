"""Kiosk, online join, the patient page and the lobby display (no login)."""

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from queueapp.models import STATUS_SENTENCES, Ticket, TicketStatus
from queueapp.ratelimit import BROWSER_COOKIE
from queueapp.services import do_call_next, do_complete, do_join, do_pause, do_recall, do_transfer
from tests.conftest import make_queue
from tests.pages_helpers import generous_rate_limits  # noqa: F401

pytestmark = pytest.mark.django_db


def test_kiosk_lists_services_and_issues_a_printable_ticket_with_a_qr_code(client, location, queue, counter):
    do_join(queue)
    page = client.get(reverse("kiosk", args=[location.slug])).text
    assert "General" in page and "1 waiting" in page
    response = client.post(reverse("kiosk", args=[location.slug]), {"queue": queue.pk})
    ticket = Ticket.objects.get(number=2)
    assert response.status_code == 302
    assert response["Location"] == reverse("kiosk-ticket", args=[location.slug, ticket.token])
    page = client.get(response["Location"]).text
    assert "A-002" in page and "<svg" in page and "print.css" in page
    assert f"http://testserver/t/{ticket.token}/" in page
    assert "about 8 min" in page  # one ahead and half of the one at the counter, 300 s each, one counter


def test_kiosk_ticket_of_another_location_is_not_found(client, location, other_location, queue):
    ticket = do_join(queue)
    assert client.get(reverse("kiosk-ticket", args=[other_location.slug, ticket.token])).status_code == 404


def test_join_online_takes_you_to_your_live_page(client, location, queue):
    response = client.post(reverse("join", args=[location.slug]), {"queue": queue.pk})
    ticket = Ticket.objects.get()
    assert response["Location"] == reverse("ticket", args=[ticket.token])


def test_join_refuses_a_paused_queue_kindly(client, location, queue):
    do_pause(queue)
    page = client.get(reverse("join", args=[location.slug])).text
    assert "Not taking tickets right now" in page
    response = client.post(reverse("join", args=[location.slug]), {"queue": queue.pk})
    assert response.status_code == 409
    assert "General is not taking new tickets right now (paused)." in response.text
    assert not Ticket.objects.exists()


def test_join_refuses_a_full_queue_kindly(client, location):
    small = make_queue(location, "Small", "S", max_waiting=1)
    do_join(small)
    assert "Full for now" in client.get(reverse("join", args=[location.slug])).text
    response = client.post(reverse("join", args=[location.slug]), {"queue": small.pk})
    assert response.status_code == 409 and "Small is full (1 waiting)" in response.text


def test_join_names_the_field_on_bad_input(client, location, other_location):
    foreign = make_queue(other_location, "Elsewhere", "E")
    for data in ({}, {"queue": "x"}, {"queue": foreign.pk}):
        response = client.post(reverse("join", args=[location.slug]), data)
        assert response.status_code == 400
        assert "Choose" in response.text
    assert not Ticket.objects.exists()


def test_unknown_location_is_404(client, db):
    for name in ("kiosk", "join", "display"):
        assert client.get(reverse(name, args=["nowhere"])).status_code == 404


def _address() -> dict:
    """A client address of this test alone (the cache, Redis, may outlive a test)."""
    return {"REMOTE_ADDR": f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"}


def test_online_joins_are_limited_per_browser(client, settings, location, queue):
    settings.TICKET_RATE_LIMITS = {"join": (2, 600), "join_address": (100, 600), "kiosk": (100, 60)}
    me = _address()
    url = reverse("join", args=[location.slug])
    for _ in range(2):
        assert client.post(url, {"queue": queue.pk}, **me).status_code == 302
    response = client.post(url, {"queue": queue.pk}, **me)
    assert response.status_code == 429
    assert "Too many tickets from this device: at most 2 in 10 minutes." in response.text
    assert 0 < int(response["Retry-After"]) <= 600
    assert Ticket.objects.count() == 2
    # The kiosk has its own allowance.
    assert client.post(reverse("kiosk", args=[location.slug]), {"queue": queue.pk}, **me).status_code == 302


def test_a_waiting_room_on_one_wifi_address_is_not_refused(settings, location, queue):
    settings.TICKET_RATE_LIMITS = {"join": (2, 600), "join_address": (100, 600), "kiosk": (100, 60)}
    shared_wifi = _address()
    url = reverse("join", args=[location.slug])
    phones = [Client() for _ in range(12)]  # each its own browser (cookie jar)
    for phone in phones:
        assert phone.post(url, {"queue": queue.pk}, **shared_wifi).status_code == 302
        assert phone.cookies[BROWSER_COOKIE].value  # signed browser id
    assert Ticket.objects.count() == 12


def test_dropping_the_cookie_meets_the_per_address_cap(settings, location, queue):
    settings.TICKET_RATE_LIMITS = {"join": (2, 600), "join_address": (5, 600), "kiosk": (100, 60)}
    me = _address()
    url = reverse("join", args=[location.slug])
    for _ in range(5):
        assert Client().post(url, {"queue": queue.pk}, **me).status_code == 302
    response = Client().post(url, {"queue": queue.pk}, **me)
    assert response.status_code == 429
    assert "Too many tickets from this network: at most 5 in 10 minutes." in response.text
    # A forged browser cookie is no browser id: it is counted at the address too.
    forged = Client()
    forged.cookies[BROWSER_COOKIE] = "someone-else:forged"
    assert forged.post(url, {"queue": queue.pk}, **me).status_code == 429
    assert Ticket.objects.count() == 5


def test_patient_page_shows_number_position_and_wait_and_connects_live(client, queue, counter):
    do_join(queue)
    ticket = do_join(queue)
    page = client.get(reverse("ticket", args=[ticket.token])).text
    assert 'id="ticket-status"' in page and 'data-status="waiting"' in page
    assert "A-002" in page and 'class="position-number">2<' in page and "about 8 min" in page
    assert f'hx-ws:connect="/ws/ticket/{ticket.token}/"' in page
    assert "Cancel my ticket" in page


def test_patient_page_says_where_to_go_when_called(client, queue, counter):
    ticket = do_join(queue)
    do_call_next(counter=counter)
    page = client.get(reverse("ticket", args=[ticket.token])).text
    assert 'data-status="called"' in page and 'data-counter="Counter 1"' in page
    assert "Please go to" in page and 'class="counter-name">Counter 1<' in page


def test_patient_can_cancel_their_ticket(client, queue):
    ticket = do_join(queue)
    response = client.post(reverse("ticket-cancel", args=[ticket.token]))
    assert response.status_code == 302
    page = client.get(response["Location"]).text
    assert "A-001 is cancelled" in page and "Cancel my ticket" not in page
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CANCELLED
    # Twice is refused in words, not with an error page.
    page = client.get(client.post(reverse("ticket-cancel", args=[ticket.token]))["Location"]).text
    assert "Cannot cancel A-001: it is cancelled." in page


def test_patient_page_follows_a_transferred_ticket(client, location, queue):
    lab = make_queue(location, "Lab", "L")
    ticket = do_join(queue)
    new = do_transfer(ticket, to_queue=lab)
    response = client.get(reverse("ticket", args=[ticket.token]))
    assert response.status_code == 302 and response["Location"] == reverse("ticket", args=[new.token])


def test_a_transferred_patient_cancels_from_the_page_they_have_open(client, location, queue):
    lab = make_queue(location, "Lab", "L")
    ticket = do_join(queue)
    new = do_transfer(ticket, to_queue=lab)
    # The form on the page opened before the transfer posts to the old token.
    response = client.post(reverse("ticket-cancel", args=[ticket.token]))
    assert response.status_code == 302 and response["Location"] == reverse("ticket", args=[new.token])
    new.refresh_from_db()
    assert new.status == TicketStatus.CANCELLED
    page = client.get(response["Location"]).text
    assert "L-001 is cancelled" in page and "Cannot cancel" not in page


@pytest.mark.parametrize("status", sorted(set(TicketStatus) - {TicketStatus.WAITING, TicketStatus.CALLED,
                                                                TicketStatus.SERVING, TicketStatus.OFFERED}))
def test_each_ended_status_reads_as_a_sentence_without_cancel_or_keep_open(client, queue, status):
    ticket = do_join(queue)
    Ticket.objects.filter(pk=ticket.pk).update(status=status)  # only the page's words are under test
    page = client.get(reverse("ticket", args=[ticket.token])).text
    assert str(STATUS_SENTENCES[status]) in page
    assert "This ticket is" not in page
    if status == TicketStatus.CONFIRMED:  # a confirmed place can still be given back
        assert "Cancel my ticket" in page
    else:
        assert "Cancel my ticket" not in page and "Keep this page open" not in page


def test_every_status_has_a_sentence(db):
    assert set(STATUS_SENTENCES) == set(TicketStatus)
    assert all(sentence.endswith(".") for sentence in STATUS_SENTENCES.values())


def test_unknown_ticket_token_is_404(client, db):
    unknown = "A" * 22  # shaped like a token, held by no ticket
    assert client.get(reverse("ticket", args=[unknown])).status_code == 404
    assert client.post(reverse("ticket-cancel", args=[unknown])).status_code == 404
    assert client.get("/t/not-a-token/").status_code == 404


def test_display_shows_now_serving_last_calls_and_counts_but_no_notes(client, location, queue, counter):
    for _ in range(3):
        do_join(queue, note="Mrs Jane Example, room 12")
    called = do_call_next(counter=counter)
    do_recall(called)
    page = client.get(reverse("display", args=[location.slug])).text
    assert f'lang="{location.default_language}"' in page
    assert f'hx-ws:connect="/ws/display/{location.slug}/"' in page
    assert 'id="display-board"' in page and 'id="display-announce"' in page
    assert 'data-number="A-001"' in page and 'data-counter="Counter 1"' in page and 'data-kind="recalled"' in page
    assert "<strong>2</strong>" in page  # two still waiting in General
    assert "Jane" not in page


def test_display_first_paint_lists_each_call_once_and_no_banner_for_a_transferred_ticket(
        client, location, queue, counter):
    lab = make_queue(location, "Lab", "L")
    do_join(queue)
    do_join(queue)
    first = do_call_next(counter=counter)
    do_recall(first)
    do_recall(first)
    page = client.get(reverse("display", args=[location.slug])).text
    assert page.count('<span class="ticket-number">A-001</span>') == 2  # the banner and one row
    assert 'class="recalled"' in page
    do_complete(first)
    do_transfer(do_call_next(counter=counter), to_queue=lab)
    page = client.get(reverse("display", args=[location.slug])).text
    assert 'data-key=""' in page and 'data-number="A-002"' not in page


def test_behind_a_proxy_the_client_is_the_address_the_proxy_saw(client, settings, location, queue):
    settings.TICKET_RATE_LIMITS = {"join": (100, 600), "join_address": (1, 600), "kiosk": (100, 60)}
    settings.RATE_LIMIT_CLIENT_HEADER = "HTTP_X_FORWARDED_FOR"
    url = reverse("join", args=[location.slug])
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    base = uuid.uuid4().int % 200
    first, second = f"198.51.100.{base + 1}", f"198.51.100.{base + 2}"
    assert client.post(url, {"queue": queue.pk}, HTTP_X_FORWARDED_FOR=f"6.6.6.6, {first}", **proxy).status_code == 302
    # A client cannot dodge the limit by sending its own X-Forwarded-For: the proxy's hop is last.
    assert client.post(url, {"queue": queue.pk}, HTTP_X_FORWARDED_FOR=f"7.7.7.7, {first}", **proxy).status_code == 429
    assert client.post(url, {"queue": queue.pk}, HTTP_X_FORWARDED_FOR=second, **proxy).status_code == 302
