"""Retention: old ended tickets go, their statistics and the audit trail's integrity stay."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from queueapp.integrity import validate_queue_integrity
from queueapp.models import DailySummary, Purge, PurgedRange, Queue, QueueEvent, Ticket, TicketStatus
from queueapp.services import do_call_next, do_complete, do_join, do_transfer
from queueapp.services.retention import do_purge_location, purge_due_locations
from queueapp.stats import queue_stats
from tests.conftest import make_counter, make_queue
from tests.sample_day import generate_day

pytestmark = pytest.mark.django_db

OLD_DAY = date(2026, 3, 10)
NOW = datetime(2026, 4, 20, 12, 0, tzinfo=ZoneInfo("Europe/Paris"))  # 41 days later


@pytest.fixture(autouse=True)
def archive_dir(settings, tmp_path):
    settings.RETENTION_ARCHIVE_DIR = tmp_path
    return tmp_path


def _figures(location, day):
    return {(r.queue.slug if r.queue else None): r.figures
            for r in queue_stats(start=day, end=day, locations=type(location).objects.filter(pk=location.pk))}


def test_a_purged_day_keeps_its_statistics_and_the_queues_stay_consistent(location, archive_dir):
    generate_day(location, OLD_DAY, tickets=400)
    before = _figures(location, OLD_DAY)
    events_before = QueueEvent.objects.filter(queue__location=location).count()
    ended = Ticket.objects.filter(queue__location=location, status__in=[
        s for s in TicketStatus if s in ("completed", "no_show", "cancelled", "transferred", "declined",
                                         "expired")]).count()
    assert before and validate_queue_integrity() == []
    location.retention_days = 30
    location.save()

    purge = do_purge_location(location, by="test", now=NOW)

    assert purge is not None and purge.tickets_deleted == ended > 0
    kept = Ticket.objects.filter(queue__location=location)
    assert not kept.filter(status__in=["completed", "no_show", "cancelled", "expired"]).exists()
    assert kept.count() == 400 - ended  # still waiting or confirmed: not ended, not deleted
    # The statistics of that day read the same from the summary as they did from the tickets.
    assert _figures(location, OLD_DAY) == before
    assert DailySummary.objects.filter(location=location, day=OLD_DAY, queue=None).exists()
    # The integrity report knows a purge from a gap.
    assert validate_queue_integrity() == []
    # The archive holds exactly the deleted events, and its digest is on the record.
    data = (archive_dir / purge.archive).read_bytes()
    assert hashlib.sha256(data).hexdigest() == purge.archive_sha256
    rows = list(csv.DictReader(data.decode().splitlines()))
    assert len(rows) == purge.events_deleted == events_before - QueueEvent.objects.filter(
        queue__location=location).count()
    assert not any(t.token in data.decode() for t in kept)  # numbers, never tokens
    ranges = PurgedRange.objects.filter(purge=purge)
    assert sum(r.last_version - r.first_version + 1 for r in ranges) == purge.events_deleted
    # Nothing left to do the second time.
    assert do_purge_location(location, by="test", now=NOW) is None


def test_a_real_gap_is_still_reported_after_a_purge(location):
    generate_day(location, OLD_DAY, tickets=60)
    location.retention_days = 30
    location.save()
    do_purge_location(location, by="test", now=NOW)
    general = Queue.objects.get(location=location, slug="general")
    QueueEvent.objects.create(queue=general, version=general.version + 2, kind="paused")
    Queue.objects.filter(pk=general.pk).update(version=general.version + 2)
    codes = {p.code for p in validate_queue_integrity(general)}
    assert "version_gap" in codes


def test_recent_and_unended_tickets_and_locations_without_retention_stay(location, other_location, queue, counter):
    other_queue = make_queue(other_location, "Other", "O")
    recent = do_join(queue)
    do_complete(do_call_next(counter=counter))
    old_waiting = do_join(queue)
    elsewhere = do_join(other_queue)
    Ticket.objects.filter(pk__in=[old_waiting.pk, elsewhere.pk]).update(business_day=OLD_DAY)
    Ticket.objects.filter(pk=recent.pk).update(business_day=OLD_DAY, finished_at=NOW - timedelta(days=2))
    location.retention_days = 30
    location.save()
    assert purge_due_locations(by="test", now=NOW) == []
    assert Ticket.objects.count() == 3  # ended 2 days ago, still waiting, a location that keeps all
    assert validate_queue_integrity() == []


def test_transferred_tickets_go_with_their_ended_targets_and_a_waiting_target_stays(location, queue, counter):
    lab = make_queue(location, "Lab", "L")
    lab_counter = make_counter(location, "Room 2", [lab])
    first = do_join(queue)
    moved = do_transfer(first, to_queue=lab)
    do_complete(do_call_next(counter=lab_counter))
    second = do_join(queue)
    waiting = do_transfer(second, to_queue=lab)  # still waiting in the lab
    Ticket.objects.update(business_day=OLD_DAY)
    Ticket.objects.filter(finished_at__isnull=False).update(finished_at=NOW - timedelta(days=40))
    location.retention_days = 30
    location.save()

    purge = do_purge_location(location, by="test", now=NOW)

    assert purge.tickets_deleted == 3  # first, its lab ticket, and second (ended by its transfer)
    assert set(Ticket.objects.values_list("pk", flat=True)) == {waiting.pk}
    assert validate_queue_integrity() == []


def test_events_cannot_be_deleted_unless_a_purge_recorded_them_and_records_are_append_only(location, queue):
    ticket = do_join(queue)
    event = QueueEvent.objects.get(ticket=ticket)
    with pytest.raises(IntegrityError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM queueapp_queueevent WHERE id = %s", [event.pk])
    purge = Purge.objects.create(location=location, cutoff=NOW, retention_days=1, by="test")
    PurgedRange.objects.create(purge=purge, queue=queue, first_version=event.version + 1,
                               last_version=event.version + 5)
    with pytest.raises(IntegrityError), transaction.atomic():  # a range that does not cover it
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM queueapp_queueevent WHERE id = %s", [event.pk])
    for sql in ("UPDATE queueapp_purge SET tickets_deleted = 0", "DELETE FROM queueapp_purge",
                "UPDATE queueapp_purgedrange SET last_version = 1", "DELETE FROM queueapp_purgedrange"):
        with pytest.raises(IntegrityError), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql)
    with pytest.raises(IntegrityError), transaction.atomic():  # still no UPDATE of events
        with connection.cursor() as cursor:
            cursor.execute("UPDATE queueapp_queueevent SET kind = 'called' WHERE id = %s", [event.pk])


def test_contact_data_goes_with_its_ticket_and_is_in_the_holders_export(client, location, queue, counter):
    from queueapp.alerts.models import Contact

    ticket = do_join(queue)
    Contact.objects.create(ticket=ticket, channel="email", address="jane@example.org")
    exported = client.get(reverse("ticket-data", args=[ticket.token])).json()
    assert exported["tickets"][0]["alerts.contact"][0]["address"] == "jane@example.org"
    do_complete(do_call_next(counter=counter))
    Ticket.objects.filter(pk=ticket.pk).update(business_day=OLD_DAY, finished_at=NOW - timedelta(days=40))
    location.retention_days = 30
    location.save()
    assert do_purge_location(location, by="test", now=NOW).tickets_deleted == 1
    assert not Contact.objects.exists()


def test_the_command_and_the_worker_job_purge_due_locations(location, queue, counter, capsys):
    from queueapp import jobs

    ticket = do_join(queue)
    do_complete(do_call_next(counter=counter))
    Ticket.objects.filter(pk=ticket.pk).update(business_day=OLD_DAY, finished_at=NOW - timedelta(days=40))
    location.retention_days = 30
    location.save()
    call_command("purge_expired_tickets", "--location", location.slug)
    assert "1 ticket(s) and 3 event(s) deleted" in capsys.readouterr().out
    assert not Ticket.objects.exists()
    assert jobs.purge_expired_tickets() == 0  # nothing left; registered with the worker
    from queueapp.worker import JOBS

    assert "purge_expired_tickets" in {job.func.__name__ for job in JOBS}


def test_the_holder_downloads_what_is_held_about_their_ticket(client, location, queue, counter):
    lab = make_queue(location, "Lab", "L")
    first = do_join(queue, note="needs an interpreter")
    moved = do_transfer(first, to_queue=lab)
    location.retention_days = 30
    location.save()
    response = client.get(reverse("ticket-data", args=[first.token]))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    data = json.loads(response.content)
    assert [t["display_number"] for t in data["tickets"]] == ["A-001", "L-001"]
    assert data["tickets"][0]["note"] == "needs an interpreter"
    assert [e["what"] for e in data["tickets"][0]["events"]] == ["joined", "transferred_out"]
    assert data["retention"]["days"] == 30
    assert first.token not in response.text and moved.token not in response.text
    assert client.get(reverse("ticket-data", args=["A" * 22])).status_code == 404


def _hours(location, start, end, per_queue=True):
    return {(r.queue.slug if r.queue else None, r.bucket): r.figures
            for r in queue_stats(start=start, end=end, by="hour", per_queue=per_queue,
                                 locations=type(location).objects.filter(pk=location.pk))}


COUNTED = ("issued", "served", "no_shows", "cancellations", "requests", "confirmed", "offers", "offers_expired")
AVERAGED = ("wait_avg", "service_avg", "confirm_avg", "throughput_per_hour")
PERCENTILES = ("wait_median", "wait_p90", "service_median", "service_p90", "confirm_median")


def test_hour_of_day_statistics_stay_whole_after_a_purge(location):
    generate_day(location, OLD_DAY, tickets=300)
    today_queue = make_queue(location, "Pharmacy", "P")
    desk = make_counter(location, "Desk 9", [today_queue])
    for _ in range(3):  # a kept day beside the purged one
        do_join(today_queue)
        do_complete(do_call_next(today_queue, counter=desk))
    today = Ticket.objects.filter(queue=today_queue).first().business_day
    ranges = [(OLD_DAY, OLD_DAY), (OLD_DAY, today)]
    before = {r: (_hours(location, *r), _hours(location, *r, per_queue=False)) for r in ranges}
    assert len(before[ranges[0]][1]) >= 8  # the day's opening hours, each a bar of the chart
    location.retention_days = 30
    location.save()

    assert do_purge_location(location, by="test", now=NOW).tickets_deleted > 0

    assert not Ticket.objects.filter(business_day=OLD_DAY, status=TicketStatus.COMPLETED).exists()
    for r in ranges:
        for was, now in zip(before[r], (_hours(location, *r), _hours(location, *r, per_queue=False))):
            assert now.keys() == was.keys(), r
            for key, figures in was.items():
                kept = now[key]
                assert [getattr(kept, n) for n in COUNTED] == [getattr(figures, n) for n in COUNTED], key
                for name in AVERAGED:
                    assert getattr(kept, name) == pytest.approx(getattr(figures, name)), (key, name)
                for name in PERCENTILES:  # from whole seconds: within one
                    assert getattr(kept, name) == pytest.approx(getattr(figures, name), abs=1), (key, name)
