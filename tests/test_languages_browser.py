"""A visitor picks Arabic on the kiosk (issue 15), in Debian's Chromium against daphne.

Their ticket page, its live updates (over the real WebSocket) and an error are
in Arabic and mirrored: `dir="rtl"`, and the language picker's buttons, laid
out left to right on an English page, are measured right to left.
"""

from __future__ import annotations


import pytest

from queueapp.models import Ticket
from queueapp.services import do_call_next, do_complete, do_join, do_pause
from tests.browser_support import BROWSER_MARKS
from tests.test_browser_pages import Errors, browser, clinic, needs_live, server_url, wait_socket_open  # noqa: F401

pytestmark = [
    *BROWSER_MARKS,
]

LIVE_WAIT = 15_000  # ms: a tick and a catch-up with the in-memory layer, on a loaded machine


def _picker_xs(page) -> list[float]:
    """The left edge of each language choice, in the page's order (English first)."""
    return [box["x"] for box in (c.bounding_box() for c in page.locator(".languages .lang-choice").all())]


def _direction(page) -> tuple[str, str]:
    return page.locator("html").get_attribute("lang"), page.locator("html").get_attribute("dir")


@needs_live
def test_a_visitor_who_picks_arabic_gets_an_arabic_mirrored_ticket_live_and_errors(browser, server_url, clinic):
    location, queue, counter = clinic["location"], clinic["queue"], clinic["counter"]
    location.languages = ["en", "ar"]
    location.save()
    do_join(queue)  # someone is ahead: the visitor's place moves while they watch
    context = browser.new_context(locale="en-GB", extra_http_headers={"Accept-Language": "en-GB,en;q=0.9"})
    errors = Errors()
    page = errors.watch(context.new_page())

    # The kiosk first speaks the browser's language, left to right.
    page.goto(f"{server_url}/kiosk/riverside/")
    assert _direction(page) == ("en", "ltr")
    english, arabic = _picker_xs(page)
    assert english < arabic

    # The visitor picks Arabic: the page turns right to left, the picker mirrored.
    page.locator(".languages a[lang=ar]").click()
    page.wait_for_url(f"{server_url}/kiosk/riverside/?lang=ar")
    assert _direction(page) == ("ar", "rtl")
    assert "المس الخدمة التي تحتاجها لتأخذ تذكرة." in page.locator("main").inner_text()
    english, arabic = _picker_xs(page)
    assert english > arabic  # the first choice now sits on the right

    page.get_by_role("button", name="General").click()
    page.wait_for_selector(".receipt")
    ticket = Ticket.objects.order_by("pk").last()
    assert ticket.language == "ar"
    assert page.locator(".receipt .label").inner_text() == "رقمك"

    # Their phone opens the ticket page: Arabic and mirrored whatever the phone's language.
    page.goto(f"{server_url}/t/{ticket.token}/")
    assert _direction(page) == ("ar", "rtl")
    status = page.locator("#ticket-status .ticket-position")
    assert "ترتيبك" in status.inner_text() and "2" in status.inner_text()
    english, arabic = _picker_xs(page)
    assert english > arabic
    place = page.locator("#ticket-status .ticket-number").bounding_box()
    assert place["width"] > 0
    wait_socket_open(page, f"/ws/ticket/{ticket.token}/")

    # Live updates over the WebSocket arrive in Arabic.
    ahead = do_call_next(counter=counter)  # the one ahead is called: they are next
    page.wait_for_function("() => document.querySelector('#ticket-status').innerText.includes('أنت التالي')",
                           timeout=LIVE_WAIT)
    do_complete(ahead)
    do_call_next(counter=counter)  # their turn
    page.wait_for_selector("#ticket-status[data-status=called]", timeout=LIVE_WAIT)
    assert "يرجى التوجه الآن إلى" in page.locator("#ticket-status .ticket-call").inner_text()
    assert _direction(page) == ("ar", "rtl")

    assert errors == []

    # An error, in Arabic: the service is paused when they try to take another ticket.
    do_pause(queue)
    page.goto(f"{server_url}/kiosk/riverside/?lang=ar")
    # aria-disabled says "not now" to assistive technology; a touch still sends the form.
    page.get_by_role("button", name="General").click(force=True)
    error = page.locator(".big-error")
    error.wait_for()
    assert error.inner_text() == "لا يقبل General تذاكر جديدة الآن (متوقف مؤقتًا)."
    assert _direction(page) == ("ar", "rtl")
    assert len(errors) == 1 and "409 (Conflict)" in errors[0]  # the refusal's status, nothing else
    context.close()
