"""Taking a ticket: the lobby kiosk and the same join online.

Both are plain forms (they work without JavaScript), both are rate-limited per
client (`queueapp.ratelimit`), and both refuse a paused or full queue with the
service's own words.
"""

from __future__ import annotations

import segno
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse

from .. import pages
from ..alerts.contacts import alert_contact_from, do_subscribe
from ..forms import JoinForm
from ..languages import language_choices, use_language, visitor_language
from ..models import Booking, Location
from ..ratelimit import check_join_rate, check_rate, remember_browser
from ..selectors import ticket_by_token
from ..slots import bookable_queues
from ..services import InvalidInput, QueueActionError, do_join
from ._common import refuse_form

KIOSK_RETURN_SECONDS = 30  # the ticket screen goes back to the start by itself


def _issue(request, location: Location, *, count, template: str, success):
    """GET shows the services; POST validates, counts the client, joins, redirects."""
    language = use_language(request, visitor_language(request, location))
    queues = pages.joinable_queues(location)
    form = JoinForm(request.POST if request.method == "POST" else None, queues=queues)
    context = {"location": location, "queues": queues, "form": form,
               "languages": language_choices(location.offered_languages),
               "takes_bookings": bool(bookable_queues(location, staff=True))}
    if request.method != "POST":
        return render(request, template, context)
    try:
        if not form.is_valid():
            raise InvalidInput(form.errors["queue"][0], field="queue")
        # Checked before joining, so a bad address leaves no ticket behind.
        alert = alert_contact_from(request.POST)
        count(request)
        ticket = do_join(form.cleaned_data["queue"], language=language)
        if alert is not None:
            do_subscribe(ticket, channel=alert[0], address=alert[1])
    except QueueActionError as error:
        return refuse_form(request, template, context, error)
    return redirect(success(ticket))


def kiosk(request, location_slug: str):
    location = get_object_or_404(Location, slug=location_slug)
    return _issue(request, location, count=lambda r: check_rate(r, "kiosk"), template="queueapp/kiosk.html",
                  success=lambda t: reverse("kiosk-ticket", args=[location.slug, t.token]))


def join(request, location_slug: str):
    location = get_object_or_404(Location, slug=location_slug)
    response = _issue(request, location, count=check_join_rate, template="queueapp/join.html",
                      success=lambda t: reverse("ticket", args=[t.token]))
    return remember_browser(request, response)


def qr_svg(url: str, *, title: str = "QR code of your ticket page") -> str:
    """The URL as an inline SVG QR code (segno, rendered on the server)."""
    return segno.make(url, error="m").svg_inline(scale=5, border=2, dark="#000", light="#fff", title=title)


def kiosk_ticket(request, location_slug: str, token: str):
    """The issued ticket: number, position, wait and a QR code; printable."""
    ticket = ticket_by_token(token)
    if ticket is None or ticket.queue.location.slug != location_slug:
        raise Http404("No such ticket.")
    use_language(request, ticket.language)
    url = request.build_absolute_uri(reverse("ticket", args=[ticket.token]))
    context = {**pages.ticket_context(ticket), "location": ticket.queue.location,
               "booking": Booking.objects.filter(ticket=ticket).first(),
               "patient_url": url, "qr": qr_svg(url), "return_seconds": KIOSK_RETURN_SECONDS}
    return render(request, "queueapp/kiosk_ticket.html", context)


urlpatterns = [
    path("kiosk/<slug:location_slug>/", kiosk, name="kiosk"),
    path("kiosk/<slug:location_slug>/ticket/<token:token>/", kiosk_ticket, name="kiosk-ticket"),
    path("join/<slug:location_slug>/", join, name="join"),
]
