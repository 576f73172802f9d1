"""Appointments in tests: a schedule, and a clock the services read (timezone.now)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from queueapp.models import BookingSchedule, OpeningHours

PARIS = ZoneInfo("Europe/Paris")
# A Monday, far enough ahead that no real slot of the test run is in the past.
MONDAY = datetime(2030, 3, 4, tzinfo=PARIS).date()


def at(hh: int, mm: int = 0, ss: int = 0, *, day=MONDAY) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), PARIS)


def make_schedule(queue, *, per_slot=2, slot_minutes=15, early=15, late=10, grace=5,
                  hours=((time(8), time(12)), (time(13), time(17)))) -> BookingSchedule:
    schedule = BookingSchedule.objects.create(queue=queue, per_slot=per_slot, slot_minutes=slot_minutes,
                                              early_minutes=early, late_minutes=late, grace_minutes=grace)
    for weekday in range(5):
        for opens, closes in hours:
            OpeningHours.objects.create(schedule=schedule, weekday=weekday, opens=opens, closes=closes)
    return schedule


class Clock:
    """What `timezone.now()` answers in the services while the test runs."""

    def __init__(self, now: datetime):
        self.now = now

    def set(self, now: datetime) -> None:
        self.now = now

    def advance(self, **kwargs) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock(at(7))
    monkeypatch.setattr(timezone, "now", lambda: c.now)
    return c
