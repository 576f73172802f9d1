"""The wait shown to patients, and how sure we are of it.

How it is computed (also in docs/architecture.md):

1. Service time of the queue: the last `RECENT_LIMIT` (30) tickets of that queue
   completed in the last `RECENT_WINDOW` (3 h), each from the start of service
   (or the call, when nobody pressed *Start*) to completion. Their mean is the
   service time; their standard deviation is its spread.
2. With fewer than `MIN_SAMPLES` (5) such tickets the data is thin: the mean is
   pulled towards the queue's `default_service_seconds` as if the missing
   samples had that value, and the wait is shown as a wide range (half to one
   and a half times the point estimate).
3. Counters: the open counters that serve the queue now (at least one).
4. Wait for the person at `position`: `ahead = position - 1` people are served
   before them by `counters` counters in parallel, so
   `expected = ahead * mean / counters`. With enough data the range is
   `expected ± 1.28 * sd * sqrt(ahead) / counters`: an 80 % interval for the
   sum of `ahead` independent service times shared between the counters.

Deliberately simple: no arrival model and no priorities of people joining later
(an urgent arrival can still pass you); the patient page refreshes the estimate
on every event, so it corrects itself as the line moves.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import timedelta

from django.db.models.functions import Coalesce
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
    sd: float
    samples: int

    @property
    def thin(self) -> bool:
        return self.samples < MIN_SAMPLES


@dataclass(frozen=True)
class WaitRange:
    expected: timedelta
    low: timedelta
    high: timedelta
    thin: bool  # True: little recent history, the range is a rough guide
    counters: int
    service_seconds: float


def recent_service_seconds(queue: Queue) -> list[float]:
    """Durations of the queue's most recent completions (newest first).

    Bounded by business day so the (queue, business_day, number) index serves
    it however long the history: any ticket finished within the window has a
    business day no earlier than the window's UTC date minus one.
    """
    now = timezone.now()
    since = now - RECENT_WINDOW
    rows = (Ticket.objects
            .filter(queue_id=queue.pk, business_day__gte=since.date() - timedelta(days=1),
                    status=TicketStatus.COMPLETED, finished_at__gte=since)
            .annotate(took=Seconds("finished_at", Coalesce("serving_at", "called_at")))
            .order_by("-finished_at").values_list("took", flat=True)[:RECENT_LIMIT])
    return [max(0.0, took) for took in rows if took is not None]


def room_interval(queue: Queue) -> float | None:
    """Seconds between two admissions of a waiting room, as far as we know: its
    rate, or slower when visitors stay long and the room is full (the mean of
    recent stays divided by the places inside). None if `queue` is no room."""
    if queue.room_slug is None:
        return None
    room = queue.waiting_room
    stays = list(Ticket.objects
                 .filter(queue_id=queue.pk, finished_at__gte=timezone.now() - RECENT_WINDOW,
                         confirmed_at__isnull=False)
                 .annotate(took=Seconds("finished_at", "confirmed_at"))
                 .order_by("-finished_at").values_list("took", flat=True)[:RECENT_LIMIT])
    by_stay = statistics.fmean(stays) / max(1, queue.capacity or 1) if stays else 0.0
    return max(room.admission_interval, by_stay)


def service_estimate(queue: Queue) -> ServiceTime:
    interval = room_interval(queue)
    if interval is not None:  # a waiting room: one admission per interval
        return ServiceTime(interval, 0.0, MIN_SAMPLES)
    samples = recent_service_seconds(queue)
    default = float(queue.default_service_seconds)
    if len(samples) >= MIN_SAMPLES:
        return ServiceTime(statistics.fmean(samples), statistics.pstdev(samples), len(samples))
    # Thin: count the missing samples as the configured default.
    padded = samples + [default] * (MIN_SAMPLES - len(samples))
    return ServiceTime(statistics.fmean(padded), statistics.pstdev(padded), len(samples))


def service_seconds(queue: Queue) -> float:
    """Seconds one ticket takes at one counter, as far as we know."""
    return service_estimate(queue).mean


def counters_serving(queue: Queue | int) -> int:
    """Open counters that serve `queue` now; at least one (somebody will open).
    The one count of open counters: pages, the API and the live screens."""
    queue_id = queue if isinstance(queue, int) else queue.pk
    return max(1, Counter.objects.filter(queues=queue_id, state=CounterState.OPEN).count())


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
                  counters: int) -> timedelta | None:
    """The wait shown for the ticket at `position` (1 = next): the one formula
    behind the pages' first paint and the live screens' updates."""
    if position is None or not has_wait_estimate(queue):
        return None
    return timedelta(seconds=round(_expected_seconds(position, service_seconds, counters)))


def shown_minutes(wait: timedelta) -> int:
    """The whole minutes a wait is shown as (the words, the admin's range, and
    the live fragments' cache key, which must change exactly when the words do)."""
    return round(wait.total_seconds() / 60)


def _expected_seconds(position: int, service_seconds: float, counters: int) -> float:
    return max(0, position - 1) * service_seconds / max(1, counters)


def wait_range(queue: Queue, position: int) -> WaitRange:
    """Expected wait before being called for the ticket at `position` (1 = next)."""
    service = service_estimate(queue)
    counters = counters_serving(queue)
    ahead = max(0, position - 1)
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
