"""The ticket page's opt-in in a real browser (Debian's Chromium through Playwright).

Web push: a click registers the service worker and asks the browser's push
service for a subscription. Headless Chromium without network reaches no push
service, so the subscription itself is refused by the browser here; the test
checks everything up to that point (service worker registered for /t/, the
refusal shown to the person, no JavaScript error) and, should the browser
manage to subscribe, that the server stored it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from queueapp.alerts.models import Contact
from queueapp.alerts.push import generate_keys
from tests.alerts_support import take_ticket
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, database_url_for, launch, serve
from tests.conftest import make_queue

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)"),
]

PRIVATE, PUBLIC = generate_keys()


@pytest.fixture(scope="module")
def server_url(django_db_setup, django_db_blocker):
    from django.db import connection

    with serve(database_url_for(connection.settings_dict), VAPID_PRIVATE_KEY=PRIVATE,
               VAPID_PUBLIC_KEY=PUBLIC) as url:
        yield url


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            yield playwright
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture(scope="module")
def browser(playwright):
    chromium = launch(playwright)
    yield chromium
    chromium.close()


@pytest.fixture
def ticket(transactional_db):
    from queueapp.models import Location

    location = Location.objects.create(name="Riverside Clinic", slug="riverside", timezone="Europe/Paris")
    return take_ticket(make_queue(location, "General", "A"))


def watch(page, errors: list):
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


def test_ticket_page_push_opt_in_registers_the_worker_without_errors(server_url, playwright, ticket, tmp_path):
    # A profile on disk: Chromium refuses the Push API outright in incognito contexts.
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    context.grant_permissions(["notifications"], origin=server_url)
    errors: list[str] = []
    page = watch(context.new_page(), errors)
    page.goto(f"{server_url}/t/{ticket.token}/")
    button = page.locator("#push-optin")
    button.wait_for(state="visible")
    button.click()
    page.wait_for_function("() => { const s = document.getElementById('push-status').textContent;"
                           " return s && !s.startsWith('Asking'); }", timeout=20_000)
    status = page.locator("#push-status").text_content()
    scope = page.evaluate("async () => (await navigator.serviceWorker.getRegistration('/t/'))?.scope")
    assert scope == f"{server_url}/t/"
    if status == "Notifications are on for this browser.":
        contact = Contact.objects.get(ticket=ticket, channel="push")
        assert contact.address.startswith("https://") and set(contact.keys) == {"p256dh", "auth"}
    else:  # no push service reachable from here: the person is told, nothing breaks
        assert status.startswith("Could not turn on notifications:"), status
        assert not button.is_disabled()
    # The browser's own refusal of the subscription is not a page error; nothing else may be.
    assert [e for e in errors if "push service" not in e.lower() and "registration failed" not in e.lower()] == []
    context.close()


def test_ticket_page_sms_opt_in_form(server_url, browser, ticket):
    context = browser.new_context()
    errors: list[str] = []
    page = watch(context.new_page(), errors)
    page.goto(f"{server_url}/t/{ticket.token}/")
    page.check("input[name=channel][value=sms]")
    page.fill("input[name=address]", "06 12 34 56 78")
    page.click("text=Turn on alerts")
    assert "Tick the box" in page.locator("#alerts-error").text_content()  # refused: no consent
    page.fill("input[name=address]", "06 12 34 56 78")
    page.check("input[name=consent]")
    page.click("text=Turn on alerts")
    page.wait_for_selector("#alerts-on")
    assert page.locator("#alerts-on").text_content() == "Alerts on: SMS to …678."
    assert Contact.objects.get(ticket=ticket).address == "+33612345678"
    # The refused POST (400, as it should) is logged by the browser; nothing else may be.
    assert [e for e in errors if "status of 400 (Bad Request)" not in e] == []
    context.close()
