"""Retention: delete ended tickets older than their location's retention period.

`do_purge_location` is one transaction per location (its row locked, so two
workers never purge the same tickets twice):

1. the statistics of every business day before the cutoff that has no summary
   yet are stored as `DailySummary` rows, computed by `queueapp.stats` itself
   (the statistics page then reads them for those days);
2. the candidates are tickets of the location that ended before the cutoff
   (start of the business day `retention_days` before today, local time);
3. their events are written to a CSV file (`RETENTION_ARCHIVE_DIR`), and a
   `Purge` row with its SHA-256 and one `PurgedRange` per run of consecutive
   versions of a queue records exactly what goes; only then are the events
   deleted: the events' append-only trigger lets a DELETE through only for a
   version a purge recorded (migration 0005). Events without a ticket (pause,
   resume, capacity) are kept: they hold nothing about a person;
4. the tickets are deleted, and with them whatever refers to them with
   CASCADE (contact data). Transfer links between deleted tickets are cleared
   first; a ticket still pointed at by a kept ticket stays until that one goes.

`validate_queue_integrity` reads the ranges and the deleted numbers
(`Purge.numbers`) to tell a purge from a gap.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import FINAL_STATUSES, DailySummary, Location, Purge, PurgedRange, QueueEvent, Ticket
from ..stats import day_summaries

log = logging.getLogger(__name__)

CHUNK = 500  # ids per IN (...) list: well below SQLite's variable limit
ARCHIVE_COLUMNS = ["queue_id", "queue", "version", "kind", "created_at", "ticket_id", "ticket",
                   "business_day", "status_after", "counter", "actor", "data"]


@transaction.atomic(durable=True)
def do_purge_location(location: Location | int, *, by: str = "worker", now: datetime | None = None) -> Purge | None:
    """Purge one location (see the module docstring). Returns the purge record,
    or None when the location keeps everything or nothing is due. Locks the
    location row."""
    location = Location.objects.select_for_update(of=("self",)).get(
        pk=location if isinstance(location, int) else location.pk)
    now = now or timezone.now()
    cutoff = location.retention_cutoff(now)
    if cutoff is None:
        return None
    _summarise_days_before(location, cutoff.date())

    doomed = _doomed_ticket_ids(location, cutoff)
    if not doomed:
        return None
    events = []
    for chunk in _chunks(doomed):
        events += QueueEvent.objects.filter(ticket_id__in=chunk).select_related(
            "queue", "ticket__queue", "counter", "actor")
    events.sort(key=lambda e: (e.queue_id, e.version))
    # The file first (its name and digest go into the append-only record), then
    # the record and its ranges, then the deletions the ranges allow.
    archive, digest = _write_archive(location, now, events)
    purge = Purge.objects.create(
        location=location, created_at=now, cutoff=cutoff, retention_days=location.retention_days, by=by,
        tickets_deleted=len(doomed), events_deleted=len(events), numbers=_deleted_numbers(doomed),
        archive=archive, archive_sha256=digest)
    PurgedRange.objects.bulk_create(_ranges(purge, events))
    for chunk in _chunks([e.pk for e in events]):
        QueueEvent.objects.filter(pk__in=chunk).delete()
    for chunk in _chunks(doomed):
        Ticket.objects.filter(pk__in=chunk, transferred_to__isnull=False).update(transferred_to=None)
    for chunk in _chunks(doomed):
        Ticket.objects.filter(pk__in=chunk).delete()
    return purge


def _chunks(ids: list[int]):
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


def _summarise_days_before(location: Location, cutoff_day) -> None:
    """Store the statistics of the days about to lose tickets, once per day."""
    days = Ticket.objects.filter(queue__location=location, business_day__lt=cutoff_day)
    first = days.order_by("business_day").values_list("business_day", flat=True).first()
    if first is None:
        return
    done = set(DailySummary.objects.filter(location=location, day__gte=first)
               .values_list("day", flat=True).distinct())
    DailySummary.objects.bulk_create(
        s for s in day_summaries(location, first, cutoff_day - timedelta(days=1)) if s.day not in done)


def _doomed_ticket_ids(location: Location, cutoff: datetime) -> list[int]:
    """Ended before the cutoff, and not the target of a transfer from a ticket that stays."""
    ended = set(Ticket.objects.filter(queue__location=location, status__in=FINAL_STATUSES,
                                      finished_at__lt=cutoff, business_day__lt=cutoff.date())
                .values_list("pk", flat=True))
    links = list(Ticket.objects.filter(transferred_to__queue__location=location)
                 .values_list("pk", "transferred_to"))
    while True:
        held = {target for source, target in links if target in ended and source not in ended}
        if not held:
            return sorted(ended)
        ended -= held


def _deleted_numbers(doomed: list[int]) -> dict:
    """{"<queue id>": {"<day>": [[first, last], ...]}}: the numbers a purge removes."""
    numbers: dict[str, dict[str, list[int]]] = {}
    for chunk in _chunks(doomed):
        for queue_id, day, number in Ticket.objects.filter(pk__in=chunk).values_list(
                "queue_id", "business_day", "number"):
            numbers.setdefault(str(queue_id), {}).setdefault(day.isoformat(), []).append(number)
    return {q: {d: _runs(sorted(ns)) for d, ns in days.items()} for q, days in numbers.items()}


def _runs(values: list[int]) -> list[list[int]]:
    """[1, 2, 3, 7, 8] -> [[1, 3], [7, 8]] (sorted input)."""
    runs: list[list[int]] = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return runs


def _ranges(purge: Purge, events: list[QueueEvent]) -> list[PurgedRange]:
    by_queue: dict[int, list[int]] = {}
    for event in events:
        by_queue.setdefault(event.queue_id, []).append(event.version)
    return [PurgedRange(purge=purge, queue_id=queue_id, first_version=first, last_version=last)
            for queue_id, versions in by_queue.items() for first, last in _runs(versions)]


def _write_archive(location: Location, now: datetime, events: list[QueueEvent]) -> tuple[str, str]:
    """The deleted events as CSV (numbers, never tokens); returns its name and SHA-256."""
    folder = Path(settings.RETENTION_ARCHIVE_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"events-{location.slug}-{now:%Y%m%dT%H%M%S%f}.csv"
    digest = hashlib.sha256()
    with open(folder / name, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(ARCHIVE_COLUMNS)
        for e in events:
            writer.writerow([e.queue_id, e.queue.slug, e.version, e.kind, e.created_at.isoformat(), e.ticket_id,
                             e.ticket.display_number if e.ticket else "",
                             e.ticket.business_day.isoformat() if e.ticket else "", e.status_after,
                             e.counter.name if e.counter else "", e.actor.get_username() if e.actor else "",
                             json.dumps(e.data, sort_keys=True)])
    with open(folder / name, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return name, digest.hexdigest()


def purge_due_locations(*, by: str = "worker", now: datetime | None = None) -> list[Purge]:
    """Every location with a retention period, one transaction each."""
    done = []
    for location_id in Location.objects.filter(retention_days__isnull=False).values_list("pk", flat=True):
        purge = do_purge_location(location_id, by=by, now=now)
        if purge is not None:
            log.info("retention: location %s, %d tickets and %d events deleted (purge %s)",
                     location_id, purge.tickets_deleted, purge.events_deleted, purge.pk)
            done.append(purge)
    return done
