"""A location's manager publishes a queue's bookable slots in the admin, only for
their own queues; bookings are read-only there, with check-in and cancel actions."""

import pytest
from django.urls import reverse

from queueapp.models import BookingSchedule, BookingStatus, StaffMembership
from queueapp.services import do_book
from tests.bookings_support import at, clock, make_schedule  # noqa: F401 (fixture)
from tests.conftest import make_queue, make_user

pytestmark = pytest.mark.django_db


def _inline(prefix: str, rows: list[dict]) -> dict:
    data = {f"{prefix}-TOTAL_FORMS": str(len(rows)), f"{prefix}-INITIAL_FORMS": "0",
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{k}": v for k, v in row.items()})
    return data


def test_a_manager_publishes_hours_and_closed_days_for_their_queue_only(client, location, other_location, queue):
    theirs = make_queue(other_location, "Elsewhere", "E")
    dora = make_user("dora", location, StaffMembership.Role.MANAGER, is_staff=True)
    client.force_login(dora)
    form = client.get(reverse("admin:queueapp_bookingschedule_add"))
    assert form.status_code == 200
    assert [q.pk for q in form.context["adminform"].form.fields["queue"].queryset] == [queue.pk]
    data = {"queue": queue.pk, "is_open": "on", "slot_minutes": 20, "per_slot": 3, "days_ahead": 14,
            "early_minutes": 15, "late_minutes": 10, "grace_minutes": 5, "self_check_in": "on",
            **_inline("hours", [{"weekday": 0, "opens": "09:00", "closes": "12:00"}]),
            **_inline("closed_days", [{"day": "2030-12-25", "reason": "Christmas"}])}
    assert client.post(reverse("admin:queueapp_bookingschedule_add"), data).status_code == 302
    schedule = BookingSchedule.objects.get(queue=queue)
    assert (schedule.slot_minutes, schedule.per_slot) == (20, 3)
    assert schedule.hours.get().weekday == 0 and schedule.closed_days.get().reason == "Christmas"
    refused = client.post(reverse("admin:queueapp_bookingschedule_add"),
                          {**data, "queue": theirs.pk})
    assert refused.status_code == 200 and not BookingSchedule.objects.filter(queue=theirs).exists()


def test_staff_check_in_and_cancel_bookings_from_the_admin_list(client, location, queue, clock):
    make_schedule(queue)
    first, second = do_book(queue, starts_at=at(9)), do_book(queue, starts_at=at(9))
    admin = make_user("root", is_superuser=True, is_staff=True)
    StaffMembership.objects.create(user=admin, location=location)
    client.force_login(admin)
    listing = client.get(reverse("admin:queueapp_booking_changelist"))
    assert listing.status_code == 200 and "ana@" not in listing.text
    clock.set(at(8, 50))
    url = reverse("admin:queueapp_booking_changelist")
    client.post(url, {"action": "check_in", "_selected_action": [first.pk]})
    client.post(url, {"action": "cancel", "_selected_action": [second.pk]})
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == BookingStatus.CHECKED_IN and first.checked_in_by == "staff"
    assert second.status == BookingStatus.CANCELLED
