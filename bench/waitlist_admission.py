"""Benchmark: does admitting from a waitlist slow down as the line grows?

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/queueapp_waitlist_bench .venv/bin/python bench/waitlist_admission.py
    DATABASE_URL=sqlite:////tmp/waitlist_bench.sqlite3 .venv/bin/python bench/waitlist_admission.py --samples 100

Uses its own database (migrated, then emptied of its bench location on each
run). Each case measures `do_cancel` of a confirmed single seat, which
releases the seat and runs the admission cycle in the same transaction, then
a `do_join` puts the line back to its length. Printed beside the baseline
measured in the same run (a line of 10):
- strict order with W waiting singles (the head fits at once);
- `allow_skip` with W waiting parties of 5 ahead of the singles: the worst
  case, the admission query passes every party that does not fit;
- the expiry worker's idle sweep (nothing lapsed) with W waiting and 100 offers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from queueapp.models import Location, Queue, QueueEvent, Ticket, TicketStatus  # noqa: E402
from queueapp.services import do_cancel, do_expire_offers, do_join  # noqa: E402

SLUG = "waitlist-bench"


def fresh_location() -> Location:
    old = Location.objects.filter(slug=SLUG).first()
    if old is not None:
        QueueEvent.objects.filter(queue__location=old).delete()
        Ticket.objects.filter(queue__location=old).delete()
        Queue.objects.filter(location=old).delete()
        old.delete()
    return Location.objects.create(name="Bench", slug=SLUG)


@transaction.atomic
def bulk_line(queue: Queue, *, count: int, party: int, status: str = TicketStatus.WAITING,
              offers: bool = False) -> None:
    """Fill the line fast (bulk insert, no events): setup only, not what is measured."""
    queue.refresh_from_db()
    day = queue.location.business_day()
    now = timezone.now()
    start = queue.last_number
    Ticket.objects.bulk_create([
        Ticket(queue=queue, business_day=day, number=start + i + 1, seq=queue.last_seq + i + 1,
               party_size=party, status=status, created_at=now, queued_at=now,
               confirmed_at=now if status == TicketStatus.CONFIRMED else None,
               offer_expires_at=now + timezone.timedelta(hours=1) if offers else None)
        for i in range(count)
    ], batch_size=2000)
    held = count * party if status in (TicketStatus.CONFIRMED, TicketStatus.OFFERED) else 0
    Queue.objects.filter(pk=queue.pk).update(
        number_day=day, last_number=start + count, last_seq=queue.last_seq + count,
        seats_taken=queue.seats_taken + held)


def make(location: Location, name: str, *, waiting: int, big_parties: bool, allow_skip: bool,
         offers: bool = False) -> Queue:
    # Full: 100 confirmed (and 100 offered), so every cancelled seat goes to the line.
    queue = Queue.objects.create(location=location, name=name, slug=name, prefix="B",
                                 kind=Queue.Kind.CAPACITY, capacity=200 if offers else 100,
                                 allow_skip=allow_skip)
    bulk_line(queue, count=100, party=1, status=TicketStatus.CONFIRMED)
    if offers:
        bulk_line(queue, count=100, party=1, status=TicketStatus.OFFERED, offers=True)
    bulk_line(queue, count=waiting, party=5 if big_parties else 1)
    if big_parties:
        bulk_line(queue, count=50, party=1)      # the singles that can go through
    queue.refresh_from_db()
    # A bulk insert leaves the planner's statistics stale; autovacuum would
    # refresh them in production, so do it here rather than measure a bad plan.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return queue


def admit_once(queue: Queue) -> float:
    victim = (Ticket.objects.filter(queue=queue, status=TicketStatus.CONFIRMED, party_size=1)
              .values_list("pk", flat=True).first())
    t0 = time.perf_counter()
    do_cancel(victim)
    elapsed = time.perf_counter() - t0
    do_join(queue.pk)               # keeps the line as long as it was
    assert Ticket.objects.filter(pk=victim, status=TicketStatus.CANCELLED).exists()
    return elapsed


def sweep_once() -> float:
    t0 = time.perf_counter()
    do_expire_offers()
    return time.perf_counter() - t0


def alternate(samples: int, base, long) -> tuple[list[float], list[float]]:
    """Interleave the two cases so load from elsewhere on the machine hits both alike."""
    b, w = [], []
    for _ in range(samples):
        b.append(base())
        w.append(long())
    return b, w


def pct(values: list[float], q: float) -> float:
    ms = sorted(v * 1000 for v in values)
    return ms[min(len(ms) - 1, round(q * (len(ms) - 1)))]


def fmt(values: list[float]) -> str:
    return f"p50 {pct(values, 0.5):6.2f} ms  p99 {pct(values, 0.99):6.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiting", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    location = fresh_location()
    print(f"database: {connection.vendor}; samples per case: {args.samples}")
    rows = []
    for label, big, skip in [("strict, singles", False, False), ("allow_skip, parties of 5 ahead", True, True)]:
        base = make(location, f"base-{len(rows)}", waiting=10, big_parties=big, allow_skip=skip)
        long = make(location, f"long-{len(rows)}", waiting=args.waiting, big_parties=big, allow_skip=skip)
        rows.append((f"cancel + admit, {label}",
                     *alternate(args.samples, lambda: admit_once(base), lambda: admit_once(long))))
    # The sweep looks at every queue's offers at once: measure it before and after
    # the long line exists, in the same run.
    make(location, "offers-base", waiting=10, big_parties=False, allow_skip=False, offers=True)
    before = [sweep_once() for _ in range(args.samples)]
    make(location, "offers-long", waiting=args.waiting, big_parties=False, allow_skip=False, offers=True)
    rows.append(("expiry sweep, nothing lapsed", before, [sweep_once() for _ in range(args.samples)]))
    for label, base, long in rows:
        ratios = " / ".join(f"{pct(long, q) / pct(base, q):.2f}" for q in (0.5, 0.99))
        print(f"{label:38s} | line 10: {fmt(base)} | line {args.waiting}: {fmt(long)} | "
              f"ratio p50/p99 {ratios}")


if __name__ == "__main__":
    main()
