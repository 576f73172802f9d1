"""Reads: positions, waiting lists, estimates. Nothing here writes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connections, router
from django.db.models import Q, QuerySet, Subquery

from .dbfunctions import CompiledSelect
from .estimates import (counter_shares, counters_from_shares, has_wait_estimate, recent_services, recent_since,
                        service_samples, wait_range)
from .models import Queue, Ticket, TicketStatus, WaitingCount


def waiting_tickets(queue: Queue | int) -> QuerySet[Ticket]:
    """The waiting line of a queue in serving order (uses ticket_waiting_order_idx)."""
    queue_id = queue if isinstance(queue, int) else queue.pk
    return Ticket.objects.filter(queue_id=queue_id, status=TicketStatus.WAITING).order_by("-priority", "seq")


def is_waiting_room(queue: Queue) -> bool:
    """A capacity queue in front of another site (`WaitingRoom`): admits at its rate only."""
    return queue.room_slug is not None


def open_offer_count(queue: Queue) -> int:
    return Ticket.objects.filter(queue_id=queue.pk, status=TicketStatus.OFFERED).count()


def next_admissible(queue: Queue) -> Ticket | None:
    """The waiting request a capacity queue's free seats would take next.

    Strict order: the head, if it fits. With `allow_skip`: the first request
    in line that fits (see queueapp.services.waitlist for the whole rule).
    """
    if queue.seats_free <= 0:
        return None
    line = waiting_tickets(queue)
    if queue.allow_skip:
        return line.filter(party_size__lte=queue.seats_free).first()
    head = line.first()
    return head if head is not None and head.party_size <= queue.seats_free else None


def plan_admissions(queue: Queue, *, budget: int | None = None) -> list[Ticket]:
    """The waiting requests one admission cycle takes now, in order (a read: the
    service `admit_locked` admits exactly these, and staff's board says so
    before they press *Confirm the waitlist*).

    Strict order: from the head while each fits the seats still free. With
    `allow_skip`: every request in line order that fits what is still free.
    At most `budget` (the cycle's batch) and the offer slots left.
    """
    free = queue.seats_free
    if queue.offer_seconds and queue.max_open_offers is not None:
        slots = queue.max_open_offers - open_offer_count(queue)
        budget = slots if budget is None else min(budget, slots)
    if free <= 0 or (budget is not None and budget <= 0):
        return []
    line = waiting_tickets(queue)
    if queue.allow_skip:
        line = line.filter(party_size__lte=free)
    plan: list[Ticket] = []
    chunk, offset = 100, 0
    while True:  # in slices, not .iterator(): a server-side cursor left open breaks the connection
        rows = list(line[offset:offset + chunk])
        for ticket in rows:
            if ticket.party_size <= free:
                plan.append(ticket)
                free -= ticket.party_size
            elif not queue.allow_skip:
                return plan
            if free <= 0 or (budget is not None and len(plan) >= budget):
                return plan
        if len(rows) < chunk:
            return plan
        offset += chunk


def ahead_of(priority: int, seq: int) -> Q:
    """Tickets that stand before the key (priority, seq): the ordering rule."""
    return Q(priority__gt=priority) | Q(priority=priority, seq__lt=seq)


def is_ahead(key: tuple[int, int], of: tuple[int, int]) -> bool:
    """The same rule in Python, for screens that update without a query."""
    return key[0] > of[0] or (key[0] == of[0] and key[1] < of[1])


def placed_ahead(queue_id: int, priority: int, queued_at) -> QuerySet[Ticket]:
    """The waiting tickets of the queue that took their place after `queued_at`
    with a higher priority than `priority`, so stand ahead of a ticket with
    those (why its position went up: its page says so). An index range of
    the waiting line (`ticket_waiting_order_idx`: the higher priorities come
    first), no history read; `overtakes` is the same rule for the live screens."""
    return waiting_tickets(queue_id).filter(priority__gt=priority, queued_at__gt=queued_at)


def may_be_overtaken(queue) -> bool:
    """Whether anyone can be `placed_ahead` of a waiting ticket of `queue` (a
    `Queue` or the live screens' copy): not in a waiting room, whose visitors all
    have one priority (`services.rooms` places them; `do_join` refuses a room),
    so its pages skip that read."""
    return queue.room_slug is None


def overtakes(priority: int, entered_at: int, *, of_priority: int, of_entered_at: int) -> bool:
    """`placed_ahead` in Python, on `events.instant_us` instants: the live
    screens decide it from an event's `entered`/`entered_at` without a query."""
    return priority > of_priority and entered_at > of_entered_at


def position_at(queue_id: int, priority: int, seq: int) -> int:
    """The place in line of the waiting ticket with this ordering key (1 = next):
    the one count behind every position a page, the API or a live screen shows."""
    return waiting_tickets(queue_id).filter(ahead_of(priority, seq)).count() + 1


def room_position_sql(seq_sql: str) -> str:
    """A waiting room's `position_at` by arithmetic, as an SQL expression for
    the waiting ticket whose `seq` the query `seq_sql` selects (its
    parameters first, then the queue's id): its seq minus the head's,
    plus one, minus the tickets between them that left the line. Equal to the
    count because a room's places are numbered without gaps (each place is
    `last_seq + 1`, taken with its ticket in one statement, `services.rooms`),
    every visitor has one priority, and the head and the leavers are read in
    one snapshot. Two index probes (the head in ticket_waiting_order_idx, the
    leavers in a range of ticket_left_line_idx) instead of counting the line:
    10,000 waiting cost each arrival a count of up to 10,000 index entries."""
    table = Ticket._meta.db_table
    waiting = f"'{TicketStatus.WAITING.value}'"
    return (f"(SELECT s.seq - h.seq + 1 - (SELECT COUNT(*) FROM {table} l WHERE l.queue_id = h.queue_id"
            f" AND NOT (l.status = {waiting}) AND l.seq > h.seq AND l.seq < s.seq)"
            f" FROM ({seq_sql}) s(seq), (SELECT queue_id, seq FROM {table} WHERE queue_id = %s"
            f" AND status = {waiting} ORDER BY priority DESC, seq LIMIT 1) h)")


def position_of(ticket: Ticket) -> int | None:
    """1 for the head of the line; None when the ticket is not waiting."""
    if ticket.status != TicketStatus.WAITING:
        return None
    return position_at(ticket.queue_id, ticket.priority, ticket.seq)


# The reads of a join's answer (place, counters, service times), compiled once
# per process from querysets (markers: values no real call passes, within the
# columns' ranges: Django drops a comparison with an out-of-range integer). The
# place is found by the ticket's token, so the read can go out with the
# statement that gives the ticket its place, before that statement's row is
# back (`services._take.run_take_and_read`).
#
# The place without counting the line: the tickets ahead of a key (priority p,
# seq s) are those waiting at priorities above p plus those at p before s,
# i.e. every one waiting at p or above (`WaitingCount`, kept by triggers) less
# those at p from s on. A new ticket stands at or near the back of its
# priority, so that last range is short (itself, the joins since, bookings
# placed later in the day), where counting those ahead of it meant visiting
# the whole line: 2.7 ms of the database's CPU at 6,100 waiting (issue 9).
# Both halves are read in one statement, one snapshot: `position_at`'s number.
_WAITING_FROM_PRIORITY = CompiledSelect(
    lambda queue_id, priority: WaitingCount.objects.filter(queue_id=queue_id, priority__gte=priority)
    .values_list("waiting"), queue_id=-(2**40) - 1, priority=-32001)
_FROM_TOKEN_AT_ITS_PRIORITY = CompiledSelect(
    lambda queue_id, priority, token: waiting_tickets(queue_id).filter(
        priority=priority, seq__gte=Subquery(Ticket.objects.filter(token=token).order_by().values("seq")[:1]))
    .order_by()
    .values_list("pk"), queue_id=-(2**40) - 1, priority=-32001, token="compiled-select-marker-token")
_SHARES = CompiledSelect(counter_shares, queue_id=-(2**40) - 1)
_RECENT = CompiledSelect(recent_services, queue_id=-(2**40) - 1, since=datetime(1900, 1, 2, tzinfo=UTC),
                         day=date(1900, 1, 1))


def place_and_wait_read(ticket: Ticket, using: str) -> tuple[str, list] | None:
    """The one statement of `place_and_wait` for a waiting ticket of a counter
    queue on PostgreSQL, keyed by its token and priority; None where the
    ordinary reads answer (SQLite, waitlists, waiting rooms)."""
    queue = ticket.queue
    if connections[using].vendor != "postgresql" or queue.room_slug is not None or not has_wait_estimate(queue):
        return None
    since, day = recent_since()
    parts = (_WAITING_FROM_PRIORITY.sql(using, queue_id=queue.pk, priority=ticket.priority),
             _FROM_TOKEN_AT_ITS_PRIORITY.sql(using, queue_id=queue.pk, priority=ticket.priority, token=ticket.token),
             _SHARES.sql(using, queue_id=queue.pk),
             _RECENT.sql(using, queue_id=queue.pk, since=since, day=day))
    sql = ("SELECT (SELECT COALESCE(SUM(w.waiting), 0) FROM (" + parts[0][0] + ") w) - (SELECT COUNT(*) FROM ("
           + parts[1][0] + ") b), ARRAY(SELECT c.k FROM (" + parts[2][0] + ") c), ARRAY(SELECT r.took FROM ("
           + parts[3][0] + ") r)")
    return sql, [*parts[0][1], *parts[1][1], *parts[2][1], *parts[3][1]]


def place_and_wait_from(queue: Queue, row: tuple) -> tuple[int, timedelta | None]:
    """The position and expected wait from `place_and_wait_read`'s row."""
    ahead, shares, took = row
    position = ahead + 1
    wait = wait_range(queue, position, samples=service_samples(took), counters=counters_from_shares(shares))
    return position, wait.expected


def place_and_wait(ticket: Ticket) -> tuple[int | None, timedelta | None]:
    """`position_of` and `estimate_wait` of a ticket, for the answer to its join.

    On PostgreSQL, for a counter queue, one statement instead of three queries,
    from SQL compiled once (issue 9: building the querysets was most of the
    answer's CPU); the same querysets and the same formula as the pages, so the
    numbers are the same. A join that sent that statement with its own
    (`do_join(with_place=True)`) left the answer on the ticket
    (`place_and_wait_at_join`). Elsewhere (SQLite, waitlists, waiting rooms)
    the ordinary reads."""
    if ticket.status == TicketStatus.WAITING and getattr(ticket, "place_and_wait_at_join", None) is not None:
        return ticket.place_and_wait_at_join
    using = router.db_for_read(Ticket)
    read = place_and_wait_read(ticket, using) if ticket.status == TicketStatus.WAITING else None
    if read is None:
        position = position_of(ticket)
        return position, estimate_wait(ticket.queue, position)
    with connections[using].cursor() as cursor:
        cursor.execute(*read)
        return place_and_wait_from(ticket.queue, cursor.fetchone())


def estimate_wait(queue: Queue, position: int | None) -> timedelta | None:
    """Expected wait before being called: recent service times of the queue and
    the counters serving it now (see `queueapp.estimates` for how)."""
    estimate = estimate_wait_range(queue, position)
    return estimate.expected if estimate is not None else None


def estimate_wait_range(queue: Queue, position: int | None):
    """The same estimate with a range (`low`, `high`) and `thin` when little
    recent history backs it: show "10-20 min" rather than "15 min" then.
    Returns `queueapp.estimates.WaitRange`, or None when not waiting."""
    if position is None or not has_wait_estimate(queue):
        return None
    return wait_range(queue, position)


def ticket_by_token(token: str) -> Ticket | None:
    return Ticket.objects.select_related("queue__location", "counter").filter(token=token).first()


MAX_TRANSFERS_FOLLOWED = 20  # a ticket moved more often than this is a loop, not a patient


TICKET_RELATED = ("queue__location", "counter")  # what a ticket's page needs beside the row


def _with_related(tickets: QuerySet[Ticket], related: Iterable[str]) -> QuerySet[Ticket]:
    related = tuple(related)
    return tickets.select_related(*related) if related else tickets


def transfer_chains(tickets: Iterable[Ticket], *, related: Iterable[str] = TICKET_RELATED,
                    ) -> dict[int, list[Ticket]]:
    """For each ticket (by pk), the ticket and those it was transferred to, in order.

    The one place that follows transfers: one query per hop for the whole batch
    (a burst of live screens connecting shares it); the new tickets come with
    `related` selected (the live screens also need the queue's waiting room).
    """
    chains = {t.pk: [t] for t in tickets}
    for _hop in range(MAX_TRANSFERS_FOLLOWED):
        moved: dict[int, list[list[Ticket]]] = {}
        for chain in chains.values():
            last = chain[-1]
            if last.status == TicketStatus.TRANSFERRED and last.transferred_to_id is not None:
                moved.setdefault(last.transferred_to_id, []).append(chain)
        if not moved:
            break
        for new in _with_related(Ticket.objects.filter(pk__in=moved), related):
            for chain in moved[new.pk]:
                chain.append(new)
    return chains


def transfer_chain(ticket: Ticket) -> list[Ticket]:
    """The ticket and those it was transferred to, in order (`transfer_chains` of one)."""
    return transfer_chains([ticket])[ticket.pk]


def follow_transfers(ticket: Ticket) -> Ticket:
    """The ticket its holder now has: a transfer ends a ticket and gives the
    person a new one in the other queue, and their old link (page, QR code,
    API token) must keep acting on the new one. One query per hop."""
    return transfer_chain(ticket)[-1]


def transferred_from(ticket: Ticket, *, related: Iterable[str] = TICKET_RELATED) -> list[Ticket]:
    """The tickets this one was transferred from, nearest first (one query per hop)."""
    earlier: list[Ticket] = []
    current = ticket
    for _hop in range(MAX_TRANSFERS_FOLLOWED):
        current = _with_related(Ticket.objects.filter(transferred_to=current), related).first()
        if current is None:
            break
        earlier.append(current)
    return earlier


@dataclass(frozen=True)
class WaitlistOverview:
    """What the staff waitlist page and the API show of a capacity queue."""

    capacity: int
    seats_taken: int
    seats_free: int
    waiting_count: int
    waiting: list[Ticket]          # the head of the line, in order (position = index + 1)
    offers: list[Ticket]           # open offers, soonest expiry first
    confirmed: list[Ticket]        # most recent first
    confirmed_count: int
    oversized: list[Ticket]        # waiting for more seats than the whole capacity


def waitlist_overview(queue: Queue, *, limit: int = 200) -> WaitlistOverview:
    tickets = Ticket.objects.filter(queue=queue).select_related("queue")
    confirmed = tickets.filter(status=TicketStatus.CONFIRMED)
    return WaitlistOverview(
        capacity=queue.capacity or 0,
        seats_taken=queue.seats_taken,
        seats_free=queue.seats_free,
        waiting_count=waiting_tickets(queue).count(),
        waiting=list(waiting_tickets(queue).select_related("queue")[:limit]),
        offers=list(tickets.filter(status=TicketStatus.OFFERED).order_by("offer_expires_at", "pk")),
        confirmed=list(confirmed.order_by("-confirmed_at", "-pk")[:limit]),
        confirmed_count=confirmed.count(),
        oversized=list(waiting_tickets(queue).filter(party_size__gt=queue.capacity or 0)
                       .select_related("queue")[:limit]),
    )


def requestable_resources(location) -> list[Queue]:
    """Capacity waitlists of a location people may ask seats on: undated, or dated
    today or later in the location's time zone (waiting rooms have their own page)."""
    today = location.business_day()
    queues = (Queue.objects.filter(location=location, kind=Queue.Kind.CAPACITY, waiting_room__isnull=True)
              .filter(Q(service_date__isnull=True) | Q(service_date__gte=today))
              .select_related("location").order_by("service_date", "name"))
    return list(queues)


def admitted_since(queue: Queue, version: int) -> list[Ticket]:
    """Requests confirmed or offered by the queue's events after `version` (what
    an action admitted, e.g. a capacity increase), in order."""
    from .models import QueueEvent

    ids = list(QueueEvent.objects.filter(queue=queue, version__gt=version,
                                         kind__in=[QueueEvent.Kind.CONFIRMED, QueueEvent.Kind.OFFERED])
               .order_by("version").values_list("ticket_id", flat=True))
    found = Ticket.objects.select_related("queue").in_bulk(ids)
    return [found[i] for i in ids if i in found]
