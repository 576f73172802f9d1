"""The few database reads behind the live screens (sync; consumers wrap them).

Each returns plain data with the queue version(s) it reflects, so a screen
knows which events it has already seen. Kept to a handful of indexed queries:
a reconnect burst of thousands of screens runs these one after another on the
process's database thread.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import SimpleNamespace

from django.db.models import Count, Min
from django.utils import timezone

from .. import access
from ..errors import NotFound, PermissionDenied
from ..calling import Rule
from ..estimates import counters_serving, expected_wait, service_seconds
from ..events import event_message, instant_us
from ..models import (
    AT_COUNTER,
    Counter,
    Location,
    Queue,
    QueueEvent,
    StaffPreference,
    Ticket,
    TicketStatus,
    missed_call_sentence,
)
from ..selectors import may_be_overtaken, overtakes, placed_ahead, position_at, transfer_chains, waiting_tickets
from ..targets import passes_at, past_target
from .batch import line_key

READ_ATTEMPTS = 5  # re-reads while events keep committing between a read's queries
CATCH_UP_LIMIT = 200  # more missed events than this: take a fresh snapshot instead
WAITING_SHOWN = 50  # waiting tickets listed per queue on a console feed
LAST_CALLS_SHOWN = 8  # tickets under "Last calls" on the lobby display
CALL_EVENTS_READ = 64  # recalls repeat a ticket: read enough calls to fill the list


@dataclass
class TicketView:
    """What a patient screen shows; duck-types the Ticket attributes the template uses."""

    ticket_id: int
    token: str
    queue_id: int
    display_number: str
    status: str
    priority: int
    seq: int
    call_count: int
    party_size: int
    counter: SimpleNamespace | None
    queue: SimpleNamespace
    offer_expires_at: datetime | None = None
    # Not ticket attributes: what the estimate needs (`estimates.expected_wait`,
    # the formula of the pages too), and the version shown.
    position: int | None = None
    service_seconds: float = 0.0
    open_counters: float = 1
    version: int = 0
    followed_from: str | None = field(default=None)
    language: str = "en"  # the holder's (Ticket.language): the fragment is rendered in it
    missed_call: str = ""  # models.missed_call_sentence: a ticket back in line after a missed call
    # When it took its place (`queued_at`, `events.instant_us`), and the keys of the
    # waiting tickets placed ahead of it since with a higher priority
    # (`selectors.placed_ahead`): kept from the events' `entered`/`left` keys.
    queued_at: datetime | None = None
    entered_at: int = 0
    overtaken_by: set = field(default_factory=set)

    @property
    def key(self) -> tuple[int, int]:
        return (self.priority, self.seq)

    def own_copy(self) -> TicketView:
        """A copy for one screen to update: a batched lookup answers every screen
        of the same token with one view, and each screen changes its view as
        events arrive (the position, the version it has shown, the seats free)."""
        return replace(self, queue=SimpleNamespace(**vars(self.queue)), overtaken_by=set(self.overtaken_by))

    @property
    def placed_ahead(self) -> bool:
        """Whether the page says that someone was placed ahead (the fragment's `placed_ahead`)."""
        return bool(self.overtaken_by)

    def get_status_display(self) -> str:
        return TicketStatus(self.status).label

    @property
    def estimated_wait(self) -> timedelta | None:
        return expected_wait(queue=self.queue, position=self.position,
                             service_seconds=self.service_seconds, counters=self.open_counters)


def view_of(ticket: Ticket, queue: Queue) -> TicketView:
    """The screen's view of `ticket` in `queue` (loaded with its location), without a position."""
    return TicketView(
        ticket_id=ticket.pk, token=ticket.token, queue_id=queue.pk,
        display_number=ticket.display_number, status=ticket.status, priority=ticket.priority,
        seq=ticket.seq, call_count=ticket.call_count, party_size=ticket.party_size,
        counter=SimpleNamespace(name=ticket.counter.name) if ticket.counter_id else None,
        queue=SimpleNamespace(name=queue.name, prefix=queue.prefix, pk=queue.pk,
                              location=SimpleNamespace(timezone=queue.location.timezone),
                              kind=queue.kind, room_slug=queue.room_slug, service_date=queue.service_date,
                              # Waitlists say how many seats are free (events update it).
                              seats_free=queue.seats_free if queue.kind == Queue.Kind.CAPACITY
                              and queue.room_slug is None else None),
        offer_expires_at=ticket.offer_expires_at, language=ticket.language,
        queued_at=ticket.queued_at, entered_at=instant_us(ticket.queued_at),
        missed_call=missed_call_sentence(status=ticket.status, no_show_count=ticket.no_show_count,
                                         recall_limit=queue.recall_limit, called_at=ticket.called_at,
                                         tz=queue.location.timezone),
    )


LIVE_TICKET_RELATED = ("queue__location", "queue__waiting_room", "counter")


def ticket_row_views(tokens) -> dict[str, TicketView | None]:
    """The tickets behind `tokens` as of their queues' versions, without positions.

    One query for the whole batch (a burst of screens connecting shares it),
    plus one per hop for the rare ticket that was transferred: the screen shows
    the ticket its holder now has (`selectors.transfer_chains`, the one place
    that follows transfers). The status and the version come from one row
    join, so they agree.
    """
    tokens = list(tokens)
    rows = {t.token: t for t in Ticket.objects.select_related(*LIVE_TICKET_RELATED).filter(token__in=set(tokens))}
    chains = transfer_chains(rows.values(), related=LIVE_TICKET_RELATED)
    found: dict[str, TicketView | None] = {}
    for token in tokens:
        if token not in rows:
            found[token] = None
            continue
        ticket = chains[rows[token].pk][-1]
        view = found[token] = view_of(ticket, ticket.queue)
        view.version = ticket.queue.version
        if ticket.token != token:
            view.followed_from = token
    return found


def ticket_row_view(token: str) -> TicketView | None:
    """`ticket_row_views` for one token."""
    return ticket_row_views([token]).get(token)


def ticket_view(token: str) -> TicketView | None:
    """The ticket behind a token, its position and the version both reflect.

    Reads the queue row again after the position count and retries if an
    event committed in between, so the position is exactly that of the version
    recorded (the screen then applies later events as deltas). That one re-read
    also serves the wait's service time.
    """
    for _attempt in range(READ_ATTEMPTS):
        view = ticket_row_view(token)
        if view is None or view.status != TicketStatus.WAITING:
            return view
        position = position_at(view.queue_id, view.priority, view.seq)
        queue = Queue.objects.select_related("waiting_room").get(pk=view.queue_id)
        if queue.version == view.version:
            # Who was placed ahead is read after the check: the events the screen
            # applies next add and remove those keys again, to the same set.
            return place_in_line(view, queue, position=position)
    return view  # the queue kept moving; the screen catches up from the events


def place_in_line(view: TicketView, queue: Queue, *, position: int | None = None,
                  stays: list[float] | None = None) -> TicketView:
    """A waiting ticket's place in its line and what its wait needs: the
    position (`position` when the caller has it, else the one count), who was
    placed ahead of it, the open counters and the service time (`stays`: a
    room's recent stays when the caller has read them). The one read behind
    the socket's first view (`ticket_view`) and the waiting room's page
    (`pages.waiting_room_page`). `queue`: the ticket's queue with its waiting room."""
    if position is None:
        position = position_at(queue.pk, view.priority, view.seq)
    view.position = position
    view.overtaken_by = (set(placed_ahead(queue.pk, view.priority, view.queued_at).values_list("priority", "seq"))
                         if may_be_overtaken(queue) else set())
    view.open_counters = counters_serving(queue)
    view.service_seconds = service_seconds(queue, stays=stays)
    return view


@dataclass
class WaitingLine:
    """A queue's waiting keys in serving order, as (-priority, seq): a position is a bisect."""

    keys: list[tuple[int, int]]
    open_counters: float
    service_seconds: float
    entered: list[int] = field(default_factory=list)  # each key's `queued_at` (`events.instant_us`)

    def position(self, priority: int, seq: int) -> int | None:
        key = (-priority, seq)
        index = bisect_left(self.keys, key)
        return index + 1 if index < len(self.keys) and self.keys[index] == key else None

    def advanced(self, messages: list[dict]) -> WaitingLine | None:
        """The line after `messages` (the queue's next events, in version
        order), from the keys they say left and entered, as every screen
        applies them; None if one does not fit (a key that leaves but is not
        here, one that enters twice or without its instant): read it instead."""
        keys, entered = list(self.keys), list(self.entered)
        counters, seconds = self.open_counters, self.service_seconds
        for message in messages:
            if (left := message.get("left")) is not None:
                key = line_key(left)
                index = bisect_left(keys, key)
                if index == len(keys) or keys[index] != key:
                    return None
                del keys[index], entered[index]
            if (came := message.get("entered")) is not None:
                key = line_key(came)
                index = bisect_left(keys, key)
                if (index < len(keys) and keys[index] == key) or not isinstance(message.get("entered_at"), int):
                    return None
                keys.insert(index, key)
                entered.insert(index, message["entered_at"])
            counters = message.get("open_counters", counters)
            seconds = message.get("service_seconds", seconds)
        return WaitingLine(keys, counters, seconds, entered)

    def overtaking(self, priority: int, entered_at: int) -> set[tuple[int, int]]:
        """`selectors.placed_ahead` of a ticket with this priority and `queued_at`:
        only the higher priorities at the head of the line are looked at."""
        higher = bisect_left(self.keys, (-priority, float("-inf")))
        return {(-p, seq) for (p, seq), at in zip(self.keys[:higher], self.entered[:higher])
                if overtakes(-p, at, of_priority=priority, of_entered_at=entered_at)}


def waiting_line(queue_id: int, previous=None) -> tuple[dict[int, int], WaitingLine]:
    """The waiting line of a queue and its version (one query when the version is
    unchanged since `previous`, else three). Shared by every screen of the queue
    that connects meanwhile, instead of one position count per screen."""
    for _attempt in range(READ_ATTEMPTS):
        queue = Queue.objects.filter(pk=queue_id).first()
        version = queue.version if queue else 0
        if previous is not None and previous.versions.get(queue_id) == version:
            return previous.versions, previous.value
        rows = list(waiting_tickets(queue_id).values_list("priority", "seq", "queued_at"))
        keys, entered = [(-p, s) for p, s, _ in rows], [instant_us(at) for _, _, at in rows]
        counters = counters_serving(queue_id)
        seconds = service_seconds(queue) if queue else 0.0
        if Queue.objects.filter(pk=queue_id).values_list("version", flat=True).first() == version:
            break
    return {queue_id: version}, WaitingLine(keys, counters, seconds, entered)


def event_messages(queue_id: int, after_version: int) -> list[dict] | None:
    """Events of a queue after `after_version`, shaped like the published messages.

    None when more than CATCH_UP_LIMIT were missed (take a snapshot instead).
    Versions commit in order under the queue lock, so this is a gapless run.
    """
    rows = list(
        QueueEvent.objects.filter(queue_id=queue_id, version__gt=after_version)
        .order_by("version")
        .values("version", "kind", "created_at", "data", "queue__location_id")[:CATCH_UP_LIMIT + 1]
    )
    if len(rows) > CATCH_UP_LIMIT:
        return None
    return [event_message(queue_id=queue_id, location_id=r["queue__location_id"], version=r["version"],
                          kind=r["kind"], at=r["created_at"], data=r["data"]) for r in rows]


def queue_versions(queue_ids=None) -> dict[int, int]:
    """Current version of each queue (of `queue_ids`, or all): what the tick sends."""
    qs = Queue.objects.all()
    if queue_ids is not None:
        qs = qs.filter(pk__in=list(queue_ids))
    return dict(qs.values_list("pk", "version"))


def location_by_slug(slug: str) -> Location | None:
    return Location.objects.filter(slug=slug).first()


@dataclass(frozen=True)
class Screen:
    """What a shared screen (lobby display, staff console) shows: its key
    (location or counter id) and the queues whose events reach it."""

    key: int
    queue_ids: list[int]
    language: str = ""  # the location's (display); a console's staff preference, "" for none


def display_screens(slugs) -> dict[str, Screen | None]:
    """The lobby displays behind location `slugs` (None: no such location), two
    queries for a whole burst of displays connecting (`Hub.displays`)."""
    rows = Location.objects.filter(slug__in=set(slugs)).values_list("slug", "pk", "default_language")
    locations = {slug: pk for slug, pk, _ in rows}
    languages = {pk: language for _, pk, language in rows}
    queues: dict[int, list[int]] = {}
    for location_id, queue_id in (Queue.objects.filter(location_id__in=set(locations.values()))
                                  .order_by("pk").values_list("location_id", "pk")):
        queues.setdefault(location_id, []).append(queue_id)
    return {slug: Screen(locations[slug], queues.get(locations[slug], []), languages[locations[slug]])
            if slug in locations else None for slug in slugs}


def console_screens(asks) -> dict[tuple, Screen | Exception]:
    """The consoles asked for as (user, counter_id): each one's access check
    (`access.access_counter`: NotFound or PermissionDenied is returned, not
    raised, so one refusal does not fail the batch) and the counters' queues,
    in one database hop for a whole burst (`Hub.consoles`)."""
    checked: dict[tuple, Screen | Exception] = {}
    allowed: dict[tuple, int] = {}
    for user, counter_id in asks:
        try:
            allowed[(user, counter_id)] = access.access_counter(user, counter_id).pk
        except (NotFound, PermissionDenied) as refusal:
            checked[(user, counter_id)] = refusal
    queues: dict[int, list[int]] = {}
    for counter_id, queue_id in (Counter.queues.through.objects.filter(counter_id__in=set(allowed.values()))
                                 .order_by("queue_id").values_list("counter_id", "queue_id")):
        queues.setdefault(counter_id, []).append(queue_id)
    chosen = dict(StaffPreference.objects.filter(user__in={user.pk for user, _ in allowed})
                  .values_list("user_id", "language"))
    for ask, counter_id in allowed.items():
        checked[ask] = Screen(counter_id, queues.get(counter_id, []), chosen.get(ask[0].pk, ""))
    return checked


def display_context(location_id: int) -> dict:
    """The lobby board: now serving per counter, last calls, waiting per queue.

    Versions are read first: the data is then at least that new, and a later
    event that the data already shows only causes one extra refresh.
    """
    queues = list(Queue.objects.filter(location_id=location_id).order_by("name"))
    versions = {q.pk: q.version for q in queues}
    ids = list(versions)
    waiting, longest = {}, {}
    for queue_id, n, since in (Ticket.objects.filter(queue_id__in=ids, status=TicketStatus.WAITING)
                               .values_list("queue_id").annotate(n=Count("id"), since=Min("queued_at"))
                               .values_list("queue_id", "n", "since")):
        waiting[queue_id], longest[queue_id] = n, since
    now = timezone.now()
    active = {t.counter_id: t for t in Ticket.objects.filter(queue_id__in=ids, status__in=AT_COUNTER)
              .select_related("queue")}
    # Every counter has a tile: its ticket, or why it calls nobody ("On break", "Closed").
    counters = [
        {"name": c.name, "ticket": active.get(c.pk), "state": c.state, "state_words": c.state_words}
        for c in Counter.objects.filter(location_id=location_id).order_by("name")
    ]
    calls = list(
        QueueEvent.objects.filter(queue_id__in=ids, kind__in=[QueueEvent.Kind.CALLED, QueueEvent.Kind.RECALLED])
        .select_related("ticket__queue", "counter").order_by("-created_at", "-pk")[:CALL_EVENTS_READ]
    )
    return {
        "versions": versions,
        # Flagged when the longest wait is past the queue's target (`targets`);
        # `passes_at` lets the board flag it when that moment comes between pushes.
        "queues": [{"queue": q, "waiting": waiting.get(q.pk, 0),
                    "past_target": q.pk in longest and past_target(q, longest[q.pk], now),
                    "passes_at": passes_at(q, longest[q.pk]) if q.pk in longest else None}
                   for q in queues],
        "counters": counters,
        "last_calls": last_calls(calls),
        "announce": _banner(calls[0]) if calls else None,
    }


def last_calls(calls: list[QueueEvent]) -> list[QueueEvent]:
    """One row per ticket, newest call first: a recall marks the ticket's row
    (`recalled`) instead of adding another."""
    rows: dict[int, QueueEvent] = {}
    for event in calls:  # newest first: the first event seen of a ticket is its latest call
        if event.ticket_id not in rows:
            event.recalled = event.kind == QueueEvent.Kind.RECALLED
            rows[event.ticket_id] = event
            if len(rows) == LAST_CALLS_SHOWN:
                break
    return list(rows.values())


def _banner(event: QueueEvent) -> dict | None:
    """The latest call as its published message (what `render.display_announce`
    takes), or None once that ticket was transferred away: the lobby must not
    keep sending someone to a counter that no longer expects them."""
    if event.ticket is not None and event.ticket.status == TicketStatus.TRANSFERRED:
        return None
    return {"queue": event.queue_id, "version": event.version, "kind": event.kind,
            "ticket": event.data.get("ticket") or {}}


def console_context(counter_id: int) -> dict:
    """A counter's feed: the waiting line of each queue it serves, and who every
    counter of the location is serving."""
    counter = Counter.objects.select_related("location").get(pk=counter_id)
    queues = list(counter.queues.order_by("name"))
    versions = {q.pk: q.version for q in queues}
    now = timezone.now()
    lines = []
    for q in queues:
        shown = list(waiting_tickets(q)[:WAITING_SHOWN])
        total = waiting_tickets(q).count() if len(shown) == WAITING_SHOWN else len(shown)
        for t in shown:
            t.queue = q
            t.waited = now - t.queued_at
            t.past_target, t.passes_at = past_target(q, t.queued_at, now), passes_at(q, t.queued_at)
        lines.append({"queue": q, "tickets": shown, "total": total, "rule": Rule.of(q).describe()})
    active = {t.counter_id: t for t in Ticket.objects.filter(
        queue__location_id=counter.location_id, status__in=AT_COUNTER).select_related("queue")}
    counters = [{"counter": c, "ticket": active.get(c.pk)}
                for c in Counter.objects.filter(location_id=counter.location_id).order_by("name")]
    return {"versions": versions, "counter": counter, "lines": lines, "counters": counters}
