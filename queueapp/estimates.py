"""The wait shown to patients, and how sure we are of it.

How it is computed (also in docs/architecture.md):

1. Service time of the queue: the last `RECENT_LIMIT` (30) tickets of that queue
   completed in the last `RECENT_WINDOW` (3 h), each from its call to its
   completion: the walk to the counter holds the counter too. Their mean is
   the service time; their standard deviation is its spread.
2. With fewer than `MIN_SAMPLES` (5) such tickets the data is thin: the mean is
   pulled towards the queue's `default_service_seconds` as if the missing
   samples had that value, and the wait is shown as a wide range (half to one
   and a half times the point estimate).
3. Counters: the open counters that serve the queue now, each counted as its
   share of them: a counter serving k queues counts 1/k (it calls across its
   queues in turn); none open counts one (somebody will open).
4. Wait for the person at `position`: `position - 1` people are served before
   them, and the counters are busy with someone already, on average half-way
   through, so `expected = (position - 0.5) * mean / counters`. With enough
   data the range is `expected ± 1.28 * sd * sqrt(position - 0.5) / counters`:
   an 80 % interval for the sum of those service times shared between the
   counters.

Measured by `bench/wait_estimates.py` (a scripted day with breaks, no-shows,
priorities and shared counters; docs/benchmarks.md): the median absolute error
at join went from 25-61 % of the median wait to 13-27 % with the walk counted,
the half-served counter and the counters' shares. Deliberately simple beyond
that: no arrival model and no priorities of people joining later (an urgent
arrival can still pass you), no foreseen breaks; the patient page refreshes
the estimate on every event, so it corrects itself as the line moves.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from functools import cached_property
from datetime import timedelta

from django.db.models import Count
from django.utils import timezone

from .dbfunctions import Seconds
from .models import Counter, CounterState, Queue, Ticket, TicketStatus

RECENT_WINDOW = timedelta(hours=3)
RECENT_LIMIT = 30
MIN_SAMPLES = 5
Z_80 = 1.28  # two-sided 80 % interval of a normal distribution
THIN_LOW, THIN_HIGH = 0.5, 1.5


@dataclass(frozen=True)
class ServiceTime:
    mean: float  # seconds per ticket at one counter
    samples: int
    spread_of: tuple[float, ...] = ()  # the seconds `sd` is taken over; none: no spread

    @property
    def thin(self) -> bool:
        return self.samples < MIN_SAMPLES

    @cached_property
    def sd(self) -> float:
        # Worked out only when asked: only a range that is not thin uses it, and
        # pstdev's exact arithmetic cost 30-100 us per estimate (a join's answer
        # and most pages' first paint need the mean only; issue 9).
        return statistics.pstdev(self.spread_of) if self.spread_of else 0.0


@dataclass(frozen=True)
class WaitRange:
    expected: timedelta
    low: timedelta
    high: timedelta
    thin: bool  # True: little recent history, the range is a rough guide
    counters: float  # open counters serving the queue, each as its share
    service_seconds: float


def recent_service_seconds(queue: Queue) -> list[float]:
    """Durations of the queue's most recent completions (newest first).

    Bounded by business day so the (queue, business_day, number) index serves
    it however long the history: any ticket finished within the window has a
    business day no earlier than the window's UTC date minus one.
    """
    since, day = recent_since()
    return service_samples(recent_services(queue.pk, since, day))


def recent_since() -> tuple:
    """The window's start and the earliest business day that can hold it."""
    since = timezone.now() - RECENT_WINDOW
    return since, since.date() - timedelta(days=1)


def recent_services(queue_id: int, since, day):
    """The query behind `recent_service_seconds` (also compiled once for a join's answer)."""
    return (Ticket.objects
            .filter(queue_id=queue_id, business_day__gte=day, status=TicketStatus.COMPLETED, finished_at__gte=since)
            .annotate(took=Seconds("finished_at", "called_at"))
            .order_by("-finished_at").values_list("took", flat=True)[:RECENT_LIMIT])


def service_samples(rows) -> list[float]:
    return [max(0.0, took) for took in rows if took is not None]


def recent_stays(queue_id: int, since):
    """The query behind a room's recent stays (`room_interval`; also compiled once
    into a waiting-room arrival's read, `services.rooms`): seconds from admission
    to release of its last `RECENT_LIMIT` visitors released since `since`."""
    return (Ticket.objects.filter(queue_id=queue_id, finished_at__gte=since, confirmed_at__isnull=False)
            .annotate(took=Seconds("finished_at", "confirmed_at"))
            .order_by("-finished_at").values_list("took", flat=True)[:RECENT_LIMIT])


def room_interval(queue: Queue, stays: list[float] | None = None) -> float | None:
    """Seconds between two admissions of a waiting room, as far as we know: its
    rate, or slower when visitors stay long and the room is full (the mean of
    recent stays divided by the places inside). None if `queue` is no room.
    `stays`: the room's `recent_stays` when the caller has read them."""
    if queue.room_slug is None:
        return None
    room = queue.waiting_room
    if stays is None:
        stays = list(recent_stays(queue.pk, timezone.now() - RECENT_WINDOW))
    by_stay = statistics.fmean(stays) / max(1, queue.capacity or 1) if stays else 0.0
    return max(room.admission_interval, by_stay)


def service_estimate(queue: Queue, samples: list[float] | None = None, *,
                     stays: list[float] | None = None) -> ServiceTime:
    """`samples`: the queue's `recent_service_seconds`, `stays` a room's
    `recent_stays`, when the caller has read them."""
    interval = room_interval(queue, stays)
    if interval is not None:  # a waiting room: one admission per interval
        return ServiceTime(interval, MIN_SAMPLES)
    if samples is None:
        samples = recent_service_seconds(queue)
    default = float(queue.default_service_seconds)
    if len(samples) >= MIN_SAMPLES:
        return ServiceTime(statistics.fmean(samples), len(samples), tuple(samples))
    # Thin: count the missing samples as the configured default.
    padded = samples + [default] * (MIN_SAMPLES - len(samples))
    return ServiceTime(statistics.fmean(padded), len(samples), tuple(padded))


def service_seconds(queue: Queue, *, stays: list[float] | None = None) -> float:
    """Seconds one ticket takes at one counter, as far as we know (`stays`: see
    `service_estimate`)."""
    return service_estimate(queue, stays=stays).mean


def counters_serving(queue: Queue | int) -> float:
    """Open counters that serve `queue` now, each as its share (1/k for a
    counter serving k queues); one when none is open (somebody will open).
    The one count of open counters: pages, the API and the live screens."""
    if not isinstance(queue, int) and queue.room_slug is not None:
        # A waiting room has no counters: its pace (`room_interval`) is already
        # one admission per interval. One query fewer per arrival's page.
        return 1
    return counters_from_shares(counter_shares(queue if isinstance(queue, int) else queue.pk))


def counter_shares(queue_id: int):
    """For each open counter serving the queue, how many queues it serves (k)."""
    # annotate before filter: the count is of all the counter's queues, not the filtered one.
    return (Counter.objects.annotate(k=Count("queues")).filter(queues=queue_id, state=CounterState.OPEN)
            .values_list("k", flat=True))


def counters_from_shares(shares) -> float:
    return sum(1 / k for k in shares) or 1


def has_wait_estimate(queue) -> bool:
    """Whether a wait is shown for a queue's tickets: the one rule, for the
    pages' first paint (`selectors.estimate_wait_range`) and the live screens'
    updates (`expected_wait`). `queue` is a `Queue` or anything with its `kind`
    and `room_slug` (the live screens' plain copy).

    A waitlist moves only when seats free up (cancellations, more capacity): no
    service time predicts that, so it shows a position and no time. A waiting
    room admits at its rate, so it has a wait (`room_interval`)."""
    return queue.kind != Queue.Kind.CAPACITY or queue.room_slug is not None


def expected_wait(*, queue, position: int | None, service_seconds: float,
                  counters: float) -> timedelta | None:
    """The wait shown for the ticket at `position` (1 = next): the one formula
    behind the pages' first paint and the live screens' updates."""
    if position is None or not has_wait_estimate(queue):
        return None
    return timedelta(seconds=round(_expected_seconds(position, service_seconds, counters)))


def shown_minutes(wait: timedelta) -> int:
    """The whole minutes a wait is shown as (the words, the admin's range, and
    the live fragments' cache key, which must change exactly when the words do)."""
    return round(wait.total_seconds() / 60)


def _expected_seconds(position: int, service_seconds: float, counters: float) -> float:
    return _ahead(position) * service_seconds / counters


def _ahead(position: int) -> float:
    """Tickets' worth of service before `position` is called: those ahead, and
    half of the one each counter is busy with."""
    return max(0.0, position - 0.5)


def wait_range(queue: Queue, position: int, *, samples: list[float] | None = None,
               counters: float | None = None) -> WaitRange:
    """Expected wait before being called for the ticket at `position` (1 = next).
    `samples`, `counters`: `recent_service_seconds` and `counters_serving` when
    the caller has read them (a join's answer reads all in one statement)."""
    service = service_estimate(queue, samples)
    if counters is None:
        counters = counters_serving(queue)
    ahead = _ahead(position)
    expected = _expected_seconds(position, service.mean, counters)
    if service.thin:
        low, high = expected * THIN_LOW, expected * THIN_HIGH
    else:
        margin = Z_80 * service.sd * math.sqrt(ahead) / counters
        low, high = max(0.0, expected - margin), expected + margin
    return WaitRange(
        expected=timedelta(seconds=round(expected)), low=timedelta(seconds=round(low)),
        high=timedelta(seconds=round(high)), thin=service.thin, counters=counters,
        service_seconds=service.mean,
    )
