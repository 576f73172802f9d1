"""Statistics for managers: per queue and per location, per day or per hour of the day.

Everything is aggregated in the database (GROUP BY with Count/Avg/percentiles, see
`queueapp.dbfunctions`); Python only assembles the few result rows.

Definitions (also in docs/architecture.md):
- issued: tickets that entered the queue on those business days (joins and
  transfers in: a transferred person counts in each queue they stood in);
- served / no-shows / cancellations: tickets that ended completed / no-show
  (final, after the recall limit) / cancelled;
- wait: from taking the ticket to its (last) call, for every ticket that was
  called; a requeued no-show counts its whole time in line;
- ratings: feedback given after a visit (1-5), counted with the ticket's
  outcome (its business day, or the hour it ended), averaged;
- within target: of the tickets served in queues with a service target
  (`Queue.target_wait_minutes`), the share whose wait was within it;
- service: from the start of service (or the call, when nobody pressed
  *Start*) to completion, for completed tickets;
- throughput: per day, tickets served per hour between the first call and the
  last completion; per hour of the day, tickets served in that hour per day
  with activity;
- waitlist (capacity queues): confirmation rate = requests confirmed / requests;
  time to confirm = from the request to its confirmation; offer expiry rate =
  offers that expired / offers made (from the events).

Purged days (retention, `queueapp.services.retention`): before a day's tickets
are deleted, its per-day figures are stored as `DailySummary` rows computed by
this module; per day, those rows are read for summarised days instead of the
tickets. Per hour of the day, a summarised day brings its stored hour parts
(`DailySummary.hours`: counts, sums and the durations as a histogram of whole
seconds), merged with the kept days' parts read the same way; percentiles of
such a range come from the merged histogram (within a second of the exact
figure), everything else is exact.

Buckets: per day is the ticket's business day (the location's time zone); per
hour is the local hour the ticket was issued (issued, waits, waitlist), or
ended (served, no-shows, cancellations, service times, throughput), or the
event happened (offers).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db.models import Avg, Case, Count, F, FloatField, Max, Min, OuterRef, Q, QuerySet, Subquery, Sum, When
from django.db.models.functions import Coalesce, ExtractHour, Round, TruncDate
from django.utils import timezone

from .dbfunctions import PercentileCont, Seconds
from .models import Counter, CounterState, CounterStateChange, DailySummary, Location, Queue, QueueEvent, Ticket, TicketStatus
from .targets import served_within_target

By = Literal["day", "hour"]


@dataclass
class Figures:
    issued: int = 0
    served: int = 0
    no_shows: int = 0
    cancellations: int = 0
    wait_avg: float | None = None
    wait_median: float | None = None
    wait_p90: float | None = None
    service_avg: float | None = None
    service_median: float | None = None
    service_p90: float | None = None
    throughput_per_hour: float | None = None
    requests: int = 0
    confirmed: int = 0
    confirm_avg: float | None = None
    confirm_median: float | None = None
    offers: int = 0
    offers_expired: int = 0
    served_targeted: int = 0  # served in queues with a service target
    served_within_target: int = 0  # of those, called within their queue's target
    ratings: int = 0  # feedback given on the served tickets
    rating_sum: int = 0

    @property
    def no_show_rate(self) -> float | None:
        ended = self.served + self.no_shows
        return self.no_shows / ended if ended else None

    @property
    def confirmation_rate(self) -> float | None:
        return self.confirmed / self.requests if self.requests else None

    @property
    def offer_expiry_rate(self) -> float | None:
        return self.offers_expired / self.offers if self.offers else None

    @property
    def rating_avg(self) -> float | None:
        return self.rating_sum / self.ratings if self.ratings else None

    @property
    def within_target_rate(self) -> float | None:
        return self.served_within_target / self.served_targeted if self.served_targeted else None


@dataclass
class StatsRow:
    location: Location
    queue: Queue | None  # None: the whole location
    bucket: date | int  # a business day, or an hour of the day (0-23)
    figures: Figures = field(default_factory=Figures)


_FIGURE_NAMES = frozenset(f.name for f in fields(Figures))
CSV_COLUMNS = [f.name for f in fields(Figures)] + ["no_show_rate", "confirmation_rate", "offer_expiry_rate",
                                                  "within_target_rate", "rating_avg"]


def queue_stats(*, start: date, end: date, by: By = "day",
                locations: QuerySet[Location] | None = None, per_queue: bool = True) -> list[StatsRow]:
    """Figures per location (queue None) and, unless `per_queue` is False, per
    queue, per bucket, sorted by bucket (location total first).

    About ten aggregate queries per location, whatever the number of tickets.
    """
    if by not in ("day", "hour"):
        raise ValueError("by must be 'day' or 'hour'")
    rows: list[StatsRow] = []
    for location in (locations if locations is not None else Location.objects.all()).order_by("name"):
        rows += _location_stats(location, start, end, by, per_queue)
    return rows


def _location_stats(location: Location, start: date, end: date, by: By, per_queue: bool) -> list[StatsRow]:
    tz = ZoneInfo(location.timezone)
    queues = {q.pk: q for q in Queue.objects.filter(location=location)}
    # By queue ids, not a join: the (queue, business_day, number) index serves the range.
    tickets = Ticket.objects.filter(queue_id__in=list(queues), business_day__range=(start, end))
    capacity_ids = [pk for pk, q in queues.items() if q.kind == Queue.Kind.CAPACITY]
    arrival_figures = {**_ARRIVALS, "requests": Count("pk", filter=Q(queue_id__in=capacity_ids))}
    if by == "day":
        arrived, ended = F("business_day"), F("business_day")
        event_bucket = TruncDate("created_at", tzinfo=tz)
    else:
        arrived = ExtractHour("created_at", tzinfo=tz)
        ended = ExtractHour("finished_at", tzinfo=tz)
        event_bucket = ExtractHour("created_at", tzinfo=tz)
    events = _offer_events(queues, start, end, tz)
    summaries = list(DailySummary.objects.filter(location=location, day__range=(start, end)))
    if by == "hour" and summaries:
        return _hours_with_summaries(location, queues, start, end, summaries, per_queue)
    active_days = tickets.values("business_day").distinct().count() or 1
    summarised = {s.day for s in summaries}  # their tickets are (partly) gone: the summary is the day

    outcome_source = tickets.filter(finished_at__isnull=False) if by == "hour" else tickets
    table: dict[tuple, Figures] = defaultdict(Figures)
    for keys in ([["queue_id", "bucket"]] if per_queue else []) + [["bucket"]]:
        arrivals = tickets.annotate(bucket=arrived).values(*keys).annotate(**arrival_figures)
        outcomes = outcome_source.annotate(bucket=ended).values(*keys).annotate(**_OUTCOMES)
        offers = events.annotate(bucket=event_bucket).values(*keys).annotate(**_OFFERS)
        for query in (arrivals, outcomes, offers):
            for row in query.order_by():  # no ORDER BY: it would join the GROUP BY
                if row["bucket"] in summarised:
                    continue
                figures = table[(row.get("queue_id"), row["bucket"])]
                for name in _FIGURE_NAMES.intersection(row):
                    setattr(figures, name, row[name])
                if "served" in row:
                    figures.throughput_per_hour = _throughput(row, by, active_days)

    for summary in summaries:
        if summary.queue_id is None or per_queue:
            table[(summary.queue_id, summary.day)] = Figures(**summary.figures)

    result = [StatsRow(location, queues.get(queue_id), bucket, figures)
              for (queue_id, bucket), figures in table.items() if bucket is not None]
    result.sort(key=lambda r: (r.bucket, r.queue is not None, r.queue.name if r.queue else ""))
    return result


def _throughput(row: dict, by: By, active_days: int) -> float | None:
    served = row["served"]
    if not served:
        return None
    if by == "hour":
        return served / active_days
    first, last = row["first_call"], row["last_finish"]
    hours = (last - first).total_seconds() / 3600 if first and last else 0
    return served / hours if hours > 0 else None


_WAIT = Seconds("called_at", "created_at")
_CONFIRM = Seconds("confirmed_at", "created_at")
_SERVICE = Case(
    When(status=TicketStatus.COMPLETED,
         then=Seconds("finished_at", Coalesce("serving_at", "called_at"))),
    default=None, output_field=FloatField(),
)

_ARRIVALS = {
    "issued": Count("pk"),
    "wait_avg": Avg(_WAIT),
    "wait_median": PercentileCont(_WAIT, 0.5),
    "wait_p90": PercentileCont(_WAIT, 0.9),
    "confirmed": Count("pk", filter=Q(confirmed_at__isnull=False)),
    "confirm_avg": Avg(_CONFIRM),
    "confirm_median": PercentileCont(_CONFIRM, 0.5),
}
_OUTCOMES = {
    "served": Count("pk", filter=Q(status=TicketStatus.COMPLETED)),
    "no_shows": Count("pk", filter=Q(status=TicketStatus.NO_SHOW)),
    "cancellations": Count("pk", filter=Q(status=TicketStatus.CANCELLED)),
    "served_targeted": Count("pk", filter=Q(status=TicketStatus.COMPLETED, queue__target_wait_minutes__isnull=False)),
    "served_within_target": Count("pk", filter=Q(status=TicketStatus.COMPLETED) & served_within_target(_WAIT)),
    "ratings": Count("feedback"),
    "rating_sum": Coalesce(Sum("feedback__rating"), 0),
    "service_avg": Avg(_SERVICE),
    "service_median": PercentileCont(_SERVICE, 0.5),
    "service_p90": PercentileCont(_SERVICE, 0.9),
    "first_call": Min("called_at"),
    "last_finish": Max("finished_at", filter=Q(status=TicketStatus.COMPLETED)),
}
_OFFERS = {
    "offers": Count("pk", filter=Q(kind=QueueEvent.Kind.OFFERED)),
    "offers_expired": Count("pk", filter=Q(kind=QueueEvent.Kind.EXPIRED)),
}


def _offer_events(queues: dict, start: date, end: date, tz: ZoneInfo) -> QuerySet[QueueEvent]:
    return QueueEvent.objects.filter(
        queue_id__in=list(queues), kind__in=[QueueEvent.Kind.OFFERED, QueueEvent.Kind.EXPIRED],
        created_at__gte=datetime.combine(start, time(), tz),
        created_at__lt=datetime.combine(end + timedelta(days=1), time(), tz),
    )


def day_summaries(location: Location, start: date, end: date) -> list[DailySummary]:
    """Unsaved `DailySummary` rows of the days in [start, end] that have figures:
    the same per-day figures this module shows, and each day's hour parts, for
    the retention purge to keep."""
    rows = _location_stats(location, start, end, "day", per_queue=True)
    queues = {q.pk: q for q in Queue.objects.filter(location=location)}
    hours: dict[tuple, dict] = defaultdict(dict)
    for (queue_id, day, hour), part in _hour_parts(location, queues, start, end, per_day=True).items():
        hours[(queue_id, day)][str(hour)] = part
    return [DailySummary(location=location, queue=row.queue, day=row.bucket,
                         figures={name: getattr(row.figures, name) for name in _FIGURE_NAMES},
                         hours=hours.get((row.queue.pk if row.queue else None, row.bucket), {}))
            for row in rows]


# --- hour of the day through a purge ---------------------------------------------
# A part is what one bucket's figures are made of, in a form that adds up across
# days: counts, and per duration its sum and a histogram of whole seconds
# ({"<seconds>": count}). Stored in `DailySummary.hours`, read from the tickets
# for kept days; `_figures_of` turns merged parts into Figures.
_COUNTS = ("issued", "requests", "confirmed", "served", "no_shows", "cancellations", "offers", "offers_expired",
           "served_targeted", "served_within_target", "ratings", "rating_sum")
# duration -> (its expression, the time its hour is taken from, its Figures fields)
_DURATIONS = {
    "wait": (_WAIT, "created_at", ("wait_avg", "wait_median", "wait_p90")),
    "confirm": (_CONFIRM, "created_at", ("confirm_avg", "confirm_median", None)),
    "service": (_SERVICE, "finished_at", ("service_avg", "service_median", "service_p90")),
}


def _hour_parts(location: Location, queues: dict, start: date, end: date, *, per_day: bool,
                skip_days=frozenset(), per_queue: bool = True) -> dict[tuple, dict]:
    """Parts per (queue id or None, day or None, hour) of the days in [start,
    end] but `skip_days`: about a dozen aggregate queries, whatever the number of tickets."""
    tz = ZoneInfo(location.timezone)
    capacity_ids = [pk for pk, q in queues.items() if q.kind == Queue.Kind.CAPACITY]
    tickets = (Ticket.objects.filter(queue_id__in=list(queues), business_day__range=(start, end))
               .exclude(business_day__in=skip_days).annotate(day=F("business_day")))
    events = (_offer_events(queues, start, end, tz).annotate(day=TruncDate("created_at", tzinfo=tz))
              .exclude(day__in=skip_days))
    parts: dict[tuple, dict] = defaultdict(dict)

    def add(query, keys):
        for row in query.values(*keys).annotate(**figures).order_by():
            key = (row.get("queue_id"), row.get("day"), row["hour"])
            if key[2] is not None:
                yield parts[key], row

    for keys in ([["queue_id"]] if per_queue else []) + [[]]:
        keys = keys + (["day"] if per_day else []) + ["hour"]
        figures = {"issued": Count("pk"), "requests": Count("pk", filter=Q(queue_id__in=capacity_ids)),
                   "confirmed": Count("pk", filter=Q(confirmed_at__isnull=False))}
        for part, row in add(tickets.annotate(hour=ExtractHour("created_at", tzinfo=tz)), keys):
            part.update({k: row[k] for k in figures})
        figures = {k: v for k, v in _OUTCOMES.items() if k in _COUNTS}
        for part, row in add(tickets.filter(finished_at__isnull=False)
                             .annotate(hour=ExtractHour("finished_at", tzinfo=tz)), keys):
            part.update({k: row[k] for k in figures})
        figures = _OFFERS
        for part, row in add(events.annotate(hour=ExtractHour("created_at", tzinfo=tz)), keys):
            part.update({k: row[k] for k in figures})
        for name, (expression, hour_of, _) in _DURATIONS.items():
            timed = (tickets.annotate(hour=ExtractHour(hour_of, tzinfo=tz), seconds=Round(expression))
                     .filter(seconds__isnull=False))
            figures = {"n": Count("pk")}
            for part, row in add(timed, keys + ["seconds"]):
                hist = part.setdefault(name, {"sum": 0.0, "hist": {}})["hist"]
                hist[str(int(row["seconds"]))] = row["n"]
            figures = {"total": Sum(expression)}
            for part, row in add(timed, keys):
                part.setdefault(name, {"sum": 0.0, "hist": {}})["sum"] = row["total"]
    return parts


def _merge(into: dict, part: dict) -> None:
    for name in _COUNTS:
        into[name] = into.get(name, 0) + part.get(name, 0)
    for name in _DURATIONS:
        if name in part:
            mine = into.setdefault(name, {"sum": 0.0, "hist": {}})
            mine["sum"] += part[name]["sum"]
            for seconds, n in part[name]["hist"].items():
                mine["hist"][seconds] = mine["hist"].get(seconds, 0) + n


def _hist_percentile(hist: dict[str, int], fraction: float) -> float:
    """percentile_cont over the histogram's values: interpolated between the two
    nearest ranks, as the database computes it from the samples."""
    values = sorted((int(seconds), n) for seconds, n in hist.items())
    rank = fraction * (sum(n for _, n in values) - 1)
    low, high = math.floor(rank), math.ceil(rank)

    def at(index: int) -> int:
        seen = 0
        for value, n in values:
            seen += n
            if index < seen:
                return value
        return values[-1][0]

    return at(low) + (at(high) - at(low)) * (rank - low)


def _figures_of(part: dict, active_days: int) -> Figures:
    figures = Figures(**{name: part.get(name, 0) for name in _COUNTS})
    for name, (_, _, (avg, median, p90)) in _DURATIONS.items():
        timed = part.get(name)
        n = sum(timed["hist"].values()) if timed else 0
        if n:
            setattr(figures, avg, timed["sum"] / n)
            setattr(figures, median, _hist_percentile(timed["hist"], 0.5))
            if p90:
                setattr(figures, p90, _hist_percentile(timed["hist"], 0.9))
    figures.throughput_per_hour = figures.served / active_days if figures.served else None
    return figures


def _hours_with_summaries(location: Location, queues: dict, start: date, end: date,
                          summaries: list[DailySummary], per_queue: bool) -> list[StatsRow]:
    summarised = {s.day for s in summaries}
    table: dict[tuple, dict] = defaultdict(dict)
    for (queue_id, _, hour), part in _hour_parts(location, queues, start, end, per_day=False,
                                                  skip_days=summarised, per_queue=per_queue).items():
        _merge(table[(queue_id, hour)], part)
    for summary in summaries:
        if summary.queue_id is None or per_queue:
            for hour, part in summary.hours.items():
                _merge(table[(summary.queue_id, int(hour))], part)
    kept_days = (Ticket.objects.filter(queue_id__in=list(queues), business_day__range=(start, end))
                 .exclude(business_day__in=summarised).values("business_day").distinct().count())
    active_days = kept_days + sum(1 for s in summaries if s.queue_id is None and s.figures.get("issued"))
    result = [StatsRow(location, queues.get(queue_id), hour, _figures_of(part, active_days or 1))
              for (queue_id, hour), part in table.items()]
    result.sort(key=lambda r: (r.bucket, r.queue is not None, r.queue.name if r.queue else ""))
    return result


# --- per counter and per staff member ------------------------------------------

@dataclass
class DeskRow:
    """One counter's or one staff member's figures over a range of business days."""

    kind: Literal["counter", "staff"]
    name: str
    served: int = 0
    service_seconds: float = 0.0  # the sum of their tickets' service times
    ratings: int = 0
    rating_sum: int = 0
    # From the counters' state history (`CounterStateChange`); None: no history in the range.
    open_seconds: float | None = None
    break_seconds: float | None = None

    @property
    def service_avg(self) -> float | None:
        return self.service_seconds / self.served if self.served else None

    @property
    def idle_seconds(self) -> float | None:
        """Open but serving nobody: time open minus the service times."""
        return None if self.open_seconds is None else max(0.0, self.open_seconds - self.service_seconds)

    @property
    def rating_avg(self) -> float | None:
        return self.rating_sum / self.ratings if self.ratings else None


DESK_CSV_COLUMNS = ["served", "service_avg", "ratings", "rating_avg", "open_seconds", "break_seconds",
                    "idle_seconds"]


def desk_stats(location: Location, start: date, end: date, *, now: datetime | None = None) -> list[DeskRow]:
    """Figures per counter, then per staff member, of the tickets completed on
    business days [start, end] at `location`, from their COMPLETED events (the
    counter and the person who completed: `QueueEvent.counter`, `.actor`).
    Service time and ratings as in `queue_stats`. Time open, on a break and
    idle (open minus serving) from the counters' state history
    (`_state_times`). A handful of queries, whatever the number of tickets.

    Counters without a completion are listed with zeros; a completion without
    a signed-in person (none so far: every completion is a staff action) is
    counted under "nobody signed in"."""
    queue_ids = list(Queue.objects.filter(location=location).values_list("pk", flat=True))
    completions = QueueEvent.objects.filter(queue_id__in=queue_ids, kind=QueueEvent.Kind.COMPLETED,
                                            ticket__business_day__range=(start, end))
    figures = {"served": Count("pk"),
               "service": Coalesce(Sum(Seconds("ticket__finished_at",
                                               Coalesce("ticket__serving_at", "ticket__called_at"))), 0.0),
               "ratings": Count("ticket__feedback"),
               "rating_sum": Coalesce(Sum("ticket__feedback__rating"), 0)}

    def fill(row: DeskRow, got: dict) -> DeskRow:
        row.served, row.service_seconds = got["served"], got["service"]
        row.ratings, row.rating_sum = got["ratings"], got["rating_sum"]
        return row

    empty = {"served": 0, "service": 0.0, "ratings": 0, "rating_sum": 0}
    counters = list(Counter.objects.filter(location=location).order_by("name"))
    times, staff_times = _state_times(location, [c.pk for c in counters], start, end, now or timezone.now())

    def timed(row: DeskRow, spent: dict | None) -> DeskRow:
        if spent:
            row.open_seconds = spent.get(CounterState.OPEN, 0.0)
            row.break_seconds = spent.get(CounterState.BREAK, 0.0)
        return row

    by_counter = {r["counter_id"]: r for r in completions.values("counter_id").annotate(**figures).order_by()}
    rows = [timed(fill(DeskRow("counter", c.name), by_counter.get(c.pk, empty)), times.get(c.pk))
            for c in counters]
    by_person = {r["actor_id"]: r for r in completions.values("actor_id").annotate(**figures).order_by()}
    ids = set(by_person) | set(staff_times)
    people = {u.pk: u for u in get_user_model().objects.filter(pk__in=[i for i in ids if i is not None])}
    staff = [timed(fill(DeskRow("staff", _person(people.get(pk))), by_person.get(pk, empty)), staff_times.get(pk))
             for pk in ids]
    return rows + sorted(staff, key=lambda r: r.name)


def _state_times(location: Location, counters: list[int], start: date, end: date, now: datetime):
    """Seconds per (counter, state) and per (staff member, state) within business
    days [start, end] (the location's midnights, up to `now`), from the append-only
    history `CounterStateChange`: each row lasts until the counter's next row; the
    state at the range's start is the last row before it (none: the first row's
    `previous_state`). A staff member's time is that of the states they set."""
    tz = ZoneInfo(location.timezone)
    since = datetime.combine(start, time(), tz)
    until = min(datetime.combine(end + timedelta(days=1), time(), tz), now)
    by_counter: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    by_staff: dict[int | None, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    if until <= since:
        return by_counter, by_staff
    earlier = CounterStateChange.objects.filter(counter=OuterRef("pk"), at__lt=since).order_by("-at", "-pk")
    before = {pk: (state, staff) for pk, state, staff in Counter.objects.filter(pk__in=counters).annotate(
        state_before=Subquery(earlier.values("state")[:1]), staff_before=Subquery(earlier.values("staff_id")[:1]))
        .values_list("pk", "state_before", "staff_before")}
    rows = defaultdict(list)
    for row in CounterStateChange.objects.filter(counter_id__in=counters, at__gte=since, at__lt=until).order_by(
            "counter_id", "at", "pk"):
        rows[row.counter_id].append(row)
    for pk in counters:
        state, staff = before.get(pk, (None, None))
        if state is None and rows[pk]:
            state = rows[pk][0].previous_state
        at = since
        for row in rows[pk] + [None]:
            upto = row.at if row is not None else until
            if state is not None:
                by_counter[pk][state] += (upto - at).total_seconds()
                by_staff[staff][state] += (upto - at).total_seconds()
            if row is not None:
                state, staff, at = row.state, row.staff_id, row.at
    return by_counter, by_staff


def _person(user) -> str:
    if user is None:
        return "nobody signed in"
    return user.get_full_name() or user.get_username()


def desk_csv_rows(rows: list[DeskRow]):
    for row in rows:
        yield [row.kind, row.name, *(_round(getattr(row, name)) for name in DESK_CSV_COLUMNS)]


def desk_csv_header() -> list[str]:
    return ["kind", "name", *DESK_CSV_COLUMNS]


def csv_rows(rows: list[StatsRow]):
    """Rows for the CSV download, in the order of `csv_header`."""
    for row in rows:
        f = row.figures
        yield [row.location.slug, row.queue.slug if row.queue else "", row.bucket,
               *(_round(getattr(f, name)) for name in CSV_COLUMNS)]


def csv_header(by: By) -> list[str]:
    return ["location", "queue", by, *CSV_COLUMNS]


def _round(value):
    return round(value, 3) if isinstance(value, float) else value
