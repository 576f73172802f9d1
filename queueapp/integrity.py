"""`validate_queue_integrity`: what the database constraints cannot check.

A pure function: it reads, writes nothing, and returns a list of problems. The
management command and the admin page only format what it returns. Each problem
has a stable `code` (for machines and tests) and a `message`, a whole sentence
in the active language (the admin page: its reader's; the command: the
project's default).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date, timedelta

from django.db.models import Count, Max, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import (
    AT_COUNTER,
    HOLDING_SEATS,
    HOLDING_SLOT,
    Booking,
    BookingStatus,
    Counter,
    Purge,
    PurgedRange,
    Queue,
    QueueEvent,
    Slot,
    Ticket,
    TicketStatus,
    WaitingCount,
)
from .models import format_display_number as shown  # "A-017", as everywhere
from .models import status_in_sentence
from .replay import QueueFacts, event_rows, replay_problems
from .selectors import next_admissible, open_offer_count


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    queue_id: int | None = None
    ticket_id: int | None = None
    counter_id: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def validate_queue_integrity(queue: Queue | int | None = None) -> list[Problem]:
    """Check one queue, or every queue when `queue` is None."""
    if queue is None:
        queues = list(Queue.objects.order_by("pk"))
    else:
        queues = list(Queue.objects.filter(pk=queue if isinstance(queue, int) else queue.pk))
    problems: list[Problem] = []
    for q in queues:
        purged_versions = list(PurgedRange.objects.filter(queue=q).values_list("first_version", "last_version"))
        problems += _numbers(q, _purged_numbers(q) if purged_versions else {})
        problems += _versions(q, purged_versions)
        tickets, events = _history(q)
        problems += _statuses_match_events(q, tickets, events)
        problems += _waiting_line(q)
        problems += _waiting_counts(q)
        problems += _seats(q)
        problems += _waitlist(q)
        problems += _waiting_room(q)
        problems += _replay(q, tickets, events, complete=not purged_versions)
        problems += _bookings(q)
    counter_filter = Q() if queue is None else Q(queues__in=queues)
    problems += _counters(Counter.objects.filter(counter_filter).distinct())
    return problems


def _purged_numbers(q: Queue) -> dict:
    """{business day: [numbers]} that retention purges deleted from the queue."""
    purged = defaultdict(list)
    for numbers in Purge.objects.filter(ranges__queue=q).distinct().values_list("numbers", flat=True):
        for day, runs in (numbers or {}).get(str(q.pk), {}).items():
            for first, last in runs:
                purged[date.fromisoformat(day)].extend(range(first, last + 1))
    return purged


def _numbers(q: Queue, purged: dict) -> list[Problem]:
    problems = []
    days = defaultdict(list)
    for day, number in Ticket.objects.filter(queue=q).values_list("business_day", "number"):
        days[day].append(number)
    # A purge deleted these on purpose: they count as issued, not as missing.
    for day, numbers in purged.items():
        days[day].extend(numbers)
    for day, numbers in sorted(days.items()):
        tally = Tally(numbers)
        for number, n in sorted(tally.items()):
            if n > 1:
                problems.append(Problem("duplicate_number", _("%(number)s issued %(count)s times on %(day)s.") % {
                    "number": shown(q.prefix, number), "count": n, "day": day}, q.pk))
        missing = sorted(set(range(1, max(numbers) + 1)) - set(numbers))
        if missing:
            listed = ", ".join(str(m) for m in missing[:10]) + (" …" if len(missing) > 10 else "")
            problems.append(Problem("missing_number", _("Numbers missing on %(day)s: %(numbers)s.") % {
                "day": day, "numbers": listed}, q.pk))
        if day == q.number_day and max(numbers) != q.last_number:
            problems.append(Problem("number_counter", _(
                "The queue says its last number on %(day)s is %(last)s; the tickets go up to %(top)s.") % {
                "day": day, "last": q.last_number, "top": max(numbers)}, q.pk))
    return problems


def _versions(q: Queue, ranges: list[tuple[int, int]]) -> list[Problem]:
    stats = QueueEvent.objects.filter(queue=q).aggregate(
        n=Count("pk"), distinct=Count("version", distinct=True), top=Max("version"))
    n, distinct, top = stats["n"], stats["distinct"], stats["top"] or 0
    # Versions a retention purge recorded and deleted (`ranges`) are accounted for, not gaps.
    purged = sum(last - first + 1 for first, last in ranges)
    top = max([top] + [last for _, last in ranges])
    problems = []
    if distinct != n:
        problems.append(Problem("duplicate_version", _("%(count)s event versions repeat.") % {
            "count": n - distinct}, q.pk))
    if ranges and QueueEvent.objects.filter(
            queue=q, version__in=[v for first, last in ranges for v in (first, last)]).exists():
        problems.append(Problem("purged_event_present", _("An event a purge recorded as deleted is still there."),
                                q.pk))
    if top != distinct + purged:
        problems.append(Problem("version_gap", _(
            "Event versions have gaps: %(distinct)s distinct and %(purged)s purged up to %(top)s.") % {
            "distinct": distinct, "purged": purged, "top": top}, q.pk))
    if top != q.version:
        problems.append(Problem("version_counter", _(
            "The queue's version is %(version)s but the last event is %(top)s.") % {
            "version": q.version, "top": top}, q.pk))
    return problems


def _history(q: Queue) -> tuple[list[tuple], list[tuple]]:
    """The queue's tickets and its events in version order: the two reads the
    status check and the replay share."""
    tickets = list(Ticket.objects.filter(queue=q).values_list("pk", "status", "number", "party_size"))
    return tickets, event_rows(QueueEvent.objects.filter(queue=q))


def _statuses_match_events(q: Queue, tickets: list[tuple], events: list[tuple]) -> list[Problem]:
    last = {ticket_id: status for _, _, ticket_id, status, _ in events if ticket_id is not None}
    problems = []
    for ticket_id, status, number, _party in tickets:
        said = last.get(ticket_id)
        if said is None:
            problems.append(Problem("no_events", _("%(number)s has no event.") % {"number": shown(q.prefix, number)},
                                    q.pk, ticket_id))
        elif said != status:
            problems.append(Problem("status_mismatch", _("%(number)s is %(status)s but its events say %(said)s.") % {
                "number": shown(q.prefix, number), "status": status_in_sentence(status),
                "said": status_in_sentence(said)}, q.pk, ticket_id))
    return problems


def _replay(q: Queue, tickets: list[tuple], events: list[tuple], *, complete: bool) -> list[Problem]:
    """The events replayed against the ordering rule (queueapp.replay). After a retention
    purge the line and the seats before it are unknown: statuses are still checked."""
    facts = QueueFacts(prefix=q.prefix, capacity=q.capacity, allow_skip=q.allow_skip,
                       numbers={pk: number for pk, _, number, _ in tickets},
                       party_sizes={pk: party for pk, _, _, party in tickets})
    return [Problem(f.code, f.message, q.pk, f.ticket_id)
            for f in replay_problems(facts, events, complete=complete)]


def _waiting_line(q: Queue) -> list[Problem]:
    problems = []
    for ticket_id, number in Ticket.objects.filter(
        queue=q, status=TicketStatus.WAITING, counter__isnull=False
    ).values_list("pk", "number"):
        problems.append(Problem("waiting_at_counter", _("%(number)s is waiting and at a counter at once.") % {
            "number": shown(q.prefix, number)}, q.pk, ticket_id))
    for ticket_id, number in Ticket.objects.filter(
        queue=q, status__in=AT_COUNTER, counter__isnull=True
    ).values_list("pk", "number"):
        problems.append(Problem("called_without_counter", _("%(number)s is called but at no counter.") % {
            "number": shown(q.prefix, number)}, q.pk, ticket_id))
    dup_seqs = (Ticket.objects.filter(queue=q, status=TicketStatus.WAITING)
                .values("seq").annotate(n=Count("pk")).filter(n__gt=1))
    for row in dup_seqs:
        problems.append(Problem("shared_place", _("%(count)s waiting tickets share place %(place)s.") % {
            "count": row["n"], "place": row["seq"]}, q.pk))
    return problems


def _waiting_counts(q: Queue) -> list[Problem]:
    """`WaitingCount` (kept by triggers) against the line itself, per priority."""
    kept = dict(WaitingCount.objects.filter(queue=q).values_list("priority", "waiting"))
    line = dict(Ticket.objects.filter(queue=q, status=TicketStatus.WAITING).order_by()
                .values("priority").annotate(n=Count("pk")).values_list("priority", "n"))
    return [Problem("waiting_count", _("%(kept)s tickets are counted as waiting at priority %(priority)s, but "
                                       "%(waiting)s wait.") % {"kept": kept.get(priority, 0), "priority": priority,
                                                              "waiting": line.get(priority, 0)}, q.pk)
            for priority in sorted(kept.keys() | line.keys()) if kept.get(priority, 0) != line.get(priority, 0)]


def _seats(q: Queue) -> list[Problem]:
    held = Ticket.objects.filter(queue=q, status__in=HOLDING_SEATS).aggregate(s=Sum("party_size"))["s"] or 0
    problems = []
    if held != q.seats_taken:
        problems.append(Problem("seat_counter", _(
            "The seat counter says %(taken)s taken; confirmed and offered requests hold %(held)s.") % {
            "taken": q.seats_taken, "held": held}, q.pk))
    if q.capacity is not None and held > q.capacity:
        problems.append(Problem("overbooked", _("%(held)s seats held, capacity %(capacity)s.") % {
            "held": held, "capacity": q.capacity}, q.pk))
    return problems


WAITLIST_ONLY = (TicketStatus.OFFERED, TicketStatus.CONFIRMED, TicketStatus.DECLINED, TicketStatus.EXPIRED)
COUNTER_ONLY = (*AT_COUNTER, TicketStatus.NO_SHOW, TicketStatus.TRANSFERRED)
# Lapsed offers the worker should have expired long ago: it is not running.
OFFER_OVERDUE_AFTER = timedelta(minutes=5)


def _waitlist(q: Queue) -> list[Problem]:
    """Statuses that belong to the other kind of queue, confirmations without a
    time, offers nobody expires, and free seats a waiting request could take."""
    problems = []
    foreign = COUNTER_ONLY if q.kind == Queue.Kind.CAPACITY else WAITLIST_ONLY
    for ticket_id, number, status in Ticket.objects.filter(queue=q, status__in=foreign).values_list(
            "pk", "number", "status"):
        problems.append(Problem("status_of_other_queue_kind", _(
            "%(number)s is %(status)s in a %(kind)s queue.") % {
            "number": shown(q.prefix, number), "status": status_in_sentence(status), "kind": q.kind}, q.pk, ticket_id))
    for ticket_id, number in Ticket.objects.filter(
            queue=q, status=TicketStatus.CONFIRMED, confirmed_at__isnull=True).values_list("pk", "number"):
        problems.append(Problem("confirmed_without_time", _(
            "%(number)s is confirmed but has no confirmation time.") % {
            "number": shown(q.prefix, number)}, q.pk, ticket_id))
    overdue = Ticket.objects.filter(queue=q, status=TicketStatus.OFFERED,
                                    offer_expires_at__lt=timezone.now() - OFFER_OVERDUE_AFTER)
    for ticket_id, number in overdue.values_list("pk", "number"):
        problems.append(Problem("offer_overdue", _(
            "%(number)s holds an offer that lapsed over %(minutes)s minutes ago: is the worker running?") % {
            "number": shown(q.prefix, number), "minutes": OFFER_OVERDUE_AFTER.seconds // 60}, q.pk, ticket_id))
    if q.kind == Queue.Kind.CAPACITY and not q.is_paused and q.batch_size is None:
        problems += _stalled(q)
    return problems


def _stalled(q: Queue) -> list[Problem]:
    """Seats free that the admission rule would give to someone waiting: a missed admission."""
    if q.offer_seconds and q.max_open_offers is not None:
        if open_offer_count(q) >= q.max_open_offers:
            return []
    fits = next_admissible(q)
    free = q.seats_free
    if fits is None:
        return []
    return [Problem("waitlist_stalled", _(
        "%(free)s seats free but %(number)s (party of %(party)s) still waits.") % {
        "free": free, "number": shown(q.prefix, fits.number), "party": fits.party_size}, q.pk, fits.pk)]


def _waiting_room(q: Queue) -> list[Problem]:
    """A waiting room: inside (the seat counter) equals the admissions not yet
    released (done, abandoned or expired), within the room's maximum."""
    if q.room_slug is None:
        return []
    unreleased = Ticket.objects.filter(queue=q, status=TicketStatus.CONFIRMED).count()
    problems = []
    if unreleased != q.seats_taken:
        problems.append(Problem("room_inside_count", _(
            "Waiting room %(room)s counts %(inside)s inside but %(unreleased)s admissions are not released.") % {
            "room": q.room_slug, "inside": q.seats_taken, "unreleased": unreleased}, q.pk))
    admitted = QueueEvent.objects.filter(queue=q, kind=QueueEvent.Kind.CONFIRMED).count()
    released = QueueEvent.objects.filter(
        queue=q, kind__in=[QueueEvent.Kind.COMPLETED, QueueEvent.Kind.CANCELLED, QueueEvent.Kind.EXPIRED],
        data__seats_released=1).count()
    if admitted - released != unreleased:
        problems.append(Problem("room_events", _(
            "Waiting room %(room)s: %(admitted)s admission events and %(released)s releases, "
            "yet %(unreleased)s visitors inside.") % {
            "room": q.room_slug, "admitted": admitted, "released": released, "unreleased": unreleased}, q.pk))
    return problems


def _bookings(q: Queue) -> list[Problem]:
    """Each slot's count equals the bookings holding a place in it (the check
    constraint keeps it within the capacity), and a checked-in booking's ticket
    is in the slot's queue."""
    problems = []
    held = dict(Booking.objects.filter(slot__queue=q, status__in=HOLDING_SLOT)
                .values("slot_id").annotate(n=Count("pk")).values_list("slot_id", "n"))
    for slot_id, starts_at, booked, capacity in Slot.objects.filter(queue=q).values_list(
            "pk", "starts_at", "booked", "capacity"):
        if booked != held.get(slot_id, 0):
            problems.append(Problem("slot_count", _(
                "The %(slot)s slot counts %(booked)s booked; %(held)s bookings hold a place in it.") % {
                "slot": f"{starts_at:%Y-%m-%d %H:%M}", "booked": booked, "held": held.get(slot_id, 0)}, q.pk))
        if booked > capacity:
            problems.append(Problem("slot_overbooked", _(
                "The %(slot)s slot holds %(booked)s bookings for %(capacity)s places.") % {
                "slot": f"{starts_at:%Y-%m-%d %H:%M}", "booked": booked, "capacity": capacity}, q.pk))
    strays = (Booking.objects.filter(slot__queue=q, status=BookingStatus.CHECKED_IN, ticket__isnull=False)
              .exclude(ticket__queue=q).values_list("pk", "ticket_id"))
    for booking_id, ticket_id in strays:
        problems.append(Problem("booking_ticket", _(
            "Booking %(booking)s checked in to a ticket of another queue.") % {"booking": booking_id},
            q.pk, ticket_id))
    return problems


def _counters(counters) -> list[Problem]:
    problems = []
    rows = (Ticket.objects.filter(counter__in=counters, status__in=AT_COUNTER)
            .values("counter_id", "counter__name").annotate(n=Count("pk")).filter(n__gt=1))
    for row in rows:
        problems.append(Problem("counter_overfull", _("%(counter)s holds %(count)s called/serving tickets.") % {
            "counter": row["counter__name"], "count": row["n"]}, counter_id=row["counter_id"]))
    return problems
