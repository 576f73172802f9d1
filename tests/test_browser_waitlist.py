"""A capacity waitlist in a real browser (Debian's Chromium through Playwright):
a person asks for seats on the public page, watches their place, gets an offer,
accepts it with the big button and reads "Confirmed", while staff watch the
live board change without reloading; then the same with JavaScript off."""

from __future__ import annotations

from datetime import timedelta

import pytest

from queueapp.models import Queue, Ticket
from queueapp.services import do_join
from tests.browser_support import BROWSER_MARKS
from tests.conftest import make_queue, make_user
from tests.test_browser_pages import Errors, browser, log_in, server_url, wait_socket_open  # noqa: F401

pytestmark = [
    *BROWSER_MARKS,
]

LIVE = 8_000  # ms: pushes are instant, but allow a slow shared machine


@pytest.fixture
def train(transactional_db, settings):
    from queueapp.models import Location

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    location = Location.objects.create(name="Central Station", slug="central", timezone="Europe/Paris")
    day = location.business_day() + timedelta(days=2)
    queue = make_queue(location, "Train 101", "T", slug="train-101", kind=Queue.Kind.CAPACITY, capacity=3,
                       offer_seconds=600, service_date=day)
    make_user("alice", location)
    holder = do_join(queue, party_size=3)  # offered all 3 seats
    ahead = do_join(queue, party_size=1)   # waits
    return {"queue": queue, "holder": holder, "ahead": ahead, "day": day}


def _row_button(page, number: str, name: str):
    return page.locator(f'#waitlist-board tr[data-number="{number}"]').get_by_role("button", name=name)


def test_request_offer_accept_confirmed_while_staff_watch_the_live_board(browser, server_url, train):  # noqa: F811
    queue, day = train["queue"], train["day"]
    errors = Errors()
    staff_context, person_context = browser.new_context(), browser.new_context()
    staff = errors.watch(staff_context.new_page())
    log_in(staff, server_url)
    staff.get_by_role("link", name="Train 101").click()  # linked from the console's location page
    staff.wait_for_url(f"{server_url}/waitlist/{queue.pk}/")
    wait_socket_open(staff, f"/ws/waitlist/{queue.pk}/")
    staff.evaluate("window.notReloaded = true")

    person = errors.watch(person_context.new_page())
    person.goto(f"{server_url}/request/central/")
    person.get_by_role("link", name="its own page").click()
    assert f"Train 101, {day.day} {day:%B}" in person.locator("h1").inner_text()
    assert "0 of 3 seats free" in person.locator(".seat-line").inner_text()
    person.fill("#party-size", "2")
    person.get_by_role("button", name="Request seats").click()
    person.wait_for_url(f"{server_url}/t/**")
    mine = Ticket.objects.get(queue=queue, party_size=2)
    status = person.locator("#ticket-status")
    assert "Waiting for 2 seats: 2nd in line, 0 seats free now." in status.inner_text()
    wait_socket_open(person, f"/ws/ticket/{mine.token}/")

    # The board shows the new request live; staff cancel the one ahead from its row.
    staff.wait_for_selector(f'#waitlist-board tr[data-number="{mine.display_number}"]', timeout=LIVE)
    _row_button(staff, train["ahead"].display_number, "Cancel").click()
    staff.wait_for_selector("#waitlist-feedback >> text=Cancelled T-002.", timeout=LIVE)
    person.wait_for_selector("#ticket-status >> text=Waiting for 2 seats: 1st in line", timeout=LIVE)
    # The holder's seats come free: the person is offered them, live.
    _row_button(staff, train["holder"].display_number, "Cancel").click()
    person.wait_for_selector("#ticket-status >> text=Seats offered: accept by", timeout=LIVE)
    accept = person.get_by_role("button", name="Accept")
    box = accept.bounding_box()
    assert box["height"] >= 48 and box["width"] >= 120, box  # a big button, not a 57×21 px default
    accept.click()
    person.wait_for_selector(f"text=Confirmed: 2 seats on Train 101, {day.day} {day:%B}.", timeout=LIVE)

    # Staff saw it happen without reloading.
    staff.wait_for_selector(f'#waitlist-board tr[data-number="{mine.display_number}"] >> text=Cancel',
                            timeout=LIVE)
    staff.wait_for_function(
        "document.querySelector('[data-testid=confirmed-count]').textContent.trim() === '1'", timeout=LIVE)
    assert staff.locator('[data-testid="seats-taken"]').inner_text() == "2"
    assert staff.evaluate("window.notReloaded")
    assert errors == []
    staff_context.close()
    person_context.close()


def test_the_same_without_javascript(browser, server_url, train):  # noqa: F811
    queue, day = train["queue"], train["day"]
    staff_context = browser.new_context(java_script_enabled=False)
    person_context = browser.new_context(java_script_enabled=False)
    person = person_context.new_page()
    person.goto(f"{server_url}/request/central/")
    person.get_by_label("Train 101").check()
    person.fill("#party-size", "2")
    person.get_by_role("button", name="Request seats").click()
    person.wait_for_url(f"{server_url}/t/**")
    assert "Waiting for 2 seats: 2nd in line, 0 seats free now." in person.locator("#ticket-status").inner_text()
    mine = Ticket.objects.get(queue=queue, party_size=2)

    staff = staff_context.new_page()
    log_in(staff, server_url)
    staff.goto(f"{server_url}/waitlist/{queue.pk}/")
    _row_button(staff, train["ahead"].display_number, "Cancel").click()
    assert "Cancelled T-002." in staff.locator(".messages").inner_text()
    _row_button(staff, train["holder"].display_number, "Cancel").click()
    assert "Cancelled T-001: 3 seats free again." in staff.locator(".messages").inner_text()

    person.reload()  # what the page's own refresh does without JavaScript
    assert "Seats offered: accept by" in person.locator("#ticket-status").inner_text()
    person.get_by_role("button", name="Accept").click()
    person.wait_for_url(f"{server_url}/t/{mine.token}/")
    assert (f"Confirmed: 2 seats on Train 101, {day.day} {day:%B}."
            in person.locator("#ticket-status").inner_text())

    staff.reload()
    assert staff.locator('[data-testid="confirmed-count"]').inner_text() == "1"
    assert staff.locator(f'#waitlist-board tr[data-number="{mine.display_number}"]').count() == 1
    staff_context.close()
    person_context.close()
