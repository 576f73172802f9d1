"""Statistics computed in the database agree with a plain Python computation
over a generated day of 5,000 tickets; the page and its CSV."""

import statistics
from collections import defaultdict
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from queueapp.stats import queue_stats
from tests.sample_day import generate_day

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

DAY = date(2026, 3, 10)
FIELDS = ["issued", "served", "no_shows", "cancellations", "wait_avg", "wait_median", "wait_p90",
          "service_avg", "service_median", "service_p90", "throughput_per_hour", "requests",
          "confirmed", "confirm_avg", "confirm_median", "offers", "offers_expired",
          "served_targeted", "served_within_target"]
TARGETS = {"general": 15}  # minutes; Lab has no service target


def seconds(a, b):
    return (a - b).total_seconds()


def p(values, fraction):
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    if fraction == 0.5:
        return statistics.median(values)
    return statistics.quantiles(values, n=10, method="inclusive")[8]


def avg(values):
    return sum(values) / len(values) if values else None


def reference(records, tz, by):
    """The definitions of queueapp.stats, written the obvious way."""
    local = (lambda t: DAY) if by == "day" else (lambda t: t.astimezone(tz).hour)
    groups = defaultdict(lambda: defaultdict(list))
    for r in records:
        for key in ((r.queue,), (None,)):
            arrival = groups[key + (local(r.created),)]
            arrival["issued"].append(r)
            if r.called:
                arrival["waits"].append(seconds(r.called, r.created))
            if r.capacity:
                arrival["requests"].append(r)
            if r.confirmed:
                arrival["confirms"].append(seconds(r.confirmed, r.created))
            if r.finished or by == "day":
                ending = groups[key + (local(r.finished or r.created),)]
                ending["ended"].append(r)
            for kind, at in r.events:
                if kind in ("offered", "expired") and at.astimezone(tz).date() == DAY:
                    groups[key + ((DAY if by == "day" else at.astimezone(tz).hour),)][kind].append(at)
    out = {}
    for (queue, bucket), g in groups.items():
        ended = g["ended"]
        served = [r for r in ended if r.status == "completed"]
        service = [seconds(r.finished, r.serving or r.called) for r in served]
        targeted = [r for r in served if r.queue in TARGETS]
        if not served:
            throughput = None
        elif by == "hour":
            throughput = len(served) / 1
        else:
            first = min(r.called for r in ended if r.called)
            throughput = len(served) / (seconds(max(r.finished for r in served), first) / 3600)
        out[(queue, bucket)] = {
            "issued": len(g["issued"]), "served": len(served),
            "no_shows": sum(r.status == "no_show" for r in ended),
            "cancellations": sum(r.status == "cancelled" for r in ended),
            "wait_avg": avg(g["waits"]), "wait_median": p(g["waits"], 0.5), "wait_p90": p(g["waits"], 0.9),
            "service_avg": avg(service), "service_median": p(service, 0.5), "service_p90": p(service, 0.9),
            "throughput_per_hour": throughput, "requests": len(g["requests"]),
            "confirmed": len(g["confirms"]), "confirm_avg": avg(g["confirms"]),
            "confirm_median": p(g["confirms"], 0.5),
            "offers": len(g["offered"]), "offers_expired": len(g["expired"]),
            "served_targeted": len(targeted),
            "served_within_target": sum(seconds(r.called, r.created) <= TARGETS[r.queue] * 60 for r in targeted),
        }
    return out


@pytest.fixture(scope="module")
def records_and_location(django_db_setup, django_db_blocker):
    """One generated day shared by the module (5,000 tickets, ~17,000 events)."""
    from queueapp.models import Location, Queue

    with django_db_blocker.unblock():
        from django.db import transaction

        with transaction.atomic():
            location = Location.objects.create(name="Generated", slug="generated", timezone="Europe/Paris")
            records = generate_day(location, DAY, tickets=5000)
            for slug, minutes in TARGETS.items():
                Queue.objects.filter(location=location, slug=slug).update(target_wait_minutes=minutes)
            yield records, location
            transaction.set_rollback(True)


@pytest.mark.parametrize("by", ["day", "hour"])
def test_statistics_match_a_plain_python_computation_on_5000_tickets(records_and_location, by):
    records, location = records_and_location
    with CaptureQueriesContext(connection) as ctx:
        rows = queue_stats(start=DAY, end=DAY, by=by)
    assert len(ctx) <= 12  # aggregates: the count does not depend on the tickets
    expected = reference(records, ZoneInfo(location.timezone), by)
    got = {(r.queue.slug if r.queue else None, r.bucket): r.figures for r in rows}
    assert set(got) == set(expected)
    for key, want in expected.items():
        for name in FIELDS:
            value = getattr(got[key], name)
            if want[name] is None:
                assert value is None, (key, name)
            else:
                assert value == pytest.approx(want[name], rel=1e-6, abs=1e-3), (key, name)


def test_day_totals_read_as_a_manager_expects(records_and_location):
    records, _ = records_and_location
    total = next(r for r in queue_stats(start=DAY, end=DAY) if r.queue is None).figures
    assert total.issued == 5000
    assert total.served + total.no_shows + total.cancellations + sum(
        r.status in ("waiting", "confirmed", "expired") for r in records) == 5000
    assert 0 < total.no_show_rate < 0.2
    assert 0.5 < total.confirmation_rate < 1
    assert 0.1 < total.offer_expiry_rate < 0.5
    assert total.wait_median < total.wait_p90
    assert 0.5 < total.within_target_rate < 1  # of General's served, the only queue with a target


def test_an_empty_range_has_no_rows(records_and_location):
    assert queue_stats(start=date(2026, 3, 11), end=date(2026, 3, 12)) == []


# --- The page ---------------------------------------------------------------

@pytest.fixture(autouse=True)
def plain_static_files(settings):
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


def stats_url():
    from django.urls import reverse

    return reverse("stats")


def test_manager_sees_charts_and_the_table(client, manager, location, queue, counter):
    from queueapp.services import do_call_next, do_complete, do_join

    for _ in range(3):
        do_join(queue)
    do_complete(do_call_next(counter=counter, acting_user=manager), acting_user=manager)
    client.force_login(manager)
    page = client.get(stats_url())
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("<svg") == 3 and 'class="bar"' in html
    assert "Riverside Clinic" in html and "All queues" in html and "General" in html


def test_staff_who_is_not_a_manager_is_refused(client, staff):
    client.force_login(staff)
    response = client.get(stats_url())
    assert response.status_code == 403 and "Only a manager" in response.content.decode()


def test_anonymous_is_sent_to_log_in(client, settings):
    settings.LOGIN_URL = "/admin/login/"
    response = client.get(stats_url())
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("params, message", [
    ({"start": "2026-03-10", "end": "2026-03-01"}, "must be on or before"),
    ({"start": "not-a-date"}, "From: Enter a valid date"),
    ({"start": "2020-01-01", "end": "2026-01-01"}, "at most 366 days"),
])
def test_bad_ranges_answer_400_with_a_message(client, manager, params, message):
    client.force_login(manager)
    response = client.get(stats_url(), params)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_a_manager_cannot_read_another_locations_statistics(client, manager, other_location):
    client.force_login(manager)
    response = client.get(stats_url(), {"location": other_location.pk})
    assert response.status_code == 400 and "Location:" in response.content.decode()


def test_csv_has_the_same_figures_as_the_page(client, manager, location, queue, counter):
    import csv
    import io

    from queueapp.services import do_call_next, do_join, do_no_show

    do_join(queue)
    do_join(queue)
    do_no_show(do_call_next(counter=counter))  # requeued (recall limit 2), not final
    client.force_login(manager)
    response = client.get(stats_url(), {"format": "csv", "by": "day"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["queue"], r["issued"]) for r in rows] == [("", "2"), ("general", "2")]
    assert float(rows[0]["wait_avg"]) >= 0 and rows[0]["served"] == "0"


def test_location_totals_alone_are_the_same_totals(records_and_location):
    both = [r for r in queue_stats(start=DAY, end=DAY, by="hour") if r.queue is None]
    alone = queue_stats(start=DAY, end=DAY, by="hour", per_queue=False)
    assert [(r.bucket, r.figures) for r in alone] == [(r.bucket, r.figures) for r in both]


def test_the_generated_day_is_itself_consistent(records_and_location):
    from queueapp.integrity import validate_queue_integrity

    assert validate_queue_integrity() == []
