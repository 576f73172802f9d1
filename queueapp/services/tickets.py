"""Actions on tickets of counter queues: one function each, one transaction each.

Every function locks the queue row(s) first, then decides from what it reads
under the lock, writes the state, appends one QueueEvent per queue touched and
registers the live push for after commit. Views, the API, admin actions and
commands all call these; nothing else writes tickets.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection, router, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..errors import (
    CounterBusy,
    CounterNotOpen,
    DatePassed,
    InvalidInput,
    InvalidTransition,
    NotFound,
    QueueFull,
    QueuePaused,
)
from .. import calling
from ..alerts.models import WebhookEndpoint
from ..dbfunctions import CompiledSelect
from ..estimates import service_seconds
from ..models import (AT_COUNTER, CANCELLABLE, Counter, Priority, Queue, QueueEvent, Ticket, TicketStatus,
                      counter_state_sentence, status_in_sentence)
from ..selectors import place_and_wait_from, place_and_wait_read, waiting_tickets
from ._events import record_event
from ._line import _back_of_line, _front_of_line, _save_counters, line_clock
from ._locks import lock_queue, lock_queues, lock_ticket_queue
from ._take import run_take, run_take_and_read, take_in_one, take_params, written_in_one

Kind = QueueEvent.Kind
MAX_PARTY_SIZE = 50


def _pk(obj) -> int:
    return obj if isinstance(obj, int) else obj.pk


def _next_number(queue: Queue) -> tuple:
    """Next gapless number of the queue's business day (caller holds the lock)."""
    day = queue.location.business_day()
    if queue.number_day != day:
        queue.number_day, queue.last_number = day, 0
    queue.last_number += 1
    return day, queue.last_number


def _validate_join(queue: Queue, priority: int, party_size: int) -> None:
    if priority not in Priority.values:
        allowed = ", ".join(f"{v} ({label})" for v, label in Priority.choices)
        raise InvalidInput(_("Priority must be one of %(allowed)s, not %(value)r.") % {
            "allowed": allowed, "value": priority}, field="priority")
    if not isinstance(party_size, int) or not 1 <= party_size <= MAX_PARTY_SIZE:
        raise InvalidInput(_("Party size must be a whole number from 1 to %(most)s.") % {"most": MAX_PARTY_SIZE},
                           field="party_size")
    if queue.kind == Queue.Kind.COUNTER and party_size != 1:
        raise InvalidInput(_("A counter queue serves one person per ticket; party size must be 1."),
                           field="party_size")
    if queue.kind == Queue.Kind.CAPACITY and party_size > (queue.capacity or 0):
        raise InvalidInput(
            _("%(queue)s has %(capacity)s places in all; a party of %(size)s cannot fit.") % {
                "queue": queue.name, "capacity": queue.capacity, "size": party_size},
            field="party_size",
        )


def check_date_open(queue: Queue) -> None:
    """A dated resource (a train, a show) takes requests until its date has passed
    in the location's time zone."""
    if queue.service_date is not None and queue.service_date < queue.location.business_day():
        raise DatePassed(_("%(queue)s on %(day)s has passed; it takes no more requests.") % {
            "queue": queue.name, "day": date_format(queue.service_date, "j F Y")}, field="queue")


def create_ticket_locked(queue: Queue, *, priority: int, party_size: int = 1,
                         to_front: bool = False, note: str = "", seq: int | None = None,
                         queued_at=None, language: str = "", take_version: bool = False) -> Ticket:
    """Insert a waiting ticket with the next number and place (queue locked by caller).
    `seq`/`queued_at`: a place decided by the caller (a booking checked in on time).
    `language`: the holder's (queueapp.languages); empty: the location's default.
    `take_version`: see `_save_counters`."""
    if not language:
        language = queue.location.default_language
    day, number = _next_number(queue)
    if seq is None:
        seq = _front_of_line(queue) if to_front else _back_of_line(queue)
    _save_counters(queue, take_version=take_version)
    now = timezone.now()
    ticket = Ticket(queue=queue, business_day=day, number=number, priority=priority, seq=seq,
                    party_size=party_size, created_at=now, queued_at=queued_at or now, note=note,
                    language=language)
    ticket.save(force_insert=True)
    return ticket


def do_join(queue: Queue | int, *, priority: int = Priority.NORMAL, party_size: int = 1,
            acting_user=None, note: str = "", language: str = "",
            check: Callable[[Queue], None] | None = None, with_place: bool = False) -> Ticket:
    """Take a ticket. Refuses a paused or full queue.
    `language`: the holder's (one the location offers); empty: the location's default.

    On a capacity queue the request is confirmed (or offered) at once while
    seats remain, otherwise it waits in line (a batched waiting room admits at
    its next cycle; see services.waitlist); a full waitlist refuses it.

    Returns the ticket. A caller that shows a position or a wait asks the
    selectors (`position_of`, `estimate_wait`) after commit: those reads grow
    with the line and would hold every other join of the queue if done under
    the lock, and most callers (a kiosk printing a number) need none of them.

    `with_place`: the caller will show the place and wait
    (`selectors.place_and_wait`): where the join is one statement, their read
    goes to the database with it, in the same round trip, and the answer is
    left on the ticket.

    `check(queue)`: the caller's access rule (a kiosk token's location), run on
    the queue row before anything is written; raising refuses the join. The
    caller may pass the queue's id and read nothing before (one query fewer).

    On PostgreSQL a counter queue's join with no waiting limit and no webhook
    wanting it is decided on a plain read of the queue and written in one
    statement (`services._take`: the row is locked, written and released by
    the server in that statement; paused is checked again there). Otherwise
    `_join_locked`: the queue row is locked and everything decided under it
    (a waiting limit counted exactly, a waitlist's seats, the webhook's outbox
    rows in the same commit).
    """
    if connection.vendor == "postgresql" and not _inside_a_transaction():
        read = _read_for_join(_pk(queue))
        if takes_in_one(read):
            _check_join(read, check, priority, party_size, language)
            return _join_in_one(read, priority=priority, party_size=party_size, acting_user=acting_user,
                                note=note, language=language, with_place=with_place)
    return _join_locked(_pk(queue), priority=priority, party_size=party_size, acting_user=acting_user,
                        note=note, language=language, check=check)


def _inside_a_transaction() -> bool:
    """A caller's open transaction (not a test case's, as Django's durable check
    tells them apart): the one-statement join would run inside it and hold the
    queue row until it commits, so such a caller takes `_join_locked`, whose
    durable atomic refuses it as every join did."""
    return bool(connection.atomic_blocks) and not connection.atomic_blocks[-1]._from_testcase


# The queue read of every join on PostgreSQL, its SQL compiled once per process
# (building the queryset was a third of a kiosk join's CPU; issue 9) and
# planned once per connection.
FOR_JOIN = CompiledSelect(
    lambda queue_id: Queue.objects.select_related("location", "waiting_room").annotate(
        has_webhooks=Exists(WebhookEndpoint.objects.filter(location_id=OuterRef("location_id"), is_active=True)))
    .filter(pk=queue_id), prepared=True, queue_id=-(2**40) - 1)


def _read_for_join(queue_id: int) -> Queue:
    """The queue, its location and waiting room, unlocked, and whether its
    location has an active webhook (`has_webhooks`; which kinds each wants is
    asked only when it has one)."""
    return found_for_join(queue_id, FOR_JOIN.first(router.db_for_read(Queue), queue_id=queue_id))


def found_for_join(queue_id: int, found: Queue | None) -> Queue:
    """The read's queue, or the join's refusal when there is none."""
    if found is None:
        raise NotFound(_("Queue %(id)s does not exist.") % {"id": queue_id})
    return found


def takes_in_one(read: Queue) -> bool:
    """Whether `_read_for_join`'s queue joins in one statement (see `do_join`)."""
    return read.kind == Queue.Kind.COUNTER and read.max_waiting is None and not read.has_webhooks


def _check_join(queue: Queue, check: Callable[[Queue], None] | None, priority: int, party_size: int,
                language: str) -> None:
    """Everything a join is refused for before a number is handed out, in the
    order callers see: access, the values, the language, paused, the date."""
    if check is not None:
        check(queue)
    if queue.room_slug is not None:
        # A room admits only at its rate and all its visitors share one priority
        # (`selectors.may_be_overtaken`): they enter through its page only.
        raise InvalidInput(_("%(queue)s is a waiting room: visitors enter it through its page, not by joining.")
                           % {"queue": queue.name}, field="queue")
    _validate_join(queue, priority, party_size)
    if language and language not in queue.location.offered_languages:
        raise InvalidInput(_("%(location)s does not offer the language %(language)r; choose one of %(offered)s.") % {
            "location": queue.location.name, "language": language,
            "offered": ", ".join(queue.location.offered_languages)}, field="language")
    if queue.is_paused:
        raise _paused(queue)
    check_date_open(queue)


def _paused(queue: Queue) -> QueuePaused:
    return QueuePaused(_("%(queue)s is not taking new tickets right now (paused).") % {"queue": queue.name})


# A join's place: the line clock's now, never before the last place handed out
# (`_line._back_of_line`).
JOIN_IN_ONE = take_in_one("greatest(last_seq + 1, %(clock)s)")


def join_in_one_params(queue: Queue, *, priority: int, party_size: int, acting_user, note: str,
                       language: str, place_on: str | None = None) -> tuple[Ticket, dict, tuple | None]:
    """The new ticket (unsaved), the values of `JOIN_IN_ONE` for it, and the
    read of its place and wait to send behind it on the database `place_on`
    (None: not wanted, or where the ordinary reads answer)."""
    now = timezone.now()
    ticket = Ticket(queue=queue, priority=priority, party_size=party_size, note=note, created_at=now,
                    queued_at=now, language=language or queue.location.default_language)
    params = {**take_params(queue, ticket, actor=acting_user), "clock": line_clock(now)}
    return ticket, params, (place_and_wait_read(ticket, place_on) if place_on is not None else None)


def joined_in_one(queue: Queue, ticket: Ticket, row: tuple, place: tuple | None, *, acting_user,
                  alias: str | None = None) -> Ticket:
    """After `JOIN_IN_ONE` committed (`row`): the ticket as written, its event
    announced (`_take.written_in_one`; `alias`: written on a connection of
    its own) and the answer read with it left on it (`place`, None: read the
    ordinary way). The thread path and the loop's (services/_join_async.py)."""
    written_in_one(queue, ticket, row, actor=acting_user, alias=alias)
    if place is not None:
        ticket.place_and_wait_at_join = place_and_wait_from(queue, place)
    return ticket


def _join_in_one(queue: Queue, *, priority: int, party_size: int, acting_user, note: str,
                 language: str, with_place: bool = False) -> Ticket:
    """The join written by one autocommitted statement (see `do_join`)."""
    ticket, params, place_read = join_in_one_params(queue, priority=priority, party_size=party_size,
                                                    acting_user=acting_user, note=note, language=language,
                                                    place_on=connection.alias if with_place else None)
    place = None
    if place_read is None:
        row = run_take(JOIN_IN_ONE, params)
    else:
        row, place = run_take_and_read(JOIN_IN_ONE, params, place_read)
    if row is None:  # paused or given a waiting limit since the read: ask the locked path's reasons
        queue.refresh_from_db(fields=["is_paused"])
        if queue.is_paused:
            raise _paused(queue)
        return _join_locked(queue.pk, priority=priority, party_size=party_size, acting_user=acting_user,
                            note=note, language=language)
    return joined_in_one(queue, ticket, row, place, acting_user=acting_user)


@transaction.atomic(durable=True)
def _join_locked(queue_id: int, *, priority: int, party_size: int, acting_user, note: str, language: str,
                 check: Callable[[Queue], None] | None = None) -> Ticket:
    """The join decided under the queue row's lock (see `do_join`)."""
    queue = lock_queue(queue_id)
    _check_join(queue, check, priority, party_size, language)
    if queue.max_waiting is not None and queue.kind == Queue.Kind.COUNTER:
        waiting = waiting_tickets(queue).count()
        if waiting >= queue.max_waiting:
            raise QueueFull(_("%(queue)s is full (%(waiting)s waiting); please try again later.") % {
                "queue": queue.name, "waiting": waiting})
    ticket = create_ticket_locked(queue, priority=priority, party_size=party_size, note=note,
                                  language=language, take_version=True)
    record_event(queue, Kind.JOINED, ticket=ticket, actor=acting_user, version_taken=True,
                 entered_line=(ticket.priority, ticket.seq))
    if queue.kind == Queue.Kind.CAPACITY:
        from .waitlist import admit_locked, check_waitlist_room

        admit_locked(queue, acting_user=acting_user)
        ticket.refresh_from_db()
        check_waitlist_room(queue, ticket)
    return ticket


def _lock_counter(counter_id: int) -> Counter:
    try:
        return Counter.objects.select_for_update(of=("self",)).get(pk=counter_id)
    except Counter.DoesNotExist:
        raise NotFound(_("Counter %(id)s does not exist.") % {"id": counter_id}) from None


def _check_counter_free(counter: Counter) -> None:
    active = Ticket.objects.filter(counter=counter, status__in=AT_COUNTER).select_related("queue").first()
    if active is not None:
        raise CounterBusy(
            _("%(counter)s still has %(number)s (%(status)s); complete it, mark it a no-show or transfer "
              "it first.") % {"counter": counter.name, "number": active.display_number,
                              "status": status_in_sentence(active.status)}
        )


def check_counter_open(counter: Counter) -> None:
    """A counter on a break or closed calls nobody (the counter row is locked by
    the caller, so a break set meanwhile is seen here or waits for this call)."""
    if not counter.is_open:
        raise CounterNotOpen(counter_state_sentence(counter, said="cannot_call"), field="counter")


def _send_to_counter(queue: Queue, ticket: Ticket, counter: Counter, acting_user, *,
                     out_of_turn: bool = False, record: dict | None = None) -> Ticket:
    left = (ticket.priority, ticket.seq)
    ticket.status = TicketStatus.CALLED
    ticket.counter = counter
    ticket.call_count += 1
    ticket.called_at = timezone.now()
    ticket.save(update_fields=["status", "counter", "call_count", "called_at"])
    # The audit says when staff chose the ticket: the integrity replay then does not
    # expect the head of the line (queueapp.replay).
    record_event(queue, Kind.CALLED, ticket=ticket, counter=counter, actor=acting_user, left_line=left,
                 data={"out_of_turn": True} if out_of_turn else record)
    return ticket


@transaction.atomic(durable=True)
def do_call_next(queue: Queue | int | None = None, *, counter: Counter | int,
                 acting_user=None) -> Ticket | None:
    """Call the next ticket to `counter`: highest priority first, then whoever has
    waited longest, across the queues the counter serves (or only `queue`).

    Locks those queue rows in pk order, then the counter row. Paused queues are
    skipped. Returns None when nobody is waiting.
    """
    counter_id = _pk(counter)
    served = list(Counter.queues.through.objects.filter(counter_id=counter_id)
                  .values_list("queue_id", flat=True))
    if queue is not None:
        if _pk(queue) not in served:
            raise InvalidInput(_("This counter does not serve that queue."), field="queue")
        served = [_pk(queue)]
    if not served:
        raise InvalidInput(_("This counter serves no queue yet; assign queues to it first."),
                           field="counter")
    queues = lock_queues(served)
    counter = _lock_counter(counter_id)
    check_counter_open(counter)
    _check_counter_free(counter)
    active = [q for q in queues if not q.is_paused and q.kind == Queue.Kind.COUNTER]
    if not active:
        names = ", ".join(q.name for q in queues)
        raise QueuePaused(_("%(queues)s: paused, so no ticket can be called. Resume the queue first.") % {
            "queues": names})
    now = timezone.now()
    picks = []
    for q in active:
        rule = calling.Rule.of(q)
        found = calling.candidates(q, rule, now)
        chosen = calling.pick(rule, found, q.call_streak)
        if chosen is not None:
            chosen.overdue = chosen is found.overdue
            chosen.rule = rule
            picks.append(chosen)
    if not picks:
        return None
    ticket = calling.across(counter.across_queues, picks, weights={q.pk: q.call_weight for q in active}, now=now)
    queue = next(q for q in active if q.pk == ticket.queue_id)
    ticket.queue = queue
    rule = ticket.rule
    record = None
    if not rule.is_default:
        # What the integrity replay needs to judge this call by the same rule.
        record = {"rule": rule.kind, "streak": queue.call_streak}
        if rule.kind == "ratio":
            record["ratio"] = [rule.ratio_priority, rule.ratio_normal]
            queue.call_streak = calling.next_streak(queue.call_streak, ticket.priority)
            Queue.objects.filter(pk=queue.pk).update(call_streak=queue.call_streak)
        if rule.max_wait_minutes is not None:
            record["overdue_before"] = calling.overdue_before(rule, now)
    return _send_to_counter(queue, ticket, counter, acting_user, record=record)


@transaction.atomic(durable=True)
def do_call_ticket(ticket: Ticket | int, *, counter: Counter | int, acting_user=None) -> Ticket:
    """Call one particular waiting ticket to `counter`, out of turn.

    Locks the ticket's queue row, then the counter row.
    """
    queue, ticket = lock_ticket_queue(_pk(ticket))
    counter = _lock_counter(_pk(counter))
    if queue.kind != Queue.Kind.COUNTER:
        raise InvalidInput(_("%(queue)s is a waitlist: its requests are confirmed, not called.") % {
            "queue": queue.name},
                           field="ticket")
    if not counter.queues.filter(pk=queue.pk).exists():
        raise InvalidInput(_("%(counter)s does not serve %(queue)s.") % {"counter": counter.name, "queue": queue.name},
                           field="counter")
    if queue.is_paused:
        raise QueuePaused(_("%(queue)s is paused; resume it before calling tickets.") % {"queue": queue.name})
    if ticket.status != TicketStatus.WAITING:
        raise InvalidTransition(
            _("%(number)s is %(status)s, not waiting; it may just have been called by a colleague.") % {
                "number": ticket.display_number, "status": status_in_sentence(ticket.status)}
        )
    check_counter_open(counter)
    _check_counter_free(counter)
    return _send_to_counter(queue, ticket, counter, acting_user, out_of_turn=True)


# The actions `_require` names, as the sentence "Cannot <action> A-017" says them.
ACTIONS = {"cancel": gettext_lazy("cancel"), "complete": gettext_lazy("complete"),
           "mark as no-show": gettext_lazy("mark as no-show"), "recall": gettext_lazy("recall"),
           "start serving": gettext_lazy("start serving"), "transfer": gettext_lazy("transfer")}


def _require(ticket: Ticket, allowed: tuple, action: str) -> None:
    if ticket.status not in allowed:
        raise InvalidTransition(
            _("Cannot %(action)s %(number)s: it is %(status)s.") % {
                "action": ACTIONS[action], "number": ticket.display_number,
                "status": status_in_sentence(ticket.status)}
        )


@transaction.atomic(durable=True)
def do_recall(ticket: Ticket | int, *, acting_user=None) -> Ticket:
    """Announce a called ticket again. Locks its queue row."""
    queue, ticket = lock_ticket_queue(_pk(ticket))
    _require(ticket, (TicketStatus.CALLED,), "recall")
    ticket.call_count += 1
    ticket.save(update_fields=["call_count"])
    record_event(queue, Kind.RECALLED, ticket=ticket, counter=ticket.counter, actor=acting_user)
    return ticket


@transaction.atomic(durable=True)
def do_start_serving(ticket: Ticket | int, *, acting_user=None) -> Ticket:
    """The called person arrived at the counter. Locks its queue row."""
    queue, ticket = lock_ticket_queue(_pk(ticket))
    _require(ticket, (TicketStatus.CALLED,), "start serving")
    ticket.status = TicketStatus.SERVING
    ticket.serving_at = timezone.now()
    ticket.save(update_fields=["status", "serving_at"])
    record_event(queue, Kind.STARTED, ticket=ticket, counter=ticket.counter, actor=acting_user)
    return ticket


@transaction.atomic(durable=True)
def do_complete(ticket: Ticket | int, *, acting_user=None) -> Ticket:
    """Finish a called or serving ticket. Always an explicit staff action."""
    queue, ticket = lock_ticket_queue(_pk(ticket))
    if ticket.status == TicketStatus.WAITING:
        raise InvalidTransition(_("%(number)s was never called; call it before completing it.") % {
            "number": ticket.display_number})
    _require(ticket, AT_COUNTER, "complete")
    return complete_locked(queue, ticket, acting_user=acting_user)


def complete_locked(queue: Queue, ticket: Ticket, *, acting_user=None, data: dict | None = None) -> Ticket:
    """Complete a called or serving ticket (its queue locked by the caller)."""
    ticket.status = TicketStatus.COMPLETED
    ticket.finished_at = timezone.now()
    ticket.save(update_fields=["status", "finished_at"])
    # A completion changes the queue's service time and so every wait shown:
    # the event carries the new one, so screens update without a query.
    record_event(queue, Kind.COMPLETED, ticket=ticket, counter=ticket.counter, actor=acting_user,
                 data={"service_seconds": service_seconds(queue), **(data or {})})
    return ticket


@transaction.atomic(durable=True)
def do_no_show(ticket: Ticket | int, *, acting_user=None) -> Ticket:
    """The called person did not come. Back of the line until the queue's
    recall limit is used up, then final. Locks its queue row."""
    queue, ticket = lock_ticket_queue(_pk(ticket))
    _require(ticket, (TicketStatus.CALLED,), "mark as no-show")
    counter = ticket.counter
    ticket.no_show_count += 1
    if ticket.no_show_count <= queue.recall_limit:
        ticket.status = TicketStatus.WAITING
        ticket.counter = None
        ticket.seq = _back_of_line(queue)
        ticket.queued_at = timezone.now()
        _save_counters(queue)
        ticket.save(update_fields=["status", "counter", "seq", "queued_at", "no_show_count"])
        record_event(queue, Kind.REQUEUED, ticket=ticket, counter=counter, actor=acting_user,
                     entered_line=(ticket.priority, ticket.seq),
                     data={"no_show_count": ticket.no_show_count, "recall_limit": queue.recall_limit})
    else:
        ticket.status = TicketStatus.NO_SHOW
        ticket.finished_at = timezone.now()
        ticket.save(update_fields=["status", "finished_at", "no_show_count"])
        record_event(queue, Kind.NO_SHOW, ticket=ticket, counter=counter, actor=acting_user,
                     data={"no_show_count": ticket.no_show_count})
    return ticket


@transaction.atomic(durable=True)
def do_cancel(ticket: Ticket | int, *, acting_user=None, by_patient: bool = False) -> Ticket:
    """Cancel a ticket, by staff or by its holder (the view checked the token).

    On a capacity queue the seats it held are released and an admission cycle
    runs at once (also when a waiting head that did not fit leaves). Locks its
    queue row.
    """
    queue, ticket = lock_ticket_queue(_pk(ticket))
    if ticket.status == TicketStatus.SERVING:
        raise InvalidTransition(_("%(number)s is being served; complete it instead.") % {
            "number": ticket.display_number})
    _require(ticket, CANCELLABLE, "cancel")
    was = ticket.status
    left = (ticket.priority, ticket.seq) if was == TicketStatus.WAITING else None
    ticket.status = TicketStatus.CANCELLED
    ticket.finished_at = timezone.now()
    ticket.save(update_fields=["status", "finished_at"])
    released = 0
    if was in (TicketStatus.OFFERED, TicketStatus.CONFIRMED):
        released = ticket.party_size
        queue.seats_taken -= released
        Queue.objects.filter(pk=queue.pk).update(seats_taken=F("seats_taken") - released)
    record_event(queue, Kind.CANCELLED, ticket=ticket, counter=ticket.counter, actor=acting_user,
                 left_line=left, data={"by": "patient" if by_patient else "staff",
                                       "was": was, "seats_released": released,
                                       **({"seats_taken": queue.seats_taken, "capacity": queue.capacity}
                                          if queue.kind == Queue.Kind.CAPACITY else {})})
    if queue.kind == Queue.Kind.CAPACITY:
        # Seats freed, or a waiting head that did not fit left the line: either
        # way someone behind may now be admitted.
        from .waitlist import admit_locked

        admit_locked(queue, acting_user=acting_user)
    return ticket


@transaction.atomic(durable=True)
def do_transfer(ticket: Ticket | int, *, to_queue: Queue | int, acting_user=None,
                to_front: bool = False) -> Ticket:
    """Move a ticket to another counter queue of the same location.

    The ticket gets a new number in the target queue (numbers are per queue),
    keeps its priority, and stands at the back of the line for that priority,
    or first in it with `to_front=True` (e.g. after triage). Its old ticket is
    marked transferred and points to the new one, so the patient's page follows.
    A paused or full target still takes a transfer: those limits are for
    joins, and staff decided. Locks both queue rows in pk order.
    """
    ticket_id = _pk(ticket)
    source_id = Ticket.objects.filter(pk=ticket_id).values_list("queue_id", flat=True).first()
    if source_id is None:
        raise NotFound(_("Ticket %(id)s does not exist.") % {"id": ticket_id})
    target_id = _pk(to_queue)
    if target_id == source_id:
        raise InvalidInput(_("The ticket is already in that queue."), field="to_queue")
    locked = {q.pk: q for q in lock_queues([source_id, target_id])}
    source, target = locked[source_id], locked[target_id]
    ticket = Ticket.objects.select_related("counter").get(pk=ticket_id)
    ticket.queue = source
    return transfer_locked(source, target, ticket, acting_user=acting_user, to_front=to_front)


def transfer_locked(source: Queue, target: Queue, ticket: Ticket, *, acting_user=None,
                    to_front: bool = False, data: dict | None = None) -> Ticket:
    """`do_transfer` once both queue rows are locked (in pk order, by the caller)."""
    if target.pk == source.pk:
        raise InvalidInput(_("The ticket is already in that queue."), field="to_queue")
    if target.location_id != source.location_id:
        raise InvalidInput(_("Tickets can only be transferred within one location."), field="to_queue")
    if Queue.Kind.CAPACITY in (source.kind, target.kind):
        raise InvalidInput(_("Capacity waitlists do not take or give transfers."), field="to_queue")
    _require(ticket, (TicketStatus.WAITING, *AT_COUNTER), "transfer")
    left = (ticket.priority, ticket.seq) if ticket.status == TicketStatus.WAITING else None
    new = create_ticket_locked(target, priority=ticket.priority, to_front=to_front, note=ticket.note,
                               language=ticket.language)
    ticket.status = TicketStatus.TRANSFERRED
    ticket.finished_at = timezone.now()
    ticket.transferred_to = new
    ticket.save(update_fields=["status", "finished_at", "transferred_to"])
    record_event(source, Kind.TRANSFERRED_OUT, ticket=ticket, counter=ticket.counter,
                 actor=acting_user, left_line=left,
                 data={"to_queue": target.pk, "new_ticket": new.pk, "new_display": new.display_number,
                       **(data or {})})
    record_event(target, Kind.TRANSFERRED_IN, ticket=new, actor=acting_user,
                 entered_line=(new.priority, new.seq),
                 data={"from_queue": source.pk, "old_ticket": ticket.pk, "to_front": to_front})
    return new


def requeue_front_locked(queue: Queue, ticket: Ticket, *, acting_user=None, data: dict | None = None) -> Ticket:
    """Put a called or serving ticket back in line, first in its priority (its
    counter closed before serving it; queue locked by the caller). Not a no-show:
    its no-show count stays."""
    counter = ticket.counter
    ticket.status = TicketStatus.WAITING
    ticket.counter = None
    ticket.seq = _front_of_line(queue)
    _save_counters(queue)
    ticket.save(update_fields=["status", "counter", "seq"])
    record_event(queue, Kind.REQUEUED, ticket=ticket, counter=counter, actor=acting_user,
                 entered_line=(ticket.priority, ticket.seq),
                 data={"no_show_count": ticket.no_show_count, "recall_limit": queue.recall_limit,
                       "to_front": True, **(data or {})})
    return ticket
