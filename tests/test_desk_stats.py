"""Statistics per counter and per staff member (`stats.desk_stats`) agree with a
plain Python computation over the same rows; the page and its CSV show them."""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from datetime import date

import pytest
from django.urls import reverse

from queueapp.models import Feedback, QueueEvent, Ticket
from queueapp.stats import desk_stats
from tests.conftest import make_user
from tests.sample_day import generate_day

pytestmark = pytest.mark.django_db

DAY = date(2026, 3, 10)


@pytest.fixture
def day(location):
    people = [make_user("alice", location), make_user("zoe", location, first_name="Zoe", last_name="Adams")]
    generate_day(location, DAY, tickets=600, staff=people)
    rng = random.Random(3)
    completed = list(Ticket.objects.filter(queue__location=location, status="completed"))
    Feedback.objects.bulk_create([Feedback(ticket=t, rating=rng.randint(1, 5), comment="")
                                  for t in rng.sample(completed, len(completed) // 3)])
    return location


def reference(location):
    """The definitions, the obvious way: each completed ticket, its completion
    event's counter and person, its service time and its rating."""
    out = defaultdict(lambda: {"served": 0, "service": 0.0, "ratings": 0, "rating_sum": 0})
    for event in QueueEvent.objects.filter(queue__location=location, kind="completed").select_related(
            "ticket", "counter", "actor"):
        t = event.ticket
        service = (t.finished_at - (t.serving_at or t.called_at)).total_seconds()
        rating = Feedback.objects.filter(ticket=t).values_list("rating", flat=True).first()
        person = event.actor.get_full_name() or event.actor.username
        for key in (("counter", event.counter.name), ("staff", person)):
            out[key]["served"] += 1
            out[key]["service"] += service
            if rating:
                out[key]["ratings"] += 1
                out[key]["rating_sum"] += rating
    return out


def test_per_counter_and_staff_figures_match_a_plain_python_computation(day, django_assert_max_num_queries):
    with django_assert_max_num_queries(7):  # aggregates and the state history: not per ticket
        rows = desk_stats(day, DAY, DAY)
    want = reference(day)
    got = {(r.kind, r.name): r for r in rows}
    assert set(got) == set(want) == {("counter", "Desk 1"), ("counter", "Desk 2"), ("counter", "Desk 3"),
                                     ("staff", "alice"), ("staff", "Zoe Adams")}
    for key, expected in want.items():
        row = got[key]
        assert row.served == expected["served"] > 0, key
        assert row.service_avg == pytest.approx(expected["service"] / expected["served"], rel=1e-6), key
        assert row.ratings == expected["ratings"] > 0, key
        assert row.rating_avg == pytest.approx(expected["rating_sum"] / expected["ratings"]), key
    assert sum(r.served for r in rows if r.kind == "counter") == Ticket.objects.filter(status="completed").count()


def test_other_days_and_an_idle_counter(day):
    from tests.conftest import make_counter

    make_counter(day, "Desk 9", [])
    rows = desk_stats(day, date(2026, 3, 11), date(2026, 3, 12))
    assert [(r.kind, r.name, r.served, r.service_avg, r.rating_avg) for r in rows] == [
        ("counter", f"Desk {i}", 0, None, None) for i in (1, 2, 3, 9)]


@pytest.fixture(autouse=True)
def plain_static_files(settings):
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


def test_the_page_and_csv_show_counters_and_staff(client, day):
    from queueapp.models import StaffMembership

    boss = make_user("bob", day, StaffMembership.Role.MANAGER)
    client.force_login(boss)
    query = {"location": day.pk, "start": DAY.isoformat(), "end": DAY.isoformat()}
    page = client.get(reverse("stats"), query).content.decode()
    assert 'id="desk-table"' in page and "Zoe Adams" in page and "Desk 3" in page
    response = client.get(reverse("stats"), {**query, "format": "csv", "by": "desk"})
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    want = {(r.kind, r.name): r for r in desk_stats(day, DAY, DAY)}
    assert {(r["kind"], r["name"]) for r in rows} == set(want)
    for r in rows:
        row = want[(r["kind"], r["name"])]
        assert int(r["served"]) == row.served and int(r["ratings"]) == row.ratings
        assert float(r["rating_avg"]) == pytest.approx(row.rating_avg, abs=1e-3)


def test_time_open_on_break_and_idle_from_the_counters_history(location, queue, counter, monkeypatch):
    """A scripted day: closed at midnight, opened at 08:00 by alice, a lunch break
    10:00-10:30 (alice), reopened by bob, closed at 17:00 by bob; one ticket
    served 08:11-08:21 (from *Start*)."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    from queueapp.services import do_call_next, do_complete, do_join, do_set_counter_state, do_start_serving

    alice, bob = make_user("alice", location), make_user("bob", location)
    midnight = datetime(2026, 3, 10, tzinfo=ZoneInfo(location.timezone))

    def at(hours: float):
        moment = midnight + timedelta(hours=hours)
        monkeypatch.setattr(timezone, "now", lambda: moment)

    at(0)
    do_set_counter_state(counter, state="closed", acting_user=bob)
    at(8)
    do_set_counter_state(counter, state="open", acting_user=alice)
    at(8 + 5 / 60)
    ticket = do_join(queue)
    at(8 + 10 / 60)
    do_call_next(counter=counter, acting_user=alice)
    at(8 + 11 / 60)
    do_start_serving(ticket, acting_user=alice)
    at(8 + 21 / 60)
    do_complete(ticket, acting_user=alice)
    at(10)
    do_set_counter_state(counter, state="break", reason="lunch", acting_user=alice)
    at(10.5)
    do_set_counter_state(counter, state="open", acting_user=bob)
    at(17)
    do_set_counter_state(counter, state="closed", acting_user=bob)
    monkeypatch.undo()

    rows = {(r.kind, r.name): r for r in desk_stats(location, DAY, DAY)}
    desk = rows[("counter", "Counter 1")]
    hour = 3600
    assert (desk.open_seconds, desk.break_seconds) == (8.5 * hour, 0.5 * hour)
    assert desk.idle_seconds == pytest.approx(8.5 * hour - 10 * 60)
    assert desk.served == 1 and desk.service_avg == pytest.approx(600)
    # Each person's time is that of the states they set.
    assert (rows[("staff", "alice")].open_seconds, rows[("staff", "alice")].break_seconds) == (2 * hour, 0.5 * hour)
    assert (rows[("staff", "bob")].open_seconds, rows[("staff", "bob")].break_seconds) == (6.5 * hour, 0)
    assert rows[("staff", "alice")].served == 1 and rows[("staff", "bob")].served == 0
    # Only the part of the history inside the range counts; the next day starts closed.
    next_day = {(r.kind, r.name): r for r in desk_stats(location, date(2026, 3, 11), date(2026, 3, 11),
                                                         now=midnight + timedelta(days=1, hours=12))}
    assert next_day[("counter", "Counter 1")].open_seconds == 0
    assert next_day[("counter", "Counter 1")].break_seconds == 0
