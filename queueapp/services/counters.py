"""A counter's state: open, on a break (with a reason) or closed.

One action, `do_set_counter_state`, one transaction: it locks the queues the
counter serves (and those a held ticket needs) in pk order, then the counter
row, the order `do_call_next` takes them in, so a call and a break at the same
moment are served one after the other and a counter on a break never receives
a call. It writes the counter's state, one `CounterStateChange` history row (what
the statistics read for time open, on a break and idle) and one `counter_state`
event per queue served (live screens: the display's tile, the console, the
patients' wait, which counts open counters only).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..errors import CounterHoldsTicket, InvalidInput, InvalidTransition, NotFound
from ..estimates import counters_serving
from ..models import (
    AT_COUNTER,
    BreakReason,
    Counter,
    CounterState,
    CounterStateChange,
    Queue,
    QueueEvent,
    Ticket,
    counter_state_sentence,
    status_in_sentence,
)
from ._events import record_event
from ._locks import lock_queues
from .tickets import complete_locked, requeue_front_locked, transfer_locked

Held = CounterStateChange.HeldTicket


def _pk(obj) -> int | None:
    return obj if obj is None or isinstance(obj, int) else obj.pk


def _check_choice(value: str, choices, field: str, what: str) -> None:
    if value not in choices.values:
        allowed = ", ".join(choices.values)
        raise InvalidInput(_("%(what)s must be one of %(allowed)s, not %(value)s.") % {
            "what": what, "allowed": allowed, "value": repr(value)}, field=field)


def held_ticket_question(counter: Counter, ticket: Ticket) -> str:
    """What staff are asked when a counter that holds a ticket goes on a break or closes."""
    return _("%(counter)s holds %(number)s (%(status)s): choose what to do with it first: finish it, "
             "put it back at the front of its queue, or transfer it.") % {
        "counter": counter.name, "number": ticket.display_number,
        "status": status_in_sentence(ticket.status)}


@transaction.atomic(durable=True)
def do_set_counter_state(counter: Counter | int, *, state: str, reason: str = "", acting_user=None,
                         held: str = "", held_ticket: Ticket | int | None = None,
                         to_queue: Queue | int | None = None) -> Counter:
    """Open a counter, put it on a break (`reason` from `BreakReason`) or close it.

    A counter that holds a called or serving ticket goes on a break or closes
    only with a decision about that ticket (`held`: finish, requeue to the
    front of its queue, or transfer to `to_queue`), carried out in the same
    transaction; without one, `CounterHoldsTicket` asks for it and nothing is
    written. `held_ticket` (optional) is the ticket the asking page showed: if
    the counter holds another one by now, the page was out of date.

    Locks the counter's queues and those of the held ticket and `to_queue` in
    pk order, then the counter row.
    """
    _check_choice(state, CounterState, "state", _("A counter's state"))
    if state == CounterState.BREAK:
        if not reason:
            raise InvalidInput(_("Say why the counter is on a break: one of %(reasons)s.") % {
                "reasons": ", ".join(BreakReason.values)}, field="reason")
        _check_choice(reason, BreakReason, "reason", _("A break's reason"))
    elif reason:
        raise InvalidInput(_("Only a break has a reason; leave it empty to open or close a counter."),
                           field="reason")
    if held:
        _check_choice(held, Held, "held", _("What to do with the counter's ticket"))
    if held == Held.TRANSFER and to_queue is None:
        raise InvalidInput(_("Choose the queue to transfer the counter's ticket to."), field="to_queue")

    counter_id = _pk(counter)
    if not Counter.objects.filter(pk=counter_id).exists():
        raise NotFound(_("Counter %(id)s does not exist.") % {"id": counter_id})
    served = set(Counter.queues.through.objects.filter(counter_id=counter_id).values_list("queue_id", flat=True))
    holding = Ticket.objects.filter(counter_id=counter_id, status__in=AT_COUNTER).values_list(
        "queue_id", flat=True).first()
    wanted = served | ({holding} if holding else set()) | ({_pk(to_queue)} if to_queue is not None else set())
    locked = {q.pk: q for q in lock_queues(wanted)}
    counter = Counter.objects.select_for_update(of=("self",)).get(pk=counter_id)

    if counter.state == state and counter.break_reason == reason:
        raise InvalidTransition(counter_state_sentence(counter, said="already"), field="state")
    ticket = (Ticket.objects.select_related("counter").filter(counter=counter, status__in=AT_COUNTER).first())
    if ticket is not None and ticket.queue_id not in locked:
        # Called from a queue the counter no longer serves, between our read and the locks.
        raise InvalidTransition(_("The ticket at %(counter)s just changed; try again.") % {"counter": counter.name})
    if held_ticket is not None and (ticket is None or ticket.pk != _pk(held_ticket)):
        if ticket:
            stale = _("%(counter)s holds %(number)s now; the page was out of date.") % {
                "counter": counter.name, "number": ticket.display_number}
        else:
            stale = _("%(counter)s holds no ticket now; the page was out of date.") % {"counter": counter.name}
        raise InvalidTransition(stale, field="held")
    action = ""
    if ticket is not None and state != CounterState.OPEN:
        if not held:
            raise CounterHoldsTicket(held_ticket_question(counter, ticket), field="held")
        action = held
        _resolve_held(locked, counter, ticket, held, to_queue=_pk(to_queue), acting_user=acting_user)

    previous = counter.state
    counter.state, counter.break_reason = state, reason
    counter.save(update_fields=["state", "break_reason"])
    CounterStateChange.objects.create(
        counter=counter, state=state, reason=reason, previous_state=previous,
        staff=acting_user if getattr(acting_user, "is_authenticated", False) else None,
        at=timezone.now(), held_ticket=ticket, held_action=action)
    for queue_id in sorted(served):
        queue = locked[queue_id]
        record_event(queue, QueueEvent.Kind.COUNTER_STATE, counter=counter, actor=acting_user,
                     data={"counter": counter.pk, "counter_name": counter.name, "state": state,
                           "reason": reason, "open_counters": counters_serving(queue)})
    return counter


def _resolve_held(locked: dict[int, Queue], counter: Counter, ticket: Ticket, held: str, *,
                  to_queue: int | None, acting_user) -> None:
    queue = locked[ticket.queue_id]
    ticket.queue = queue
    why = {"counter_closing": counter.pk}
    if held == Held.FINISH:
        complete_locked(queue, ticket, acting_user=acting_user, data=why)
    elif held == Held.REQUEUE:
        requeue_front_locked(queue, ticket, acting_user=acting_user, data=why)
    else:
        target = locked.get(to_queue)
        if target is None:
            raise NotFound(_("Queue %(id)s does not exist.") % {"id": to_queue}, field="to_queue")
        transfer_locked(queue, target, ticket, acting_user=acting_user, data=why)
