"""A generated business day of tickets with matching events, for statistics
tests and the statistics benchmark (`bench/stats_page.py`).

Written with bulk_create, not the services: it builds a finished past day in a
second instead of replaying 20,000 actions. It keeps the rules the services
keep (gapless numbers and versions, one event per change, statuses equal to
their last event, queue counters), so `validate_queue_integrity` finds nothing
to report. Never used by the application.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from queueapp.models import Counter, Location, Queue, QueueEvent, Ticket, TicketStatus

S = TicketStatus
K = QueueEvent.Kind


@dataclass
class Record:
    """What the day holds, kept in plain Python for the reference computation."""

    queue: str
    capacity: bool
    status: str
    created: datetime
    called: datetime | None = None
    serving: datetime | None = None
    finished: datetime | None = None
    confirmed: datetime | None = None
    events: list[tuple[str, datetime]] = field(default_factory=list)


def generate_day(location: Location, day: date, *, tickets: int = 5000, seed: int = 7,
                 staff=()) -> list[Record]:
    """Create queues General (A), Lab (L) and a capacity waitlist Seats (W) at
    `location` with `tickets` tickets on `day` (4/5 counter tickets, 1/5 waitlist
    requests), opening hours 08:00-18:00 local time. With `staff` (users), each
    event at a counter names one of them as its actor (drawn from a second
    random stream, so the day itself is the same with or without)."""
    rng = random.Random(seed)
    tz = ZoneInfo(location.timezone)
    opens = datetime.combine(day, time(8), tz)
    general = Queue.objects.create(location=location, name="General", slug="general", prefix="A")
    lab = Queue.objects.create(location=location, name="Lab", slug="lab", prefix="L")
    seats = Queue.objects.create(location=location, name="Seats", slug="seats", prefix="W",
                                 kind=Queue.Kind.CAPACITY, capacity=100_000, offer_seconds=900)
    counters = [Counter.objects.create(location=location, name=f"Desk {i}") for i in range(1, 4)]
    for c in counters:
        c.queues.set([general, lab])

    records = []
    for _ in range(tickets):
        created = opens + timedelta(seconds=rng.uniform(0, 10 * 3600))
        if rng.random() < 0.2:
            records.append(_request(rng, created))
        else:
            records.append(_visit(rng, created, rng.choice(["general", "lab"])))
    records.sort(key=lambda r: r.created)

    queues = {"general": general, "lab": lab, "seats": seats}
    rows, numbers = [], {name: 0 for name in queues}
    for r in records:
        numbers[r.queue] += 1
        at_counter = r.called is not None and r.status != S.CANCELLED
        rows.append(Ticket(
            queue=queues[r.queue], business_day=day, number=numbers[r.queue], seq=numbers[r.queue],
            status=r.status, counter=rng.choice(counters) if at_counter else None,
            call_count=1 if r.called else 0, no_show_count=3 if r.status == S.NO_SHOW else 0,
            created_at=r.created, queued_at=r.created, called_at=r.called, serving_at=r.serving,
            finished_at=r.finished, confirmed_at=r.confirmed,
        ))
    Ticket.objects.bulk_create(rows, batch_size=1000)

    events = sorted(((kind, at, t, r) for t, r in zip(rows, records) for kind, at in r.events),
                    key=lambda e: e[1])
    versions = {name: 0 for name in queues}
    event_rows = []
    who = random.Random(seed + 1)
    for kind, at, ticket, r in events:
        versions[r.queue] += 1
        status_after = r.status if (kind, at) == r.events[-1] else _status_after(kind)
        event_rows.append(QueueEvent(queue=queues[r.queue], version=versions[r.queue], kind=kind,
                                     ticket=ticket, counter=ticket.counter, status_after=status_after,
                                     actor=who.choice(staff) if staff and kind != K.JOINED else None,
                                     created_at=at, data={}))
    QueueEvent.objects.bulk_create(event_rows, batch_size=2000)
    for name, queue in queues.items():  # the counters the services would have bumped
        Queue.objects.filter(pk=queue.pk).update(version=versions[name], number_day=day,
                                                 last_number=numbers[name], last_seq=numbers[name])
    # Parties of one. Sold out at the end of the day: the requests still waiting
    # wait for a seat to free up (with seats free, the waitlist would admit them).
    held = sum(r.status == S.CONFIRMED for r in records)
    Queue.objects.filter(pk=seats.pk).update(seats_taken=held, capacity=held)
    return records


def _status_after(kind: str) -> str:
    return {K.JOINED: S.WAITING, K.CALLED: S.CALLED, K.STARTED: S.SERVING, K.OFFERED: S.OFFERED,
            K.ACCEPTED: S.CONFIRMED, K.CONFIRMED: S.CONFIRMED}[kind]


def _visit(rng: random.Random, created: datetime, queue: str) -> Record:
    r = Record(queue=queue, capacity=False, status=S.COMPLETED, created=created)
    r.events.append((K.JOINED, created))
    roll = rng.random()
    if roll < 0.08:
        r.status, r.finished = S.CANCELLED, created + timedelta(seconds=rng.uniform(60, 1800))
        r.events.append((K.CANCELLED, r.finished))
        return r
    r.called = created + timedelta(seconds=rng.expovariate(1 / 900))
    r.events.append((K.CALLED, r.called))
    if roll < 0.18:
        r.status, r.finished = S.NO_SHOW, r.called + timedelta(seconds=rng.uniform(60, 300))
        r.events.append((K.NO_SHOW, r.finished))
        return r
    if roll > 0.3:  # most staff press Start; some complete straight from the call
        r.serving = r.called + timedelta(seconds=rng.uniform(20, 180))
        r.events.append((K.STARTED, r.serving))
    r.finished = (r.serving or r.called) + timedelta(seconds=rng.lognormvariate(5.5, 0.6))
    r.events.append((K.COMPLETED, r.finished))
    return r


def _request(rng: random.Random, created: datetime) -> Record:
    r = Record(queue="seats", capacity=True, status=S.WAITING, created=created)
    r.events.append((K.JOINED, created))
    roll = rng.random()
    if roll < 0.15:
        return r
    offered = created + timedelta(seconds=rng.uniform(0, 7200))
    if roll < 0.45:  # confirmed at once, no offer
        r.status, r.confirmed = S.CONFIRMED, offered
        r.events.append((K.CONFIRMED, offered))
        return r
    r.events.append((K.OFFERED, offered))
    if roll < 0.6:
        r.status, r.finished = S.EXPIRED, offered + timedelta(seconds=900)
        r.events.append((K.EXPIRED, r.finished))
        return r
    r.status, r.confirmed = S.CONFIRMED, offered + timedelta(seconds=rng.uniform(10, 890))
    r.events.append((K.ACCEPTED, r.confirmed))
    return r
