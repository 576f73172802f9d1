"""The four screens in a real browser (Debian's Chromium through Playwright).

The app runs in daphne in a subprocess on the test database; every change the
tests look for goes through that server (a staff click), so what the patient
page and the lobby display show came over their WebSockets, not a reload.
"""

from __future__ import annotations

import io
import os
import time

import pytest

from queueapp.models import Ticket
from queueapp.services import do_join
from tests.browser_support import BROWSER_MARKS, database_url_for, launch, serve
from tests.conftest import make_counter, make_queue, make_user

pytestmark = [
    *BROWSER_MARKS,
]

LIVE_WITHIN = 1.0  # seconds from the staff click to the patient page and the display showing it


def live_path_present() -> bool:
    try:
        import queueapp.live.consumers  # noqa: F401
    except ImportError:
        return False
    return True


needs_live = pytest.mark.skipif(not live_path_present(),
                                reason="the live path (queueapp.live.consumers, issue 3) is not merged yet")


@pytest.fixture(scope="module")
def server_url(django_db_setup, django_db_blocker):
    from django.db import connection

    with serve(database_url_for(connection.settings_dict)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop under the test; Django would then
    # refuse ORM calls made by the test itself. Only for this module.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = launch(playwright)
            yield chromium
            chromium.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def clinic(transactional_db, settings):
    from queueapp.models import Location

    # The server checks passwords with the production hashers, not the tests' fast one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]

    location = Location.objects.create(name="Riverside Clinic", slug="riverside", timezone="Europe/Paris")
    queue = make_queue(location, "General", "A")
    lab = make_queue(location, "Lab", "L")
    counter = make_counter(location, "Counter 1", [queue])
    make_user("alice", location)
    return {"location": location, "queue": queue, "lab": lab, "counter": counter}


class Errors(list):
    """Console errors and uncaught exceptions of the pages it watches."""

    def watch(self, page):
        page.on("console", lambda msg: msg.type == "error" and self.append(f"{page.url}: {msg.text}"))
        page.on("pageerror", lambda exc: self.append(f"{page.url}: {exc}"))
        return page


def log_in(page, server_url, username="alice"):
    page.goto(f"{server_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"pw-{username}")
    page.click("button[type=submit]")
    page.wait_for_url(f"{server_url}/console/")


def wait_socket_open(page, path: str) -> None:
    page.wait_for_function(
        """(path) => { const c = window.htmx?.ext?.ws?.getRegistry().get(path);
                       return Boolean(c && c.socket && c.socket.readyState === 1); }""",
        arg=path, timeout=10_000)


def remaining(started: float) -> float:
    """Milliseconds left of the live budget (at least 1 ms, so a late wait fails rather than hangs)."""
    return max(1.0, (LIVE_WITHIN - (time.monotonic() - started)) * 1000)


@needs_live
def test_call_next_reaches_the_patient_and_the_display_within_a_second(browser, server_url, clinic):
    queue, counter = clinic["queue"], clinic["counter"]
    first = do_join(queue)
    second = do_join(queue)
    errors = Errors()

    staff_context, public_context = browser.new_context(), browser.new_context()
    staff = errors.watch(staff_context.new_page())
    patient = errors.watch(public_context.new_page())
    display = errors.watch(public_context.new_page())
    log_in(staff, server_url)
    staff.goto(f"{server_url}/console/{counter.pk}/")
    patient.goto(f"{server_url}/t/{second.token}/")
    display.goto(f"{server_url}/display/riverside/")
    wait_socket_open(staff, f"/ws/console/{counter.pk}/")
    wait_socket_open(patient, f"/ws/ticket/{second.token}/")
    wait_socket_open(display, "/ws/display/riverside/")
    assert patient.locator(".position-number").inner_text() == "2"
    patient.evaluate("window.notReloaded = true")
    display.evaluate("window.notReloaded = true")

    started = time.monotonic()
    staff.get_by_role("button", name="Call next").click()
    patient.wait_for_selector("#ticket-status[data-status=waiting] >> text=next", timeout=remaining(started))
    display.wait_for_selector('#display-announce[data-number="A-001"][data-counter="Counter 1"]',
                              timeout=remaining(started))
    # The banner comes with the call's own event, the board with the read that follows it.
    display.wait_for_selector("#display-board .now-serving td.ticket-number >> text=A-001",
                              timeout=remaining(started))
    assert time.monotonic() - started <= LIVE_WITHIN
    assert patient.evaluate("window.notReloaded") and display.evaluate("window.notReloaded")
    # The staff page swapped its panel in place and its feed no longer lists A-001.
    staff.wait_for_selector("#console-actions >> text=Calling A-001 to Counter 1.")
    staff.wait_for_function("""![...document.querySelectorAll('#console-feed tr[data-ticket]')]
                                .some((row) => row.textContent.includes('A-001'))""")

    # Finish A-001, call the patient: a loud "go to Counter 1", announced on the display.
    staff.get_by_role("button", name="Complete").click()
    staff.wait_for_selector("#console-actions >> text=A-001 completed.")
    started = time.monotonic()
    staff.get_by_role("button", name="Call next").click()
    patient.wait_for_selector('#ticket-status[data-status=called][data-counter="Counter 1"]',
                              timeout=remaining(started))
    display.wait_for_selector('#display-announce[data-number="A-002"]', timeout=remaining(started))
    assert time.monotonic() - started <= LIVE_WITHIN
    assert "Please go to" in patient.locator("#ticket-status").inner_text()
    assert patient.evaluate("document.body.classList.contains('is-called')")
    assert patient.title().startswith("Go to Counter 1")

    # A recall is a new announcement; each call is queued once, in order.
    staff.get_by_role("button", name="Recall").click()
    display.wait_for_function("window.queueDisplay.queued.length === 3", timeout=5_000)
    keys = display.evaluate("window.queueDisplay.queued")
    # Versions: 1-2 joins, 3 call A-001, 4 complete, 5 call A-002, 6 recall A-002.
    assert keys == [f"{queue.pk}.3", f"{queue.pk}.5", f"{queue.pk}.6"]
    assert display.locator("#display-announce").get_attribute("data-kind") == "recalled"
    assert Ticket.objects.get(pk=first.pk).status == "completed"
    assert errors == []
    staff_context.close()
    public_context.close()


def test_kiosk_ticket_qr_code_decodes_to_the_patient_page(browser, server_url, clinic):
    import zxingcpp
    from PIL import Image

    errors = Errors()
    context = browser.new_context()
    kiosk = errors.watch(context.new_page())
    kiosk.goto(f"{server_url}/kiosk/riverside/")
    kiosk.get_by_role("button", name="General").click()
    kiosk.wait_for_selector(".receipt")
    assert kiosk.locator(".ticket-number").inner_text() == "A-001"
    ticket = Ticket.objects.get()
    png = kiosk.locator(".qr svg").screenshot()
    decoded = [result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]
    assert decoded == [f"{server_url}/t/{ticket.token}/"]
    assert errors == []
    # The printed ticket fits an 80 mm receipt: the print stylesheet hides the buttons.
    kiosk.emulate_media(media="print")
    assert not kiosk.locator(".kiosk-actions").is_visible()
    assert kiosk.locator(".receipt").bounding_box()["width"] <= 80 / 25.4 * 96
    context.close()


def test_join_and_console_work_without_javascript(browser, server_url, clinic):
    counter = clinic["counter"]
    context = browser.new_context(java_script_enabled=False)
    patient = context.new_page()
    patient.goto(f"{server_url}/join/riverside/")
    patient.get_by_role("button", name="General").click()
    patient.wait_for_url(f"{server_url}/t/**")
    assert patient.locator(".ticket-number").inner_text() == "A-001"
    # The patient changes their mind: a plain form, and the page says so.
    patient.locator("summary").click()
    patient.get_by_role("button", name="Yes, cancel ticket A-001").click()
    assert "A-001 is cancelled" in patient.locator(".messages").inner_text()
    do_join(clinic["queue"])
    do_join(clinic["queue"])

    staff = context.new_page()
    log_in(staff, server_url)
    staff.goto(f"{server_url}/console/{counter.pk}/")
    staff.get_by_role("button", name="Call next").click()
    assert "Calling A-002 to Counter 1." in staff.locator(".messages").inner_text()
    staff.get_by_role("button", name="Call next").click()
    assert "still has A-002" in staff.locator(".messages").inner_text()
    staff.get_by_role("button", name="Start").click()
    assert "Serving A-002." in staff.locator(".messages").inner_text()
    staff.get_by_role("button", name="Complete").click()
    # Call one particular ticket from the no-script form, then move it to the lab.
    staff.select_option("select#call-one", label="A-003 (Normal)")
    staff.locator("form.call-specific").get_by_role("button", name="Call").click()
    assert "Calling A-003 to Counter 1." in staff.locator(".messages").inner_text()
    staff.select_option("select#transfer-queue", label="Lab")
    staff.get_by_role("button", name="Transfer").click()
    assert "A-003 moved to Lab as L-001." in staff.locator(".messages").inner_text()
    context.close()


def test_console_actions_swap_in_place_with_errors_in_words_and_keys(browser, server_url, clinic):
    counter = clinic["counter"]
    do_join(clinic["queue"])
    do_join(clinic["queue"])
    context = browser.new_context()
    staff = context.new_page()
    log_in(staff, server_url)
    staff.goto(f"{server_url}/console/{counter.pk}/")
    staff.evaluate("window.notReloaded = true")
    staff.keyboard.press("n")
    staff.wait_for_selector("#console-actions >> text=Calling A-001 to Counter 1.")
    staff.keyboard.press("n")
    staff.wait_for_selector("#console-actions .error >> text=Counter 1 still has A-001")
    staff.keyboard.press("s")
    staff.wait_for_selector("#console-actions >> text=Serving A-001.")
    staff.keyboard.press("c")
    staff.wait_for_selector("#console-actions >> text=A-001 completed.")
    # The Call button console.js puts on a waiting row.
    staff.locator("#console-feed tr[data-ticket] button.call-one").first.click()
    staff.wait_for_selector("#console-actions >> text=Calling A-002 to Counter 1.")
    assert staff.evaluate("window.notReloaded")
    context.close()
