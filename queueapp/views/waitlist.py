"""The staff waitlist page and the patient's accept/decline of an offer.

Plain POST forms that htmx enhances: with htmx the answer is the fragment that
changed (the board, or the offer actions), otherwise a redirect after a
success and the page with the error (and its 4xx status) after a refusal.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.csrf import csrf_exempt
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from ..access import access_queue, is_manager_at
from ..forms import CapacityForm, WaitlistRowForm
from ..languages import use_language
from ..models import HOLDING_SEATS, Queue, Ticket, TicketStatus
from ..selectors import admitted_since, ticket_by_token
from ..services import (
    InvalidInput,
    NotFound,
    QueueActionError,
    do_accept_offer,
    do_admit_request,
    do_cancel,
    do_confirm_waitlist,
    do_decline_offer,
    do_move_to_front,
    do_set_capacity,
)
from ..waitlist_board import board_context
from ._common import authorize

PAGE = "queueapp/waitlist.html"


def _board_context(request: HttpRequest, queue: Queue, **extra) -> dict:
    return {**board_context(queue.pk), "can_set_capacity": is_manager_at(request.user, queue.location_id),
            **extra}


def _answer(request: HttpRequest, queue: Queue, *, notice: str = "",
            error: QueueActionError | None = None) -> HttpResponse:
    """With htmx: the feedback and a fresh board (the live push follows anyway).
    Without: redirect after a success (the message shows), the page after a refusal."""
    if request.htmx:
        context = _board_context(request, queue, notice=notice, error=error)
        return render(request, f"{PAGE}#action-response", context,
                      status=error.status_code if error else 200)
    if error is not None:
        return render(request, PAGE, _board_context(request, queue, error=error), status=error.status_code)
    messages.success(request, notice)
    return redirect("waitlist", queue_id=queue.pk)


def _waitlist(request: HttpRequest, queue_id: int, *, manager: bool = False) -> Queue:
    """The waitlist if the user may act on it; the access checks' errors (and
    NotFound for a queue that is no waitlist) rise to `@authorize`."""
    queue = access_queue(request.user, queue_id, manager=manager)
    if queue.kind != Queue.Kind.CAPACITY or queue.room_slug is not None:
        raise NotFound(_("%(queue)s is not a waitlist.") % {"queue": queue.name})
    return queue


def _admitted_sentence(admitted: list[Ticket]) -> str:
    """Who was just admitted, as a whole sentence in the staff member's language."""
    if not admitted:
        return _("Nobody could be admitted.")
    values = {"names": ", ".join(t.display_number for t in admitted), "seats": sum(t.party_size for t in admitted)}
    if admitted[0].status == TicketStatus.OFFERED:
        return ngettext("Offered seats to %(names)s (%(seats)s seat).", "Offered seats to %(names)s (%(seats)s seats).",
                        values["seats"]) % values
    return ngettext("Confirmed %(names)s (%(seats)s seat).", "Confirmed %(names)s (%(seats)s seats).",
                    values["seats"]) % values


@require_GET
@authorize
def waitlist_page(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = _waitlist(request, queue_id)
    return render(request, PAGE, _board_context(request, queue))


@require_POST
@authorize
def confirm_waitlist(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = _waitlist(request, queue_id)
    try:
        admitted = do_confirm_waitlist(queue.pk, acting_user=request.user)
    except QueueActionError as err:
        return _answer(request, queue, error=err)
    if admitted:
        notice = _admitted_sentence(admitted)
    else:
        notice = _("Nobody could be confirmed: no free seats fit the next request in line.")
    return _answer(request, queue, notice=notice)


@require_POST
@authorize
def set_capacity(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = _waitlist(request, queue_id, manager=True)
    form = CapacityForm(request.POST)
    before = queue.capacity
    try:
        if not form.is_valid():
            raise InvalidInput(form.error_text(), field="capacity")
        version = Queue.objects.filter(pk=queue.pk).values_list("version", flat=True).get()
        queue = do_set_capacity(queue.pk, capacity=form.cleaned_data["capacity"], acting_user=request.user)
    except QueueActionError as err:
        return _answer(request, queue, error=err)
    admitted = admitted_since(queue, version)
    notice = _("Capacity %(before)s → %(after)s seats; %(free)s free now.") % {
        "before": before, "after": queue.capacity, "free": queue.seats_free}
    if admitted:
        notice += " " + _admitted_sentence(admitted)
    return _answer(request, queue, notice=notice)


@require_POST
@authorize
def row_action(request: HttpRequest, queue_id: int) -> HttpResponse:
    """One request's action from its row: confirm now, offer, move to front, cancel."""
    queue = _waitlist(request, queue_id)
    form = WaitlistRowForm(request.POST)
    try:
        if not form.is_valid():
            raise InvalidInput(form.error_text(), field=form.first_error_field())
        action, ticket_id = form.cleaned_data["action"], form.cleaned_data["ticket"]
        ticket = Ticket.objects.filter(pk=ticket_id, queue=queue).first()
        if ticket is None:
            raise InvalidInput(_("There is no request %(id)s on %(queue)s.") % {"id": ticket_id, "queue": queue.name},
                               field="ticket")
        if action == "cancel":
            was = ticket.status
            ticket = do_cancel(ticket.pk, acting_user=request.user)
            if was in HOLDING_SEATS:
                notice = ngettext("Cancelled %(number)s: %(seats)s seat free again.",
                                  "Cancelled %(number)s: %(seats)s seats free again.", ticket.party_size) % {
                    "number": ticket.display_number, "seats": ticket.party_size}
            else:
                notice = _("Cancelled %(number)s.") % {"number": ticket.display_number}
        elif action == "front":
            ticket = do_move_to_front(ticket.pk, acting_user=request.user)
            notice = _("%(number)s is now first in line.") % {"number": ticket.display_number}
        else:
            ticket = do_admit_request(ticket.pk, offer=action == "offer", acting_user=request.user)
            notice = _admitted_sentence([ticket])
    except QueueActionError as err:
        return _answer(request, queue, error=err)
    return _answer(request, queue, notice=notice)


# --- the patient's offer ---------------------------------------------------------

def _offer_answer(request: HttpRequest, ticket: Ticket, *, notice: str,
                  error: QueueActionError | None) -> HttpResponse:
    if not request.htmx and error is None:
        return redirect("ticket", token=ticket.token)
    ticket.refresh_from_db()
    context = {"ticket": ticket, "offer_notice": notice, "offer_error": error,
               "ticket_page": reverse("ticket", args=[ticket.token])}
    template = "queueapp/live/offer_actions.html" if request.htmx else "queueapp/offer_result.html"
    return render(request, template, context, status=error.status_code if error else 200)


def _offer_view(service, notice):
    # Exempt from CSRF on purpose: the 128-bit token in the URL is the credential,
    # and a foreign site cannot know it; the fragment with these forms is also
    # re-rendered over the WebSocket, where no CSRF token could be embedded.
    @csrf_exempt
    @require_POST
    def view(request: HttpRequest, token: str) -> HttpResponse:
        ticket = ticket_by_token(token)
        if ticket is None:
            raise Http404(_("No ticket has this link."))
        use_language(request, ticket.language)  # the holder's, as on their ticket page
        try:
            ticket = service(ticket.pk)
        except QueueActionError as err:
            return _offer_answer(request, ticket, notice="", error=err)
        return _offer_answer(request, ticket, notice=notice(ticket), error=None)

    view.__name__ = service.__name__.removeprefix("do_")
    return view


def _accepted(ticket: Ticket) -> str:
    return ngettext("Accepted: your %(seats)s seat is confirmed (%(number)s).",
                    "Accepted: your %(seats)s seats are confirmed (%(number)s).", ticket.party_size) % {
        "seats": ticket.party_size, "number": ticket.display_number}


def _declined(ticket: Ticket) -> str:
    if ticket.status == TicketStatus.EXPIRED:
        return _("This offer had already expired; its seats went to the next person in line.")
    return _("You declined the offer; the seats go to the next person in line.")


accept_offer = _offer_view(do_accept_offer, _accepted)
decline_offer = _offer_view(do_decline_offer, _declined)

urlpatterns = [
    path("waitlist/<id:queue_id>/", waitlist_page, name="waitlist"),
    path("waitlist/<id:queue_id>/confirm", confirm_waitlist, name="waitlist-confirm"),
    path("waitlist/<id:queue_id>/capacity", set_capacity, name="waitlist-capacity"),
    path("waitlist/<id:queue_id>/row", row_action, name="waitlist-row"),
    path("t/<token:token>/accept", accept_offer, name="offer-accept"),
    path("t/<token:token>/decline", decline_offer, name="offer-decline"),
]
