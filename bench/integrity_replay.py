"""Benchmark: `validate_queue_integrity` (with its event replay) over a day of 5,000 tickets.

    .venv/bin/python bench/integrity_replay.py [--tickets 5000] [--rounds 5] [--reuse]

Uses INTEGRITYBENCH_DATABASE_URL (default: a SQLite file in /tmp), migrates and
empties it, then plays a day through the real services (so the events are what
production writes): 4/5 of the tickets on a counter queue served by two desks
(priorities, calls of the next and of a chosen ticket, no-shows sent back,
cancellations, transfers to the front of a second queue), 1/5 as requests for
seats on a waitlist (parties of 1-4, capacity raised during the day). Then
times the whole check over every queue. Target: under 1 s.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DATABASE_URL"] = os.environ.get("INTEGRITYBENCH_DATABASE_URL",
                                            "sqlite:////tmp/queueapp_integritybench.sqlite3")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from queueapp import services  # noqa: E402
from queueapp.integrity import validate_queue_integrity  # noqa: E402
from queueapp.live import publisher  # noqa: E402
from queueapp.models import Counter, Location, Priority, Queue, QueueEvent, Ticket  # noqa: E402


def play_day(tickets: int, rng: random.Random) -> None:
    location = Location.objects.create(name="Bench Clinic", slug="bench", timezone="Europe/Paris")
    general = Queue.objects.create(location=location, name="General", slug="general", prefix="A")
    lab = Queue.objects.create(location=location, name="Lab", slug="lab", prefix="L")
    seats = Queue.objects.create(location=location, name="Seats", slug="seats", prefix="W",
                                 kind=Queue.Kind.CAPACITY, capacity=40)
    desks = [Counter.objects.create(location=location, name=f"Desk {i}") for i in (1, 2)]
    for desk in desks:
        desk.queues.set([general, lab])
    for n in range(tickets):
        if rng.random() < 0.2:
            services.do_join(seats, party_size=rng.randint(1, 4))
            if rng.random() < 0.1:
                held = Ticket.objects.filter(queue=seats, status="confirmed").first()
                if held:
                    services.do_cancel(held)
            if n % 500 == 0:
                seats.refresh_from_db()
                services.do_set_capacity(seats, capacity=seats.capacity + 20)
            continue
        priority = rng.choices(Priority.values, weights=[80, 15, 5])[0]
        services.do_join(general, priority=priority)
        if rng.random() < 0.03:
            waiting = Ticket.objects.filter(queue=general, status="waiting").first()
            if waiting:
                services.do_cancel(waiting)
        desk = rng.choice(desks)
        busy = Ticket.objects.filter(counter=desk, status__in=["called", "serving"]).first()
        if busy is not None:
            roll = rng.random()
            if roll < 0.05:
                services.do_no_show(busy)
            elif roll < 0.07 and busy.queue_id == general.pk:
                services.do_transfer(busy, to_queue=lab, to_front=True)
            else:
                services.do_complete(busy)
        if rng.random() < 0.03:
            chosen = Ticket.objects.filter(queue=general, status="waiting").order_by("?").first()
            if chosen:
                services.do_call_ticket(chosen, counter=desk)
                continue
        services.do_call_next(counter=desk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reuse", action="store_true",
                        help="Time the check on the day already in the database (no replay of the day).")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    if not args.reuse:
        call_command("flush", interactive=False, verbosity=0)
        publisher.publish = lambda message: None  # no server here: nothing to push to
        play_day(args.tickets, random.Random(11))
    print(f"played {Ticket.objects.count()} tickets, {QueueEvent.objects.count()} events on "
          f"{connection.vendor} in {time.perf_counter() - started:.1f} s")
    problems = validate_queue_integrity()
    assert problems == [], problems[:5]
    times = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        validate_queue_integrity()
        times.append(time.perf_counter() - start)
    print(f"validate_queue_integrity over every queue: median {statistics.median(times) * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms ({args.rounds} rounds; target < 1000 ms)")


if __name__ == "__main__":
    main()
