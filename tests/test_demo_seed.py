"""`make run`'s demo data: a past week played through the services (here one day,
to keep the suite short: each day is played the same way), a day of bookings,
and all of it consistent and shown by the statistics and the day's bookings."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

from queueapp.integrity import validate_queue_integrity
from queueapp.management.demo_history import bookings_today
from queueapp.models import Booking, BookingStatus, Location, Ticket, TicketStatus

pytestmark = pytest.mark.django_db


def test_the_demo_has_history_and_a_day_of_bookings_and_is_consistent(client):
    call_command("seed_demo", history_days=1)
    location = Location.objects.get(slug="riverside")
    today = location.business_day()
    yesterday_served = Ticket.objects.filter(queue__location=location, status=TicketStatus.COMPLETED,
                                             business_day__lt=today)
    assert yesterday_served.count() > 20
    assert bookings_today(location) > 0
    assert Booking.objects.filter(status=BookingStatus.CHECKED_IN).exists()
    assert validate_queue_integrity() == []
    client.login(username="manager", password="manager-demo")
    stats = client.get(reverse("stats"))
    assert stats.status_code == 200
    assert "No tickets" not in stats.text
    day = client.get(reverse("staff-bookings", args=["riverside"]))
    assert day.status_code == 200 and "No bookings this day" not in day.text
    counts = Ticket.objects.count(), Booking.objects.count()
    call_command("seed_demo", history_days=1)  # again: nothing added
    assert (Ticket.objects.count(), Booking.objects.count()) == counts
