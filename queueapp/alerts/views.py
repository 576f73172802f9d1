"""Ticket holders' opt-in (form and web push), the stop link, the service worker."""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib import messages
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from .. import pages
from ..selectors import ticket_by_token
from ..errors import InvalidInput, QueueActionError
from ..languages import use_language
from .contacts import (
    do_stop,
    do_subscribe,
    do_subscribe_staff_push,
    parse_email,
    parse_phone,
    parse_push_subscription,
)
from .models import Channel, StaffPushSubscription

SERVICE_WORKER = Path(__file__).resolve().parent / "static_sw.js"


def _ticket(request, token: str):
    """The ticket, and the holder's language for the answer (as on their ticket page)."""
    ticket = ticket_by_token(token)
    if ticket is None:
        raise Http404(_("No such ticket."))
    use_language(request, ticket.language)
    return ticket


def _json_body(request):
    try:
        return json.loads(request.body or b"null")
    except ValueError:
        raise InvalidInput(_("The body must be JSON."), field="subscription") from None


@require_POST
def subscribe(request, token: str):
    """The ticket page's form: SMS or e-mail, with explicit consent."""
    ticket = _ticket(request, token)
    channel = request.POST.get("channel", "")
    try:
        if channel not in (Channel.SMS, Channel.EMAIL):
            raise InvalidInput(_("Choose SMS or e-mail."), field="channel")
        if request.POST.get("consent") != "yes":
            raise InvalidInput(_("Tick the box to agree to receive these messages."), field="consent")
        parse = parse_phone if channel == Channel.SMS else parse_email
        address = parse(request.POST.get("address", ""), field="address")
        do_subscribe(ticket, channel=channel, address=address)
    except QueueActionError as error:
        context = {**pages.ticket_context(ticket), "location": ticket.queue.location,
                   "alert_error": error.message, "alert_field": error.field,
                   "alert_channel": channel, "alert_address": request.POST.get("address", "")}
        return render(request, "queueapp/ticket.html", context, status=error.status_code)
    messages.success(request, _("Alerts are on: we will tell you when your turn is near "
                                "(each message has a link to stop them)."))
    return redirect("ticket", token=ticket.token)


@require_POST
def subscribe_push(request, token: str):
    """The browser's PushSubscription as JSON (sent by alerts.js after the person clicked)."""
    ticket = _ticket(request, token)
    try:
        endpoint, keys = parse_push_subscription(_json_body(request))
        do_subscribe(ticket, channel=Channel.PUSH, address=endpoint, keys=keys)
    except QueueActionError as error:
        return JsonResponse({"detail": error.message, "field": error.field}, status=error.status_code)
    return JsonResponse({"detail": _("Notifications are on for this browser.")}, status=201)


@require_POST
def subscribe_staff_push(request):
    """A manager's browser asks for staff alerts by web push (console home)."""
    if not request.user.is_authenticated:
        return JsonResponse({"detail": _("Log in first."), "field": None}, status=401)
    try:
        endpoint, keys = parse_push_subscription(_json_body(request))
        do_subscribe_staff_push(request.user, endpoint=endpoint, keys=keys)
    except QueueActionError as error:
        return JsonResponse({"detail": error.message, "field": error.field}, status=error.status_code)
    return JsonResponse({"detail": _("Staff alerts will also come to this browser.")}, status=201)


@csrf_exempt  # the unguessable token is the credential; mail clients' one-click POST has no CSRF token
def stop(request, stop_token: str):
    """GET asks to confirm (link scanners must not unsubscribe people); POST stops."""
    if request.method == "POST":
        try:
            stopped = do_stop(stop_token)
        except QueueActionError as error:
            return render(request, "alerts/stop.html", {"error": error.message}, status=error.status_code)
        return render(request, "alerts/stop.html",
                      {"stopped": True, "staff": isinstance(stopped, StaffPushSubscription)})
    if request.method != "GET":
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    return render(request, "alerts/stop.html", {"stop_token": stop_token})


@require_GET
@cache_control(max_age=0, no_cache=True)
def service_worker(request):
    # Served from here (not /static/) with Service-Worker-Allowed so it may control /t/ pages.
    response = HttpResponse(SERVICE_WORKER.read_text(), content_type="application/javascript")
    response["Service-Worker-Allowed"] = "/"
    return response


urlpatterns = [
    path("t/<token:token>/alerts", subscribe, name="alerts-subscribe"),
    path("t/<token:token>/alerts/push", subscribe_push, name="alerts-subscribe-push"),
    path("alerts/staff/push", subscribe_staff_push, name="alerts-staff-push"),
    path("alerts/stop/<token:stop_token>/", stop, name="alerts-stop"),
    path("alerts/sw.js", service_worker, name="alerts-sw"),
]
