"""Every page checked by axe-core in a real browser, at phone and desktop size.

axe-core comes pinned from PyPI (`axe-playwright-python` in requirements-dev.txt
bundles axe-core 4.12.1): no network at test time. Besides axe's own rules
(no serious or critical violation allowed), each page must have one `main`
landmark and one h1, and every control a finger presses at least 44 px high
and wide (links inside a sentence are exempt, as WCAG 2.5.5 exempts them).
The ticket page is checked in each state a visitor sees: waiting, called,
offered, confirmed and finished.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from queueapp.models import Queue, StaffMembership
from queueapp.services import do_call_next, do_complete, do_join
from tests.browser_support import BROWSER_MARKS
# The shared daphne and Chromium of the browser tests (module-scoped: one of each per module).
from tests.test_browser_pages import browser, log_in, server_url, wait_socket_open  # noqa: F401
from tests.bookings_support import make_schedule
from tests.conftest import make_counter, make_queue, make_user

pytestmark = [
    *BROWSER_MARKS,
]

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 900}}
MIN_TARGET = 44  # px, WCAG 2.5.5 (AAA) and the platforms' guidelines for touch

# Our own checks beside axe: landmarks, headings, touch targets.
OWN_CHECKS = """
(minTarget) => {
  const problems = [];
  const mains = document.querySelectorAll("main, [role=main]").length;
  if (mains !== 1) problems.push(`${mains} main landmarks at ${location.pathname}: ${document.title}`);
  const h1s = document.querySelectorAll("h1").length;
  if (h1s !== 1) problems.push(`${h1s} h1 headings`);
  const visible = (el) => {
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    return style.visibility !== "hidden" && style.display !== "none" && box.width > 0 && box.height > 0;
  };
  // A link in running text is exempt; a link standing alone (nav, a list of links, a button-like link) is not.
  const inSentence = (el) => {
    if (el.tagName !== "A" || el.classList.contains("btn")) return false;
    const block = el.closest("p, li, td, dd, span.small, small, label");
    return Boolean(block) && block.textContent.trim() !== el.textContent.trim();
  };
  for (const el of document.querySelectorAll("a[href], button, select, input:not([type=hidden]), textarea, summary, [role=button]")) {
    if (!visible(el) || el.closest(".skip") || el.classList.contains("skip") || inSentence(el)) continue;
    let box = el.getBoundingClientRect();
    // A checkbox or radio is pressed through its label.
    if ((el.type === "checkbox" || el.type === "radio") && el.closest("label")) box = el.closest("label").getBoundingClientRect();
    if (box.width < minTarget - 0.5 || box.height < minTarget - 0.5) {
      const label = (el.textContent || el.value || el.name || el.getAttribute("aria-label") || "").trim().slice(0, 40);
      problems.push(`target ${Math.round(box.width)}x${Math.round(box.height)}: <${el.tagName.toLowerCase()}> '${label}'`);
    }
  }
  return problems;
}
"""


@pytest.fixture
def world(transactional_db, settings):
    """A location with something on every page: tickets in each state, a
    waitlist with an offer and a confirmation, a booking, a waiting room."""
    from queueapp.alerts.models import Contact
    from queueapp.models import Location
    from queueapp.services.bookings import do_book
    from queueapp.services.rooms import do_create_waiting_room, do_enter_line
    from queueapp.services.waitlist import do_accept_offer

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    location = Location.objects.create(name="Riverside Clinic", slug="riverside", timezone="Europe/Paris")
    general = make_queue(location, "General", "A")
    train = make_queue(location, "Train 9:40", "T", slug="train-0940", kind=Queue.Kind.CAPACITY, capacity=4,
                       offer_seconds=600)
    counter = make_counter(location, "Counter 1", [general])
    make_user("alice", location, role=StaffMembership.Role.MANAGER)
    schedule = make_schedule(general)
    for weekday in (5, 6):
        schedule.hours.create(weekday=weekday, opens=schedule.hours.first().opens, closes=schedule.hours.first().closes)

    finished = do_join(general)
    do_complete(do_call_next(counter=counter))
    called = do_join(general)
    do_call_next(counter=counter)
    waiting = do_join(general)
    do_join(general)
    offered = do_join(train, party_size=2)  # free seats: offered at once
    confirmed = do_accept_offer(do_join(train))
    do_join(train, party_size=2)  # no room left: waits
    assert [t.status for t in (offered, confirmed)] == ["offered", "confirmed"]
    contact = Contact.objects.create(ticket=waiting, channel="email", address="alice@example.com")
    tomorrow_nine = (timezone.localtime(timezone.now(), timezone=location_zone(location)) + timedelta(days=1)).replace(
        hour=9, minute=0, second=0, microsecond=0)
    booking = do_book(general, starts_at=tomorrow_nine)
    room = do_create_waiting_room(location=location, name="Concert tickets", slug="concert", prefix="W",
                                  target_url="https://shop.example.com/", admit_per_minute=60, max_inside=1)
    do_enter_line(room)  # the one place inside is taken: the page shows a visitor waiting
    public = {
        "start": "/",
        "join": "/join/riverside/",
        "kiosk": "/kiosk/riverside/",
        "kiosk ticket": f"/kiosk/riverside/ticket/{waiting.token}/",
        "kiosk check-in": "/kiosk/riverside/check-in/",
        "ticket waiting": f"/t/{waiting.token}/",
        "ticket called": f"/t/{called.token}/",
        "ticket offered": f"/t/{offered.token}/",
        "ticket confirmed": f"/t/{confirmed.token}/",
        "ticket finished": f"/t/{finished.token}/",
        "book": "/book/riverside/",
        "booking": f"/b/{booking.token}/",
        "requests": "/request/riverside/",
        "request a resource": f"/request/riverside/{train.slug}/",
        "waiting room": f"/wait/{room.slug}/",
        "display": "/display/riverside/",
        "alerts stop": f"/alerts/stop/{contact.stop_token}/",
        "login": "/login/",
        "not found": "/no-such-page/",
    }
    staff = {
        "console home": "/console/",
        "console": f"/console/{counter.pk}/",
        "staff bookings": "/console/bookings/riverside/",
        "waitlist board": f"/waitlist/{train.pk}/",
        "statistics": "/stats/",
    }
    return {"public": public, "staff": staff}


def location_zone(location):
    from zoneinfo import ZoneInfo

    return ZoneInfo(location.timezone)


def check(page, url: str) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    page.goto(url)
    page.wait_for_load_state("networkidle")
    results = Axe().run(page).response
    found = [f"axe {v['impact']}: {v['id']} ({v['help']}) at {', '.join(str(n['target']) for n in v['nodes'][:3])}"
             for v in results["violations"] if v["impact"] in ("serious", "critical")]
    return found + page.evaluate(OWN_CHECKS, MIN_TARGET)


@pytest.mark.parametrize("size", list(SIZES))
def test_every_page_passes_axe_with_one_main_one_h1_and_large_targets(world, browser, server_url, size):
    problems: dict[str, list[str]] = {}
    context = browser.new_context(viewport=SIZES[size])
    page = context.new_page()
    for name, path in world["public"].items():
        found = check(page, server_url + path)
        if found:
            problems[name] = found
    log_in(page, server_url)
    for name, path in world["staff"].items():
        found = check(page, server_url + path)
        if found:
            problems[name] = found
    context.close()
    assert not problems, "\n".join(f"{name}: {found}" for name, found in problems.items() for found in found)


def test_a_screen_reader_hears_the_position_change_and_the_call(transactional_db, settings, browser, server_url):
    """The live regions outlive the swaps: the element marked aria-live is the
    same before and after each push (a region replaced whole is not announced),
    and what it holds afterwards is the new position, then the call."""
    from queueapp.models import Location

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    location = Location.objects.create(name="Hillside Clinic", slug="hillside")
    queue = make_queue(location, "General", "A")
    counter = make_counter(location, "Counter 2", [queue])
    make_user("alice", location)
    do_join(queue)
    mine = do_join(queue)

    context = browser.new_context()
    patient, display, staff = context.new_page(), context.new_page(), context.new_page()
    patient.goto(f"{server_url}/t/{mine.token}/")
    display.goto(f"{server_url}/display/hillside/")
    wait_socket_open(patient, f"/ws/ticket/{mine.token}/")
    wait_socket_open(display, "/ws/display/hillside/")
    mark = "(id) => { document.getElementById(id).closest('[aria-live]').dataset.marked = 'yes'; }"
    patient.evaluate(mark, "ticket-status")
    display.evaluate(mark, "display-announce")
    region = "(id) => { const r = document.getElementById(id).closest('[aria-live]'); return [r.dataset.marked, r.getAttribute('aria-live'), r.textContent.replace(/\\s+/g, ' ').trim()]; }"
    assert patient.evaluate(region, "ticket-status")[2].count("Position 2 in line") == 1

    log_in(staff, server_url)
    staff.goto(f"{server_url}/console/{counter.pk}/")
    staff.get_by_role("button", name="Call next").click()  # mine is next
    patient.wait_for_selector("#ticket-status >> text=next", timeout=10_000)
    marked, politeness, text = patient.evaluate(region, "ticket-status")
    assert (marked, politeness) == ("yes", "polite") and "You are next." in text

    staff.get_by_role("button", name="Complete").click()
    staff.wait_for_selector("#console-actions >> text=A-001 completed.")
    staff.get_by_role("button", name="Call next").click()  # mine is called
    patient.wait_for_selector("#ticket-status[data-status=called]", timeout=10_000)
    marked, politeness, text = patient.evaluate(region, "ticket-status")
    assert (marked, politeness) == ("yes", "polite") and "Please go to Counter 2 now." in text
    display.wait_for_selector('#display-announce[data-number="A-002"]', timeout=10_000)
    marked, politeness, text = display.evaluate(region, "display-announce")
    assert (marked, politeness) == ("yes", "assertive") and text == "A-002 → Counter 2"
    context.close()
