"""The staff console: every action as an htmx request and as a plain form."""

import pytest
from django.urls import reverse

from queueapp.models import Ticket, TicketStatus
from queueapp.services import do_call_next, do_join, do_pause
from tests.conftest import make_counter, make_queue
from tests.pages_helpers import generous_rate_limits  # noqa: F401

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def act(client, counter, htmx=True, **data):
    return client.post(reverse("console-act", args=[counter.pk]), data, **(HTMX if htmx else {}))


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def test_console_needs_a_login(client, counter):
    response = client.get(reverse("console", args=[counter.pk]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_staff_of_another_location_is_refused_in_words(client, other_staff, counter):
    client.force_login(other_staff)
    response = client.get(reverse("console", args=[counter.pk]))
    assert response.status_code == 403
    assert "not staff at this location" in response.text
    assert act(client, counter, action="call_next").status_code == 403


def test_counter_picker_lists_the_counters_of_my_locations(staff_client, counter, other_location):
    make_counter(other_location, "Elsewhere")
    page = staff_client.get(reverse("console-home")).text
    assert "Counter 1" in page and "Elsewhere" not in page


def test_console_shows_waiting_tickets_with_a_call_button_each(staff_client, queue, counter):
    do_join(queue)
    do_join(queue, priority=20)
    page = staff_client.get(reverse("console", args=[counter.pk])).text
    assert "A-001" in page and "A-002" in page and "Urgent" in page
    assert page.count("<tr data-ticket=") == 2  # console.js adds a Call button to each
    assert page.count("<option value=") == 2  # and without JavaScript, a form to call any of them
    assert f'hx-ws:connect="/ws/console/{counter.pk}/"' in page


def test_call_next_with_htmx_swaps_the_panel_and_the_waiting_list(staff_client, queue, counter):
    do_join(queue)
    do_join(queue)
    response = act(staff_client, counter, action="call_next")
    assert response.status_code == 200
    assert "Calling A-001 to Counter 1." in response.text
    assert response.text.lstrip().startswith('<section id="console-actions"')
    assert '<hx-partial hx-target="#console-feed"' in response.text
    assert "<html" not in response.text
    assert Ticket.objects.get(number=1).status == TicketStatus.CALLED


def test_call_next_on_a_busy_counter_says_why_inline(staff_client, queue, counter):
    do_join(queue)
    do_join(queue)
    act(staff_client, counter, action="call_next")
    response = act(staff_client, counter, action="call_next")
    assert response.status_code == 409
    assert "Counter 1 still has A-001 (called)" in response.text


def test_call_next_with_nobody_waiting_says_so(staff_client, counter):
    response = act(staff_client, counter, action="call_next")
    assert response.status_code == 200 and "Nobody is waiting." in response.text


def test_plain_form_posts_redirect_back_with_the_outcome(staff_client, queue, counter):
    do_join(queue)
    response = act(staff_client, counter, htmx=False, action="call_next")
    assert response.status_code == 302 and response["Location"] == reverse("console", args=[counter.pk])
    page = staff_client.get(response["Location"]).text
    assert "Calling A-001 to Counter 1." in page
    response = act(staff_client, counter, htmx=False, action="call_next")
    page = staff_client.get(response["Location"]).text
    assert "still has A-001" in page


def test_calling_a_ticket_a_colleague_just_called_is_refused_in_words(staff_client, location, queue, counter):
    ticket = do_join(queue)
    do_call_next(counter=make_counter(location, "Counter 2", [queue]))
    response = act(staff_client, counter, action="call", ticket=ticket.pk)
    assert response.status_code == 409
    assert "A-001 is called, not waiting; it may just have been called by a colleague." in response.text


def test_a_whole_visit_recall_start_complete(staff_client, queue, counter):
    ticket = do_join(queue)
    act(staff_client, counter, action="call", ticket=ticket.pk)
    assert "A-001 called again." in act(staff_client, counter, action="recall", ticket=ticket.pk).text
    assert "Serving A-001." in act(staff_client, counter, action="start", ticket=ticket.pk).text
    assert "A-001 completed." in act(staff_client, counter, action="complete", ticket=ticket.pk).text
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.COMPLETED and ticket.call_count == 2


def test_no_show_puts_the_ticket_back_in_line(staff_client, queue, counter):
    ticket = do_join(queue)
    act(staff_client, counter, action="call_next")
    response = act(staff_client, counter, action="no_show", ticket=ticket.pk)
    assert "back in line (1 no-show so far)" in response.text
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.WAITING


def test_transfer_moves_the_ticket_to_the_chosen_queue(staff_client, location, queue, counter):
    lab = make_queue(location, "Lab", "L")
    ticket = do_join(queue)
    act(staff_client, counter, action="call_next")
    response = act(staff_client, counter, action="transfer", ticket=ticket.pk, queue=lab.pk)
    assert "A-001 moved to Lab as L-001." in response.text
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.TRANSFERRED and ticket.transferred_to.queue == lab


def test_acting_on_a_ticket_no_longer_at_this_counter_is_refused(staff_client, queue, counter):
    ticket = do_join(queue)
    response = act(staff_client, counter, action="complete", ticket=ticket.pk)
    assert response.status_code == 409
    assert "A-001 is no longer at Counter 1 (it is waiting)" in response.text


def test_tickets_of_another_location_are_refused(staff_client, other_location, counter):
    foreign = do_join(make_queue(other_location, "Pharmacy", "P"))
    response = act(staff_client, counter, action="call", ticket=foreign.pk)
    assert response.status_code == 403
    foreign.refresh_from_db()
    assert foreign.status == TicketStatus.WAITING


def test_bad_input_names_the_field(staff_client, counter):
    response = act(staff_client, counter, action="transfer")
    assert response.status_code == 400
    assert "This action needs a ticket." in response.text
    response = act(staff_client, counter, action="explode")
    assert response.status_code == 400 and "explode is not an action of the console." in response.text


def test_only_managers_pause_and_resume(client, staff, manager, queue, counter):
    client.force_login(staff)
    page = client.get(reverse("console", args=[counter.pk])).text
    assert 'value="pause"' not in page
    response = act(client, counter, action="pause", queue=queue.pk)
    assert response.status_code == 403 and "Only a manager" in response.text
    client.force_login(manager)
    assert 'value="pause"' in client.get(reverse("console", args=[counter.pk])).text
    assert "General is paused" in act(client, counter, action="pause", queue=queue.pk).text
    queue.refresh_from_db()
    assert queue.is_paused
    response = act(client, counter, action="call_next")
    assert response.status_code == 409 and "paused" in response.text
    assert "General is taking tickets again." in act(client, counter, action="resume", queue=queue.pk).text


def test_console_get_of_unknown_counter_is_404(staff_client):
    assert staff_client.get(reverse("console", args=[999])).status_code == 404


def test_login_and_logout(client, staff):
    page = client.get(reverse("login")).text
    assert 'name="username"' in page
    response = client.post(reverse("login"), {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 302 and response["Location"] == reverse("console-home")
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("console-home")).status_code == 302


def test_paused_queue_badge_shows_in_the_feed(staff_client, queue, counter):
    do_pause(queue)
    assert "<em>(paused)</em>" in staff_client.get(reverse("console", args=[counter.pk])).text
