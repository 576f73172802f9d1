"""A morning at the clinic in a real browser (Debian's Chromium through Playwright):
someone books online and gets a page with a QR code; at the kiosk one person
checks in by that QR code (decoded from the page's pixels, typed in as a
scanner types), another by typing their code, a late one becomes a walk-in;
walk-ins take tickets; staff call everyone and the calls come in the documented
order (priority, then the booked time minus the grace for an on-time booking,
the join time for everyone else).

The server is daphne in a subprocess on the test database, on the real clock;
the test writes the earlier part of the morning (a walk-in 20 minutes ago, a
booking made an hour ago) through the services on a clock set back.
Half-way through, the counter takes a lunch break: the lobby display shows it
live and Call next is refused until it opens again; afterwards a patient
rates the visit from their ticket page.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.utils import timezone

from queueapp.models import Booking, Priority
from queueapp.services import do_book, do_join
from tests.bookings_support import make_schedule
from tests.browser_support import BROWSER_MARKS
from tests.conftest import make_counter, make_queue, make_user
from tests.test_browser_pages import Errors, browser, log_in, server_url  # noqa: F401 (fixtures)

pytestmark = [
    *BROWSER_MARKS,
]


def earlier(monkeypatch, minutes: int):
    """The services' clock in this process, `minutes` ago (the server keeps the real one)."""
    real = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: real - timedelta(minutes=minutes))


def kiosk_check_in(page, server_url: str, code: str) -> str:
    page.goto(f"{server_url}/kiosk/riverside/check-in/")
    page.fill("input[name=code]", code)  # what a scanner or a finger types
    page.get_by_role("button", name="Check in").click()
    page.wait_for_selector(".receipt")
    return page.locator(".ticket-number").inner_text()


def test_a_morning_of_bookings_kiosk_check_ins_walk_ins_and_calls_in_order(browser, server_url, transactional_db,
                                                                          settings, monkeypatch):
    import zxingcpp
    from PIL import Image

    from queueapp.models import Location

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    # A time zone where it is around noon now, so the morning never straddles midnight.
    offset = 12 - timezone.now().hour
    zone = "Etc/GMT" + ("" if offset == 0 else f"{'-' if offset > 0 else '+'}{abs(offset)}")
    location = Location.objects.create(name="Riverside Clinic", slug="riverside", timezone=zone)
    general = make_queue(location, "General", "A")
    counter = make_counter(location, "Counter 1", [general])
    make_user("alice", location)
    schedule = make_schedule(general, per_slot=3, slot_minutes=5, early=15, late=10, grace=10, hours=())
    from datetime import time

    from queueapp.models import OpeningHours
    for weekday in range(7):
        OpeningHours.objects.create(schedule=schedule, weekday=weekday, opens=time(0), closes=time(23, 55))
    now = timezone.now()
    # The next slot starting at least a minute from now: its window is open, its place
    # in line (its time minus 10 minutes of grace) is a few minutes back.
    slot = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    slot += timedelta(minutes=-slot.minute % 5)
    late_slot = slot - timedelta(minutes=30)

    earlier(monkeypatch, 60)
    late = do_book(general, starts_at=late_slot)          # booked an hour ago, for half an hour ago
    earlier(monkeypatch, 20)
    first_walk_in = do_join(general)                      # A-001, before every booking's place
    monkeypatch.undo()
    typed = do_book(general, starts_at=slot)

    context = browser.new_context()
    errors = Errors()
    page = errors.watch(context.new_page())

    # Someone books online and keeps the page with its QR code.
    page.goto(f"{server_url}/book/riverside/?queue={general.pk}")
    page.locator(f"input[name=starts_at][value='{slot.astimezone(location_tz(location)).isoformat()}']").check()
    page.get_by_role("button", name="Book").click()
    page.wait_for_selector("#booking-code")
    online = Booking.objects.exclude(pk__in=[late.pk, typed.pk]).get()
    assert page.url == f"{server_url}/b/{online.token}/"
    png = page.locator("figure.qr svg").screenshot()
    scanned = [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]
    assert scanned == [f"{server_url}/b/{online.token}/"]

    # A walk-in takes a ticket at the kiosk (A-002), after the bookings' place in line.
    page.goto(f"{server_url}/kiosk/riverside/")
    page.get_by_role("button", name="General").click()
    page.wait_for_selector(".receipt")
    walk_in = page.locator(".ticket-number").inner_text()
    assert walk_in == "A-002"

    # Check-ins at the kiosk: by the scanned QR code, by the typed code, and one too late.
    assert kiosk_check_in(page, server_url, scanned[0]) == "A-003"
    assert "Checked in for your" in page.locator("#booking-arrival").inner_text()
    assert kiosk_check_in(page, server_url, typed.code.lower()) == "A-004"
    assert kiosk_check_in(page, server_url, late.code) == "A-005"
    assert "joined the line as a walk-in" in page.locator("#booking-arrival").inner_text()
    page.goto(f"{server_url}/b/{late.token}/")
    assert "joined the line as a walk-in" in page.locator("#booking-status").inner_text()

    urgent = do_join(general, priority=Priority.URGENT)  # triage sends an urgent case: A-006
    assert urgent.number == 6 and first_walk_in.number == 1

    # Staff call the morning: priority first; then the walk-in who came before the
    # bookings' place; the on-time bookings in their check-in order; the later
    # walk-in; the late booking, a walk-in since it checked in.
    staff = errors.watch(context.new_page())
    log_in(staff, server_url)
    assert staff.locator(f"a[href='/console/bookings/riverside/']").count() == 1
    staff.goto(f"{server_url}/console/{counter.pk}/")
    lobby = errors.watch(context.new_page())
    lobby.goto(f"{server_url}/display/riverside/")
    called = []
    for n in range(6):
        if n == 2:  # lunch: the display says so live, and nobody is called meanwhile
            staff.get_by_role("button", name="Break: Lunch").click()
            lobby.wait_for_selector("#display-board tr[data-counter-state='break']")
            assert "On a lunch break" in lobby.locator("#display-board .now-serving").inner_text()
            assert staff.get_by_role("button", name="Call next").is_disabled()
            staff.get_by_role("button", name="Open").click()
            lobby.wait_for_selector("#display-board tr[data-counter-state='open']")
            staff.wait_for_selector("button.call-next:not([disabled])")
        staff.get_by_role("button", name="Call next").click()
        staff.wait_for_selector("#console-actions .big-number")
        called.append(staff.locator("#console-actions .big-number").inner_text())
        staff.get_by_role("button", name="Complete").click()
        staff.wait_for_selector("#console-actions .big-number", state="detached")
    assert called == ["A-006", "A-001", "A-003", "A-004", "A-002", "A-005"]
    from queueapp.models import CounterStateChange, Feedback, Ticket
    assert [c.state for c in CounterStateChange.objects.filter(counter=counter)] == ["break", "open"]

    # The walk-in from the kiosk, served, rates the visit on their ticket page.
    served = Ticket.objects.get(queue=general, number=2)
    patient = errors.watch(context.new_page())
    patient.goto(f"{server_url}/t/{served.token}/")
    patient.get_by_text("Rate your visit").wait_for()
    patient.locator("input[name=rating][value='5']").check()
    patient.fill("textarea[name=comment]", "Quick and kind.")
    patient.get_by_role("button", name="Send").click()
    patient.get_by_text("Thank you for your feedback").wait_for()
    assert patient.locator("input[name=rating]").count() == 0
    assert (Feedback.objects.get().ticket_id, Feedback.objects.get().rating) == (served.pk, 5)

    # The day's bookings, as staff see them.
    staff.goto(f"{server_url}/console/bookings/riverside/")
    rows = staff.locator("table.bookings tbody tr").all_inner_texts()
    assert len(rows) == 3 and all("Checked in" in row for row in rows)
    assert errors == []
    context.close()


def location_tz(location):
    from zoneinfo import ZoneInfo

    return ZoneInfo(location.timezone)
