"""The newcomer's rough edges, in a real browser (Debian's Chromium through Playwright).

Changes made here with the ORM reach the open pages through the live path:
on PostgreSQL + Redis by the pushed event, with the in-memory layer by the
server's own tick (a few seconds), hence the generous waits.
"""

from __future__ import annotations


import pytest

from queueapp.models import Ticket
from queueapp.services import do_call_next, do_complete, do_join, do_recall, do_transfer
from tests.browser_support import BROWSER_MARKS, database_url_for, serve
from tests.test_browser_pages import (  # noqa: F401 (fixtures)
    Errors,
    browser,
    clinic,
    log_in,
    needs_live,
    wait_socket_open,
)

pytestmark = [
    *BROWSER_MARKS,
]

LIVE_WAIT = 10_000  # ms: a tick and a catch-up, with room for a loaded machine
PER_BROWSER = 2  # the online join limit of this module's server, per browser


@pytest.fixture(scope="module")
def server_url(django_db_setup, django_db_blocker):
    from django.db import connection

    # A tight per-browser limit, a generous per-address one (every page here comes from 127.0.0.1).
    # A day's window: a fixed 10-minute window could restart in the middle of the test.
    with serve(database_url_for(connection.settings_dict), JOIN_RATE_LIMIT=f"{PER_BROWSER}/86400",
               JOIN_ADDRESS_RATE_LIMIT="100000/86400") as url:
        yield url


def test_a_transferred_patient_cancels_from_the_page_they_already_have_open(browser, server_url, clinic):
    ticket = do_join(clinic["queue"])
    context = browser.new_context()
    page = Errors().watch(context.new_page())
    page.goto(f"{server_url}/t/{ticket.token}/")
    assert page.locator("#ticket-status .ticket-number").inner_text() == "A-001"
    new = do_transfer(ticket, to_queue=clinic["lab"])  # staff moved them while the page was open

    page.get_by_text("Cancel my ticket").click()
    page.get_by_role("button", name="Yes, cancel ticket A-001").click()

    page.wait_for_url(f"{server_url}/t/{new.token}/")
    assert "Ticket L-001 is cancelled" in page.locator(".messages").inner_text()
    assert "Cannot cancel" not in page.content()
    assert Ticket.objects.get(pk=new.pk).status == "cancelled"
    # A finished ticket reads as a sentence, with nothing left to cancel or keep open.
    assert "This ticket was cancelled." in page.locator("#ticket-status").inner_text()
    assert page.get_by_text("Cancel my ticket").count() == 0
    assert page.get_by_text("Keep this page open").count() == 0
    context.close()


@needs_live
def test_a_ticket_finished_while_the_page_is_open_loses_cancel_and_keep_open(browser, server_url, clinic):
    ticket = do_join(clinic["queue"])
    context = browser.new_context()
    errors = Errors()
    page = errors.watch(context.new_page())
    page.goto(f"{server_url}/t/{ticket.token}/")
    wait_socket_open(page, f"/ws/ticket/{ticket.token}/")
    assert page.get_by_text("Keep this page open").is_visible()
    assert page.get_by_text("Cancel my ticket").is_visible()

    do_complete(do_call_next(counter=clinic["counter"]))

    page.wait_for_selector("#ticket-status[data-status=completed]", timeout=LIVE_WAIT)
    assert page.locator("#ticket-status .ticket-final").inner_text() == \
        "You have been served. Thank you for your visit."
    assert not page.get_by_text("Keep this page open").is_visible()
    assert not page.get_by_text("Cancel my ticket").is_visible()
    assert errors == []
    context.close()


@needs_live
def test_the_lobby_lists_a_recalled_ticket_once_and_drops_a_call_transferred_away(browser, server_url, clinic):
    queue, counter = clinic["queue"], clinic["counter"]
    do_join(queue)
    do_join(queue)
    context = browser.new_context()
    errors = Errors()
    display = errors.watch(context.new_page())
    display.goto(f"{server_url}/display/riverside/")
    wait_socket_open(display, "/ws/display/riverside/")

    first = do_call_next(counter=counter)
    do_recall(first)
    do_recall(first)
    display.wait_for_selector("#display-board .last-calls li.recalled", timeout=LIVE_WAIT)
    rows = display.locator("#display-board .last-calls li")
    assert rows.locator(".ticket-number").all_inner_texts() == ["A-001"]  # called once, recalled twice
    assert rows.first.locator(".counter-name").inner_text() == "Counter 1"

    do_complete(first)
    second = do_call_next(counter=counter)
    display.wait_for_selector('#display-announce[data-number="A-002"]', timeout=LIVE_WAIT)
    do_transfer(second, to_queue=clinic["lab"])
    display.wait_for_selector('#display-announce[data-key=""]', state="attached", timeout=LIVE_WAIT)
    assert display.locator("#display-announce").inner_text().strip() == ""
    assert errors == []
    context.close()


def test_the_start_page_leads_visitors_to_join_and_staff_to_the_console(browser, server_url, clinic):
    context = browser.new_context()
    errors = Errors()
    page = errors.watch(context.new_page())
    page.goto(f"{server_url}/")
    page.get_by_role("link", name="Riverside Clinic").click()
    page.wait_for_url(f"{server_url}/join/riverside/")
    page.goto(f"{server_url}/")
    page.get_by_role("link", name="Sign in").click()
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "pw-alice")
    page.click("button[type=submit]")
    page.wait_for_url(f"{server_url}/console/")
    page.goto(f"{server_url}/")
    assert page.get_by_role("link", name="Open the console").is_visible()
    assert errors == []
    context.close()


def _join(page, server_url) -> int:
    """Take a ticket online as a patient would; the status the join form's POST got."""
    page.goto(f"{server_url}/join/riverside/")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.locator("button.service").first.click()
    page.wait_for_load_state()
    return answer.value.status


def test_phones_on_one_wifi_each_get_their_own_join_allowance(browser, server_url, clinic):
    phones = [browser.new_context() for _ in range(3)]  # three patients, one address (127.0.0.1)
    pages = [phone.new_page() for phone in phones]
    for page in pages:
        for _ in range(PER_BROWSER):
            assert _join(page, server_url) == 302
            page.wait_for_url("**/t/*/")
    assert Ticket.objects.count() == 3 * PER_BROWSER
    # One phone past its own allowance is refused in words; the others were not affected.
    assert _join(pages[0], server_url) == 429
    assert "Too many tickets from this device" in pages[0].content()
    for phone in phones:
        phone.close()


def test_a_manager_adds_a_queue_at_their_location_in_the_admin(browser, server_url, clinic):
    from queueapp.models import Queue, StaffMembership
    from tests.conftest import make_user

    make_user("maria", clinic["location"], StaffMembership.Role.MANAGER, is_staff=True)
    context = browser.new_context()
    errors = Errors()
    page = errors.watch(context.new_page())
    page.goto(f"{server_url}/admin/login/?next=/admin/queueapp/queue/add/")
    page.fill("input[name=username]", "maria")
    page.fill("input[name=password]", "pw-maria")
    page.click("input[type=submit]")
    page.wait_for_url(f"{server_url}/admin/queueapp/queue/add/")
    # Only the manager's own location is offered.
    assert page.locator("select[name=location] option:not([value=''])").all_inner_texts() == ["Riverside Clinic"]
    page.select_option("select[name=location]", label="Riverside Clinic")
    page.fill("input[name=name]", "Vaccinations")  # the admin fills the slug from the name
    page.fill("input[name=prefix]", "V")
    page.click("input[name=_save]")
    page.wait_for_url(f"{server_url}/admin/queueapp/queue/")
    assert Queue.objects.get(slug="vaccinations").location == clinic["location"]
    assert "Vaccinations" in page.locator("#result_list").inner_text()
    context.close()



def _fetch(page, method: str, path: str, body=None, token: str | None = None) -> dict:
    """A request from the page's own JavaScript, as a developer trying the API would send it."""
    return page.evaluate(
        """async ([method, path, body, token]) => {
            const headers = {"Content-Type": "application/json"};
            if (token) headers["Authorization"] = "Bearer " + token;
            const r = await fetch(path, {method, headers,
                                         body: body === null ? undefined : JSON.stringify(body)});
            const text = await r.text();
            let json = null;
            try { json = JSON.parse(text); } catch (e) {}
            return {status: r.status, type: r.headers.get("content-type"), json, allow: r.headers.get("allow")};
        }""", [method, path, body, token])


def _kiosk_token(clinic) -> str:
    from queueapp.api.auth import issue_token
    from queueapp.models import ApiToken

    return issue_token(location=clinic["location"], kind=ApiToken.Kind.KIOSK, name="Lobby kiosk")[1]


def test_every_api_answer_is_the_documented_json_and_names_the_input(browser, server_url, clinic):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{server_url}/api/docs")
    key = _kiosk_token(clinic)
    queue_id = clinic["queue"].pk

    wrong_method = _fetch(page, "DELETE", "/api/locations", token=key)
    assert wrong_method["status"] == 405 and wrong_method["type"].startswith("application/json")
    assert wrong_method["json"]["code"] == "method_not_allowed" and "GET" in wrong_method["allow"]
    unknown = _fetch(page, "GET", "/api/no-such-thing", token=key)
    assert unknown["status"] == 404 and unknown["type"].startswith("application/json")
    assert set(unknown["json"]) == {"detail", "code", "field"} and unknown["json"]["code"] == "not_found"
    bad_id = _fetch(page, "POST", "/api/queues/0/tickets", body={}, token=key)
    assert bad_id["status"] == 400 and bad_id["json"]["field"] == "queue_id"
    bad_size = _fetch(page, "POST", f"/api/queues/{queue_id}/tickets", body={"party_size": "two"}, token=key)
    assert bad_size["status"] == 400 and bad_size["json"]["field"] == "party_size"
    # What a kiosk may see: its location and its queues; counters are for staff.
    assert [q["name"] for q in _fetch(page, "GET", "/api/queues", token=key)["json"]] == ["General", "Lab"]
    assert [loc["name"] for loc in _fetch(page, "GET", "/api/locations", token=key)["json"]] == ["Riverside Clinic"]
    counters = _fetch(page, "GET", "/api/counters", token=key)
    assert counters["status"] == 403 and counters["json"]["code"] == "forbidden"
    context.close()


def test_a_kiosk_token_cannot_create_an_urgent_ticket(browser, server_url, clinic):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{server_url}/api/docs")
    key = _kiosk_token(clinic)
    path = f"/api/queues/{clinic['queue'].pk}/tickets"

    urgent = _fetch(page, "POST", path, body={"priority": 20}, token=key)
    assert urgent["status"] == 403 and urgent["json"]["field"] == "priority"
    assert "normal-priority tickets only" in urgent["json"]["detail"]
    assert not Ticket.objects.exists()
    assert _fetch(page, "POST", path, body={}, token=key)["status"] == 201
    assert Ticket.objects.get().priority == 0
    context.close()
