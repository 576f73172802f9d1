"""The staff console: pick a counter, then call and serve tickets.

Every action is one POST to `console-act`. With htmx it answers the changed
panel (and the waiting list as an `<hx-partial>`); without JavaScript it
redirects back to the console (POST-redirect-GET) with the outcome as a message.
"""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Prefetch
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .. import pages
from ..access import access_counter, access_queue, access_ticket, is_manager_at, locations_for
from ..forms import ConsoleActionForm
from ..models import AT_COUNTER, BreakReason, Counter, Queue, counter_state_sentence, status_in_sentence
from ..services import (
    CounterHoldsTicket,
    InvalidInput,
    InvalidTransition,
    NotFound,
    QueueActionError,
    do_call_next,
    do_call_ticket,
    do_complete,
    do_no_show,
    do_pause,
    do_recall,
    do_resume,
    do_set_counter_state,
    do_start_serving,
    do_transfer,
)
from ._common import authorize


@authorize
def console_home(request):
    capacity = Queue.objects.filter(kind=Queue.Kind.CAPACITY).select_related("waiting_room").order_by(
        "service_date", "name")
    locations = list(locations_for(request.user).prefetch_related(
        "counters__queues", Prefetch("queues", queryset=capacity, to_attr="capacity_queues")))
    return render(request, "queueapp/console_home.html", {"locations": locations})


def _context(request, counter: Counter, *, notice: str = "", error: str = "") -> dict:
    manager = is_manager_at(request.user, counter.location_id)
    served = list(counter.queues.order_by("name"))
    return {
        **pages.console_feed_context(counter),
        "location": counter.location,
        "active": pages.active_ticket(counter),
        "targets": pages.transfer_targets(counter),
        "served": served,
        "is_manager": manager,
        "break_reasons": BreakReason.choices,
        "notice": notice,
        "error": error,
    }


@authorize
def console(request, counter_id: int):
    counter = access_counter(request.user, counter_id)
    return render(request, "queueapp/console.html", _context(request, counter))


def _ticket_here(user, counter: Counter, ticket_id: int):
    ticket = access_ticket(user, ticket_id)
    if ticket.queue.location_id != counter.location_id:
        raise NotFound(_("Ticket %(id)s does not exist.") % {"id": ticket_id})
    return ticket


def _at_this_counter(ticket, counter: Counter) -> None:
    # A stale page (or a second tab) may act on a ticket that has moved on.
    if ticket.counter_id != counter.pk or ticket.status not in AT_COUNTER:
        raise InvalidTransition(
            _("%(number)s is no longer at %(counter)s (it is %(status)s); the page was out of date.") % {
                "number": ticket.display_number, "counter": counter.name,
                "status": status_in_sentence(ticket.status)}
        )


def _queue_here(user, counter: Counter, queue_id: int, *, manager: bool = False):
    queue = access_queue(user, queue_id, manager=manager)
    if queue.location_id != counter.location_id:
        raise NotFound(_("Queue %(id)s does not exist.") % {"id": queue_id})
    return queue


def perform(user, counter: Counter, data: dict) -> str:
    """Run one console action through its service; answer what happened, in words."""
    action = data["action"]
    if action == "call_next":
        called = do_call_next(counter=counter, acting_user=user)
        if called is None:
            return _("Nobody is waiting.")
        return _("Calling %(number)s to %(counter)s.") % {"number": called.display_number, "counter": counter.name}
    if action in ConsoleActionForm.COUNTER_STATES:
        return _set_state(user, counter, data)
    if action in ("pause", "resume"):
        queue = _queue_here(user, counter, data["queue"], manager=True)
        if action == "pause":
            do_pause(queue, acting_user=user)
            return _("%(queue)s is paused: no new tickets, no calls.") % {"queue": queue.name}
        do_resume(queue, acting_user=user)
        return _("%(queue)s is taking tickets again.") % {"queue": queue.name}
    ticket = _ticket_here(user, counter, data["ticket"])
    if action == "call":
        do_call_ticket(ticket, counter=counter, acting_user=user)
        return _("Calling %(number)s to %(counter)s.") % {"number": ticket.display_number, "counter": counter.name}
    _at_this_counter(ticket, counter)
    if action == "recall":
        do_recall(ticket, acting_user=user)
        return _("%(number)s called again.") % {"number": ticket.display_number}
    if action == "start":
        do_start_serving(ticket, acting_user=user)
        return _("Serving %(number)s.") % {"number": ticket.display_number}
    if action == "complete":
        do_complete(ticket, acting_user=user)
        return _("%(number)s completed.") % {"number": ticket.display_number}
    if action == "no_show":
        after = do_no_show(ticket, acting_user=user)
        if after.status == "waiting":
            return _("%(number)s did not come; back in line (%(count)s no-show so far).") % {
                "number": ticket.display_number, "count": after.no_show_count}
        return _("%(number)s did not come; ticket closed as a no-show.") % {"number": ticket.display_number}
    if action == "transfer":
        queue = _queue_here(user, counter, data["queue"])
        new = do_transfer(ticket, to_queue=queue, acting_user=user)
        return _("%(number)s moved to %(queue)s as %(new)s.") % {
            "number": ticket.display_number, "queue": queue.name, "new": new.display_number}
    raise InvalidInput(_("%(value)s is not an action of the console.") % {"value": action}, field="action")


def _set_state(user, counter: Counter, data: dict) -> str:
    state = ConsoleActionForm.COUNTER_STATES[data["action"]]
    to_queue = None
    if data.get("held") == "transfer" and data.get("queue"):
        to_queue = _queue_here(user, counter, data["queue"])
    counter = do_set_counter_state(counter, state=state, reason=data.get("reason") or "", acting_user=user,
                                   held=data.get("held") or "", held_ticket=data.get("ticket"),
                                   to_queue=to_queue)
    return counter_state_sentence(counter)


def _answer(request, counter: Counter, *, notice: str = "", error: str = "", status: int = 200,
            asking: dict | None = None):
    if request.htmx:
        context = {**_context(request, counter, notice=notice, error=error), "asking": asking}
        return render(request, "queueapp/console.html#actions-response", context, status=status)
    if error:
        messages.error(request, error)
    elif notice:
        messages.success(request, notice)
    return redirect("console", counter_id=counter.pk)


@authorize
@require_POST
def console_act(request, counter_id: int):
    counter = access_counter(request.user, counter_id)
    form = ConsoleActionForm(request.POST)
    try:
        if not form.is_valid():
            raise InvalidInput(form.error_text(), field=form.first_error_field())
        notice = perform(request.user, counter, form.cleaned_data)
    except CounterHoldsTicket as error:
        data = form.cleaned_data
        asking = {"action": data["action"], "reason": data.get("reason") or ""}
        if request.htmx:
            return _answer(request, counter, error=error.message, status=error.status_code, asking=asking)
        # Without JavaScript the question is asked on the page itself: a redirect would lose it.
        context = {**_context(request, counter, error=error.message), "asking": asking}
        return render(request, "queueapp/console.html", context, status=error.status_code)
    except QueueActionError as error:
        return _answer(request, counter, error=error.message, status=error.status_code)
    return _answer(request, counter, notice=notice)


urlpatterns = [
    path("console/", console_home, name="console-home"),
    path("console/<id:counter_id>/", console, name="console"),
    path("console/<id:counter_id>/act", console_act, name="console-act"),
]
