"""The staff waitlist page and the patient's accept/decline of an offer.

Plain POST forms that htmx enhances: with htmx the answer is the fragment that
changed (the board, or the offer actions), otherwise a redirect after a
success and the page with the error (and its 4xx status) after a refusal.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, path, reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from ..access import access_queue, is_manager_at
from ..forms import CapacityForm
from ..models import Queue, Ticket, TicketStatus
from ..selectors import ticket_by_token, waitlist_overview
from ..services import (
    InvalidInput,
    QueueActionError,
    do_accept_offer,
    do_confirm_waitlist,
    do_decline_offer,
    do_set_capacity,
)

PAGE = "queueapp/waitlist.html"


def _board_context(request: HttpRequest, queue: Queue, **extra) -> dict:
    return {"queue": queue, "overview": waitlist_overview(queue),
            "can_set_capacity": is_manager_at(request.user, queue.location_id), **extra}


def _answer(request: HttpRequest, queue: Queue, *, notice: str = "",
            error: QueueActionError | None = None) -> HttpResponse:
    """The board fragment for htmx; otherwise redirect (success) or the page (refusal)."""
    if request.htmx or error is not None:
        queue.refresh_from_db()
        context = _board_context(request, queue, notice=notice, error=error)
        template = f"{PAGE}#board" if request.htmx else PAGE
        return render(request, template, context, status=error.status_code if error else 200)
    messages.success(request, notice)
    return redirect("waitlist", queue_id=queue.pk)


def _staff_queue(request: HttpRequest, queue_id: int, *, manager: bool = False):
    """The queue if the user may act on it, else the response that says why."""
    if not request.user.is_authenticated:
        return None, redirect_to_login(request.get_full_path())
    try:
        queue = access_queue(request.user, queue_id, manager=manager)
    except QueueActionError as err:
        return None, render(request, "queueapp/waitlist_refused.html", {"error": err},
                            status=err.status_code)
    if queue.kind != Queue.Kind.CAPACITY:
        raise Http404("This queue is a counter queue, not a waitlist.")
    return queue, None


@require_GET
def waitlist_page(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue, refused = _staff_queue(request, queue_id)
    if refused:
        return refused
    template = f"{PAGE}#board" if request.htmx else PAGE
    return render(request, template, _board_context(request, queue))


@require_POST
def confirm_waitlist(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue, refused = _staff_queue(request, queue_id)
    if refused:
        return refused
    try:
        admitted = do_confirm_waitlist(queue.pk, acting_user=request.user)
    except QueueActionError as err:
        return _answer(request, queue, error=err)
    if admitted:
        shown = ", ".join(t.display_number for t in admitted)
        verb = "Offered seats to" if queue.offer_seconds else "Confirmed"
        notice = f"{verb} {len(admitted)}: {shown}."
    else:
        notice = "Nobody could be confirmed: no free seats fit the next request in line."
    return _answer(request, queue, notice=notice)


@require_POST
def set_capacity(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue, refused = _staff_queue(request, queue_id, manager=True)
    if refused:
        return refused
    form = CapacityForm(request.POST)
    try:
        if not form.is_valid():
            raise InvalidInput(form.error_text(), field="capacity")
        queue = do_set_capacity(queue.pk, capacity=form.cleaned_data["capacity"], acting_user=request.user)
    except QueueActionError as err:
        return _answer(request, queue, error=err)
    return _answer(request, queue, notice=f"Capacity is now {queue.capacity} seats.")


# --- the patient's offer ---------------------------------------------------------

def _ticket_page(token: str) -> str:
    # The patient page belongs to the screens area; its path is fixed by contract.
    try:
        return reverse("ticket", args=[token])
    except NoReverseMatch:
        return f"/t/{token}/"


def _offer_answer(request: HttpRequest, ticket: Ticket, *, notice: str,
                  error: QueueActionError | None) -> HttpResponse:
    if not request.htmx and error is None:
        return redirect(_ticket_page(ticket.token), permanent=False)
    ticket.refresh_from_db()
    context = {"ticket": ticket, "offer_notice": notice, "offer_error": error,
               "ticket_page": _ticket_page(ticket.token)}
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
            raise Http404("No ticket has this link.")
        try:
            ticket = service(ticket.pk)
        except QueueActionError as err:
            return _offer_answer(request, ticket, notice="", error=err)
        return _offer_answer(request, ticket, notice=notice(ticket), error=None)

    view.__name__ = service.__name__.removeprefix("do_")
    return view


def _accepted(ticket: Ticket) -> str:
    return f"Accepted: your {ticket.party_size} seat(s) are confirmed ({ticket.display_number})."


def _declined(ticket: Ticket) -> str:
    if ticket.status == TicketStatus.EXPIRED:
        return "This offer had already expired; its seats went to the next person in line."
    return "You declined the offer; the seats go to the next person in line."


accept_offer = _offer_view(do_accept_offer, _accepted)
decline_offer = _offer_view(do_decline_offer, _declined)

urlpatterns = [
    path("waitlist/<id:queue_id>/", waitlist_page, name="waitlist"),
    path("waitlist/<id:queue_id>/confirm", confirm_waitlist, name="waitlist-confirm"),
    path("waitlist/<id:queue_id>/capacity", set_capacity, name="waitlist-capacity"),
    path("t/<token:token>/accept", accept_offer, name="offer-accept"),
    path("t/<token:token>/decline", decline_offer, name="offer-decline"),
]
