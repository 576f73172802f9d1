"""Minimal pages for the three live screens, to try them in a browser.

The full pages (`/t/<token>/`, `/display/<slug>/`, `/console/<id>/`) are the
pages area's; these only prove the WebSocket path end to end and share its
fragments and reads.
"""

from __future__ import annotations

from django.http import Http404, HttpResponseForbidden
from django.shortcuts import render
from django.urls import path

from .. import access
from ..live import reads
from ..live import render as live_render
from ..errors import NotFound, PermissionDenied


def live_ticket(request, token: str):
    view = reads.ticket_view(token)
    if view is None:
        raise Http404("No ticket with this link.")
    return render(request, "queueapp/live/minimal_ticket.html",
                  {**live_render.ticket_context(view), "token": token})


def live_display(request, location_slug: str):
    location = reads.location_by_slug(location_slug)
    if location is None:
        raise Http404("No such location.")
    return render(request, "queueapp/live/minimal_display.html",
                  {**reads.display_context(location.pk), "location": location,
                   "key": "", "number": "", "counter": "", "kind": ""})


def live_console(request, counter_id: int):
    try:
        counter = access.access_counter(request.user, counter_id)
    except NotFound as exc:
        raise Http404(exc.message) from None
    except PermissionDenied as exc:
        return HttpResponseForbidden(exc.message)
    return render(request, "queueapp/live/minimal_console.html", reads.console_context(counter.pk))


urlpatterns = [
    path("live/ticket/<token:token>/", live_ticket, name="live-ticket"),
    path("live/display/<slug:location_slug>/", live_display, name="live-display"),
    path("live/console/<id:counter_id>/", live_console, name="live-console"),
]
