"""Benchmark: how good is the wait shown at join? A scripted clinic day played
through the real services on a virtual clock.

    .venv/bin/python bench/wait_estimates.py [--days 3] [--seed 1]

Uses its own database (default sqlite:////tmp/queueapp_wait_estimates.sqlite3;
override with WAITBENCH_DATABASE_URL), migrates and empties it, then plays
`--days` scripted days (as `queueapp/management/demo_history.py` plays the
demo's week: `virtual_clock`, every action a `do_*` service):

- opening 08:30-16:30; walk-ins per queue with a morning peak and a lunch dip,
  5 % of them high priority (they pass those already waiting);
- service times drawn per queue (log-normal around the queue's mean), a walk
  of 20-90 s from the call to *Start*, 6 % no-shows (the counter waits 2 min,
  then marks it; the ticket goes back in line up to the recall limit);
- breaks: each counter has a 15 min break in the morning (reason "short") and a
  30 min lunch ("lunch") at its own times (`do_set_counter_state`: it neither
  calls nor counts as open);
- counters serving one queue or two.

For every ticket, the wait its page showed when it joined
(`selectors.estimate_wait` at its position: `estimates.expected_wait`, the one
formula of the pages and the live screens) is compared with its actual wait
(joined to first call). Printed per queue: tickets, median actual wait, the
median absolute error in minutes and as a % of the median actual wait (the
target: at most 20 %), and the median of each ticket's own error as a % of its
wait (tickets that waited at least 5 min). The first day warms the history the
estimate learns from (service times of the last 3 hours); all days are
reported. The baseline printed beside it: the naive "position × the queue's
configured default service time ÷ its counters", what a system without
history would show. `WAITBENCH_VARIANTS=1` (development) also scores candidate
formulas on the same joins (`variants`): the counters' real shares of their
last hour's calls, the work ahead across a shared counter's queues (`pooled`),
a counter on a break counted from its typical return (`break_aware`), both,
and the queue's recent interval between calls.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import time as wall
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DATABASE_URL"] = os.environ.get("WAITBENCH_DATABASE_URL",
                                            "sqlite:////tmp/queueapp_wait_estimates.sqlite3")
os.environ.pop("REDIS_URL", None)  # the in-memory layer: nothing here watches a screen
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("STATIC_MANIFEST", "false")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from queueapp.management.demo_history import unsynced_sqlite, virtual_clock  # noqa: E402
from queueapp.models import Counter, Location, Priority, Queue, Ticket, TicketStatus  # noqa: E402
from queueapp.selectors import estimate_wait, position_of  # noqa: E402
from queueapp.services import (  # noqa: E402
    do_call_next,
    do_complete,
    do_join,
    do_no_show,
    do_set_counter_state,
    do_start_serving,
)

TICK = timedelta(seconds=15)
OPENS, CLOSES = time(8, 30), time(16, 30)
# Queue: (prefix, mean service minutes, log-normal sigma, walk-ins per hour at the peak).
QUEUES = {"general": ("A", 6.0, 0.45, 28), "lab": ("L", 4.0, 0.35, 20), "pharmacy": ("P", 3.0, 0.5, 16)}
# Counter: the queues it serves, its morning break and its lunch (local start times).
COUNTERS = {
    "Desk 1": (["general"], time(10, 0), time(12, 0)),
    "Desk 2": (["general"], time(10, 30), time(12, 30)),
    "Desk 3": (["general", "pharmacy"], time(11, 0), time(13, 0)),
    "Lab 1": (["lab"], time(10, 15), time(12, 15)),
    "Lab 2": (["lab", "pharmacy"], time(10, 45), time(13, 15)),
}
NO_SHOW = 0.06
HIGH_PRIORITY = 0.05


def arrival_rate(queue: str, at: time) -> float:
    """Walk-ins per minute: a morning peak, a lunch dip, a quieter afternoon."""
    hour = at.hour + at.minute / 60
    shape = 0.6 + 0.4 * math.exp(-((hour - 10.0) ** 2) / 2.0) - 0.35 * math.exp(-((hour - 12.75) ** 2) / 0.3)
    return QUEUES[queue][3] / 60 * max(0.15, shape)


@dataclass
class Desk:
    pk: int
    breaks: list[tuple[datetime, datetime]]
    ticket: int | None = None
    phase: str = ""
    until: datetime | None = None
    on_break: bool = False


@dataclass
class Seen:
    queue: str
    joined: datetime
    shown: float  # seconds shown at join
    naive: float
    called: datetime | None = None
    variants: dict = field(default_factory=dict)


def pooled(ticket: Ticket, position: int) -> float:
    """Candidate: the work ahead across the queues of the counters serving the
    ticket's queue (calls go by priority, then the longest wait, across a
    counter's queues): every ticket of a sibling queue ahead of this one in that
    order takes its service time × the share of its queue's open counters that
    also serve this queue; divided by this queue's open counters."""
    from django.db.models import Q

    from queueapp.estimates import service_seconds

    queue = ticket.queue
    mine = set(Counter.objects.filter(queues=queue.pk, state="open").values_list("pk", flat=True))
    if not mine:
        return (position - 0.5) * service_seconds(queue)
    work = (position - 0.5) * service_seconds(queue)
    siblings = Queue.objects.filter(counters__in=mine).exclude(pk=queue.pk).distinct()
    for other in siblings:
        theirs = set(Counter.objects.filter(queues=other.pk, state="open").values_list("pk", flat=True))
        ahead = (Ticket.objects.filter(queue=other, status=TicketStatus.WAITING)
                 .filter(Q(priority__gt=ticket.priority)
                         | Q(priority=ticket.priority, queued_at__lt=ticket.queued_at)).count())
        work += ahead * service_seconds(other) * len(mine & theirs) / len(theirs)
    return work / len(mine)


TYPICAL_BREAK = {"lunch": 30 * 60, "short": 15 * 60, "meeting": 30 * 60, "other": 15 * 60}


def break_aware(queue: Queue, position: int) -> float:
    """Candidate: a counter on a break counts (its 1/k share) from its expected
    return (the typical length of its reason after the break's start), not never."""
    from django.db.models import Count

    from queueapp.estimates import service_seconds

    work = (position - 0.5) * service_seconds(queue)
    counters = list(Counter.objects.annotate(k=Count("queues")).filter(queues=queue.pk).exclude(state="closed"))
    if not counters:
        return work
    return _finish(work, [(1 / c.k, at) for c, at in zip(counters, _returns(counters))])


def _returns(counters) -> list[float]:
    """Seconds from now until each counter serves: 0 if open, else the typical
    length of its break's reason left after the break's start (at least a minute)."""
    from django.utils import timezone

    from queueapp.models import CounterStateChange

    now, found = timezone.now(), []
    for counter in counters:
        if counter.state == "open":
            found.append(0.0)
            continue
        began = (CounterStateChange.objects.filter(counter=counter).order_by("-at", "-pk")
                 .values_list("at", flat=True).first())
        found.append(max(60.0, TYPICAL_BREAK.get(counter.break_reason, 15 * 60) - (now - began).total_seconds()))
    return found


def _finish(work: float, returns: list[tuple[float, float]]) -> float:
    """Seconds until `work` counter-seconds are done by counters serving at
    their share from their return on ((share, seconds from now) each)."""
    returns = sorted(returns, key=lambda r: r[1])
    rate, t, done = 0.0, 0.0, 0.0
    for share, at in returns:
        if rate and done + rate * (at - t) >= work:
            break
        done += rate * (at - t)
        t, rate = at, rate + share
    return t + (work - done) / rate


def pooled_breaks(ticket: Ticket, position: int) -> float:
    """Candidate: `pooled` work over this queue's counters, each from its expected return."""
    from django.db.models import Q

    from queueapp.estimates import service_seconds

    queue = ticket.queue
    mine = list(Counter.objects.filter(queues=queue.pk).exclude(state="closed"))
    work = (position - 0.5) * service_seconds(queue)
    if not mine:
        return work
    ids = {c.pk for c in mine}
    for other in Queue.objects.filter(counters__in=ids).exclude(pk=queue.pk).distinct():
        theirs = set(Counter.objects.filter(queues=other.pk).exclude(state="closed").values_list("pk", flat=True))
        ahead = (Ticket.objects.filter(queue=other, status=TicketStatus.WAITING)
                 .filter(Q(priority__gt=ticket.priority)
                         | Q(priority=ticket.priority, queued_at__lt=ticket.queued_at)).count())
        work += ahead * service_seconds(other) * len(ids & theirs) / len(theirs)
    return _finish(work, [(1.0, r) for r in _returns(mine)])


def variants(queue: Queue, position: int, ticket: Ticket) -> dict[str, float]:
    """Candidate formulas (development, `WAITBENCH_VARIANTS=1`), evaluated on the
    same state as the shown estimate: each one's seconds for this join."""
    from django.db.models import Count
    from django.utils import timezone

    from queueapp.estimates import service_seconds

    now = timezone.now()
    counters = list(Counter.objects.filter(queues=queue.pk, state="open").values_list("pk", flat=True))
    calls = defaultdict(dict)
    for counter_id, queue_id, n in (Ticket.objects.filter(counter_id__in=counters,
                                                          called_at__gte=now - timedelta(hours=1))
                                    .values_list("counter_id", "queue_id").annotate(n=Count("pk"))
                                    .values_list("counter_id", "queue_id", "n")):
        calls[counter_id][queue_id] = n
    share = 0.0  # each open counter as the share of its last hour's calls that were this queue's
    for counter_id in counters:
        total = sum(calls[counter_id].values())
        k = Counter.objects.get(pk=counter_id).queues.count()
        share += calls[counter_id].get(queue.pk, 0) / total if total >= 4 else 1 / k
    called = list(Ticket.objects.filter(queue_id=queue.pk, called_at__gte=now - timedelta(hours=1))
                  .order_by("-called_at").values_list("called_at", flat=True)[:12])
    interval = ((called[0] - called[-1]).total_seconds() / (len(called) - 1) if len(called) >= 5
                else service_seconds(queue) / max(share, 0.5))
    return {"call interval": (position - 0.5) * interval,
            "recent call shares": (position - 0.5) * service_seconds(queue) / max(share, 0.5),
            "pooled": pooled(ticket, position), "breaks end": break_aware(queue, position),
            "pooled + breaks end": pooled_breaks(ticket, position)}


@dataclass
class Day:
    seen: dict[int, Seen] = field(default_factory=dict)


def setup() -> tuple[Location, dict[str, Queue], dict[str, Desk]]:
    location = Location.objects.create(name="Bench Clinic", slug="bench", timezone="Europe/Paris")
    queues = {slug: Queue.objects.create(location=location, name=slug.title(), slug=slug, prefix=prefix,
                                         default_service_seconds=int(mean * 60))
              for slug, (prefix, mean, _, _) in QUEUES.items()}
    desks = {}
    for name, (served, _, _) in COUNTERS.items():
        counter = Counter.objects.create(location=location, name=name)
        counter.queues.set([queues[s] for s in served])
        desks[name] = Desk(counter.pk, [])
    return location, queues, desks


def set_open(desk: Desk, is_open: bool, lunch: bool = False) -> None:
    # A break (the counters' own action): no calls, not counted as open by the estimate.
    do_set_counter_state(desk.pk, state="open" if is_open else "break",
                         reason="" if is_open else ("lunch" if lunch else "short"))
    desk.on_break = not is_open


def play_day(day: date, tz: ZoneInfo, queues: dict[str, Queue], desks: dict[str, Desk], clock: dict,
             rng: random.Random) -> Day:
    record = Day()
    opens, closes = datetime.combine(day, OPENS, tz), datetime.combine(day, CLOSES, tz)
    for name, (_, morning, lunch) in COUNTERS.items():
        desks[name].breaks = [(datetime.combine(day, morning, tz), datetime.combine(day, morning, tz)
                               + timedelta(minutes=15)),
                              (datetime.combine(day, lunch, tz), datetime.combine(day, lunch, tz)
                               + timedelta(minutes=30))]
    waiting = {slug: 0 for slug in queues}
    now = opens
    while now < closes or any(d.ticket for d in desks.values()) or any(waiting.values()):
        clock["now"] = now
        if now < closes:
            for slug, queue in queues.items():
                if rng.random() < arrival_rate(slug, now.timetz()) * TICK.total_seconds() / 60:
                    high = rng.random() < HIGH_PRIORITY
                    ticket = do_join(queue, priority=Priority.HIGH if high else Priority.NORMAL)
                    waiting[slug] += 1
                    position = position_of(ticket)
                    shown = estimate_wait(queue, position)
                    counters = sum(1 for n, (s, _, _) in COUNTERS.items() if slug in s)
                    naive = position * queue.default_service_seconds / counters
                    record.seen[ticket.pk] = Seen(slug, now, shown.total_seconds(), naive,
                                                  variants=variants(queue, position, ticket) if VARIANTS else {})
        for desk in desks.values():
            in_break = any(start <= now < end for start, end in desk.breaks)
            if desk.ticket is not None:
                if now < desk.until:
                    continue
                if desk.phase == "called":
                    if rng.random() < NO_SHOW:
                        again = do_no_show(desk.ticket)
                        if again.status == TicketStatus.WAITING:
                            waiting[again.queue.slug] += 1
                        desk.ticket = None
                    else:
                        do_start_serving(desk.ticket)
                        slug = Ticket.objects.get(pk=desk.ticket).queue.slug
                        _, mean, sigma, _ = QUEUES[slug]
                        minutes = rng.lognormvariate(math.log(mean) - sigma ** 2 / 2, sigma)
                        desk.phase, desk.until = "serving", now + timedelta(minutes=minutes)
                    continue
                do_complete(desk.ticket)
                desk.ticket = None
            if in_break != desk.on_break:
                set_open(desk, not in_break, lunch=desk.breaks[1][0] <= now < desk.breaks[1][1])
            if in_break:
                continue
            if now > closes + timedelta(hours=3):
                continue
            served = COUNTERS_BY_PK[desk.pk]
            if any(waiting[s] for s in served):
                ticket = do_call_next(counter=desk.pk)
                if ticket is None:
                    continue
                waiting[ticket.queue.slug] -= 1
                seen = record.seen.get(ticket.pk)
                if seen is not None and seen.called is None:
                    seen.called = now
                desk.ticket, desk.phase = ticket.pk, "called"
                desk.until = now + timedelta(seconds=120 if rng.random() < NO_SHOW else rng.uniform(20, 90))
        if now > closes + timedelta(hours=3):
            break
        now += TICK
    return record


COUNTERS_BY_PK: dict[int, list[str]] = {}
VARIANTS = os.environ.get("WAITBENCH_VARIANTS") == "1"  # development: compare candidate formulas


def report(days: list[Day]) -> None:
    by_queue: dict[str, list[Seen]] = defaultdict(list)
    for record in days:
        for seen in record.seen.values():
            if seen.called is not None:
                by_queue[seen.queue].append(seen)
    names = next((list(s.variants) for rows in by_queue.values() for s in rows), [])
    print(f"{'queue':10} {'tickets':>7} {'median wait':>11} {'MdAE':>7} {'MdAE %':>7} {'per-ticket %':>12}"
          f"   {'naive MdAE %':>12}" + "".join(f"   {name:>20}" for name in names))
    for slug in QUEUES:
        rows = by_queue[slug]
        actual = [(s.called - s.joined).total_seconds() for s in rows]
        errors = [abs(s.shown - a) for s, a in zip(rows, actual)]
        naive = [abs(s.naive - a) for s, a in zip(rows, actual)]
        median_wait = statistics.median(actual)
        own = [e / a for e, a in zip(errors, actual) if a >= 300]
        candidates = "".join(
            f"   {100 * statistics.median([abs(s.variants[n] - a) for s, a in zip(rows, actual)]) / median_wait:19.1f}%"
            for n in names)
        print(f"{slug:10} {len(rows):7d} {median_wait / 60:9.1f} m {statistics.median(errors) / 60:5.1f} m "
              f"{100 * statistics.median(errors) / median_wait:6.1f}% {100 * statistics.median(own):11.0f}%"
              f"   {100 * statistics.median(naive) / median_wait:11.1f}%" + candidates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = wall.perf_counter()
    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    location, queues, desks = setup()
    for name, desk in desks.items():
        COUNTERS_BY_PK[desk.pk] = COUNTERS[name][0]
    tz = ZoneInfo(location.timezone)
    rng = random.Random(args.seed)
    first = date(2026, 3, 9)
    days = []
    with virtual_clock() as clock, unsynced_sqlite():
        for n in range(args.days):
            days.append(play_day(first + timedelta(days=n), tz, queues, desks, clock, rng))
    print(f"{args.days} scripted days, {sum(len(d.seen) for d in days)} walk-ins, "
          f"played in {wall.perf_counter() - started:.0f} s")
    report(days)


if __name__ == "__main__":
    main()
