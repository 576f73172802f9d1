"""Minimal pages for the three live screens, to try them in a browser.

The full pages (`/t/<token>/`, `/display/<slug>/`, `/console/<id>/`) are the
pages area's; these only prove the WebSocket path end to end and share its
fragments and reads.
"""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.urls import path

from .. import access
from ..live import reads
from ..live import render as live_render
from ._common import authorize


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


@authorize
def live_console(request, counter_id: int):
    counter = access.access_counter(request.user, counter_id)
    return render(request, "queueapp/live/minimal_console.html", reads.console_context(counter.pk))


urlpatterns = [
    path("live/ticket/<token:token>/", live_ticket, name="live-ticket"),
    path("live/display/<slug:location_slug>/", live_display, name="live-display"),
    path("live/console/<id:counter_id>/", live_console, name="live-console"),
]
