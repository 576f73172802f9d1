"""The minimal live pages and the fragments' contract with the full pages."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string

from queueapp.live import reads, render
from queueapp.selectors import estimate_wait, position_of
from queueapp.services import do_call_next, do_join

pytestmark = pytest.mark.django_db


def test_ticket_page_renders_the_fragment_and_connects_its_socket(client, queue):
    ticket = do_join(queue)
    do_join(queue)
    page = client.get(f"/live/ticket/{ticket.token}/").content.decode()
    assert f'hx-ws:connect="/ws/ticket/{ticket.token}/"' in page
    assert 'id="ticket-status"' in page and 'data-status="waiting"' in page
    assert "hx-ws-4" in page and "A-001" in page


def test_unknown_ticket_page_is_404(client, db):
    assert client.get("/live/ticket/nope-nope-nope-nope/").status_code == 404


def test_display_page_shows_the_board(client, location, queue, counter):
    do_join(queue)
    page = client.get(f"/live/display/{location.slug}/").content.decode()
    assert f'hx-ws:connect="/ws/display/{location.slug}/"' in page
    assert 'id="display-board"' in page and 'id="display-announce"' in page


def test_console_page_needs_staff_of_the_location(client, counter, staff, other_staff):
    url = f"/live/console/{counter.pk}/"
    assert client.get(url)["Location"].startswith("/login/")  # anonymous: log in first
    client.force_login(other_staff)
    refused = client.get(url)
    assert refused.status_code == 403 and "not staff at this location" in refused.text
    client.force_login(staff)
    page = client.get(url).content.decode()
    assert f'hx-ws:connect="/ws/console/{counter.pk}/"' in page and 'id="console-feed"' in page


def test_ticket_fragment_renders_a_real_ticket_as_the_pages_include_it(queue, counter):
    ticket = do_join(queue)
    do_join(queue)
    position = position_of(ticket)
    html = render_to_string("queueapp/live/ticket_status.html", {
        "ticket": ticket, "position": position, "estimated_wait": estimate_wait(queue, position)})
    assert 'data-status="waiting"' in html and "You are <strong>next</strong>" in html
    called = do_call_next(counter=counter)
    html = render_to_string("queueapp/live/ticket_status.html",
                            {"ticket": called, "position": None, "estimated_wait": None})
    assert 'data-counter="Counter 1"' in html and 'data-call-count="1"' in html


def test_patient_fragments_are_shared_between_tickets_at_the_same_place(queue):
    first = do_join(queue)
    second = do_join(queue)
    view = reads.ticket_view(second.token)
    assert "A-002" in render.ticket_status(view)
    view_of_first = reads.ticket_view(first.token)
    view_of_first.position = 2  # as if it stood where the second one stands
    html = render.ticket_status(view_of_first)
    assert "A-001" in html and "A-002" not in html
    assert html.replace("A-001", "A-002") == render.ticket_status(view)


def test_a_waiting_place_fragment_is_the_template_rendered_for_that_place(queue):
    """The live screens fill a counter queue's place, count ahead and wait into one
    render per queue (`render._slotted_status`): the result is exactly the
    template's own render for that place, wait and number, at every place."""
    from dataclasses import replace

    view = reads.ticket_view(do_join(queue).token)
    for service_seconds in (0.0, 45.0, 400.0, 5000.0):
        for position in range(1, 130):
            at = replace(view, position=position, service_seconds=service_seconds, open_counters=2,
                         display_number=f"A-{position:03d}")
            assert render.ticket_status(at) == render_to_string(
                "queueapp/live/ticket_status.html", render.ticket_context(at)), (position, service_seconds)
