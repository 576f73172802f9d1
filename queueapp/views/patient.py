"""The patient's page, reached by the ticket's unguessable token. No login, no names."""

from __future__ import annotations

from django.contrib import messages
from django.utils.translation import gettext
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from .. import pages
from ..forms import FeedbackForm
from ..languages import language_choices, use_language
from ..models import CANCELLABLE, FINAL_STATUSES, Ticket
from ..personal_data import ticket_data
from ..selectors import follow_transfers, ticket_by_token
from ..services import QueueActionError, do_cancel, do_give_feedback, do_set_ticket_language
from ..services.feedback import feedback_refusal


def _ticket_or_404(token: str) -> Ticket:
    ticket = ticket_by_token(token)
    if ticket is None:
        raise Http404("No such ticket. Check the link, or take a new ticket.")
    return ticket


def ticket(request, token: str):
    held = _ticket_or_404(token)
    latest = follow_transfers(held)
    if latest.pk != held.pk:
        return redirect("ticket", token=latest.token)
    return _ticket_page(request, held)


def _ticket_page(request, held: Ticket, *, feedback_form=None, status: int = 200):
    # The rating form is on the page of a ticket still in progress too (shown by
    # app.css once the live fragment says completed) and of a completed one
    # that may still be rated.
    location = held.queue.location
    use_language(request, held.language)
    asks = held.status not in FINAL_STATUSES or feedback_refusal(held) is None
    context = {**pages.ticket_context(held), "location": location,
               "can_cancel": held.status in CANCELLABLE,
               "languages": language_choices(location.offered_languages),
               "feedback_form": (feedback_form or FeedbackForm()) if asks or feedback_form else None}
    return render(request, "queueapp/ticket.html", context, status=status)


@require_POST
def feedback(request, token: str):
    """A completed visit's rating: once, within a day (`do_give_feedback`).
    A refusal re-renders the page with the reason and writes nothing."""
    held = _ticket_or_404(token)
    # The holder's language before the form is checked: its errors speak it.
    use_language(request, held.language)
    form = FeedbackForm(request.POST)
    if not form.is_valid():
        return _ticket_page(request, held, feedback_form=form, status=400)
    try:
        do_give_feedback(held, rating=form.cleaned_data["rating"], comment=form.cleaned_data["comment"])
    except QueueActionError as error:
        form.add_error(error.field, error.message)
        return _ticket_page(request, held, feedback_form=form, status=error.status_code)
    messages.success(request, gettext("Thank you for your feedback."))
    return redirect("ticket", token=held.token)


@require_POST
def cancel(request, token: str):
    # The form on a page opened before a transfer still names the old token.
    held = follow_transfers(_ticket_or_404(token))
    use_language(request, held.language)
    try:
        do_cancel(held, by_patient=True)
    except QueueActionError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, gettext("Ticket %(number)s is cancelled. Thank you for letting us know.") % {
            "number": held.display_number})
    return redirect("ticket", token=held.token)


@require_POST
def choose_language(request, token: str):
    """The holder picks another language: their page, its live updates and their
    alerts speak it from now on."""
    held = follow_transfers(_ticket_or_404(token))
    try:
        do_set_ticket_language(held, language=request.POST.get("language", ""))
    except QueueActionError as error:
        use_language(request, held.language)
        messages.error(request, error.message)
    return redirect("ticket", token=held.token)


def my_data(request, token: str):
    """Everything held about this ticket's holder, as a JSON download (the
    token is their only credential, as for the page itself)."""
    held = _ticket_or_404(token)
    response = JsonResponse(ticket_data(held), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="ticket-{held.display_number}-data.json"'
    response["Cache-Control"] = "no-store"
    return response


urlpatterns = [
    path("t/<token:token>/", ticket, name="ticket"),
    path("t/<token:token>/cancel", cancel, name="ticket-cancel"),
    path("t/<token:token>/data", my_data, name="ticket-data"),
    path("t/<token:token>/language", choose_language, name="ticket-language"),
    path("t/<token:token>/feedback", feedback, name="ticket-feedback"),
]
