"""Public request pages of capacity waitlists: one per location, one per resource.

"Train 101, 10 September, 37 of 200 seats free": choose a party size, get a
request page (the ticket page, live) that speaks the waitlist's language. Plain
forms (they work without JavaScript), rate-limited like the join page, refused
in words with the service's status. Dated resources list only today and later;
a resource whose date has passed refuses requests (`do_join`).
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse

from ..alerts.contacts import alert_contact_from, do_subscribe
from ..forms import SeatRequestForm
from ..languages import language_choices, use_language, visitor_language
from ..models import Location, Queue
from ..ratelimit import check_join_rate, remember_browser
from ..selectors import requestable_resources
from ..services import InvalidInput, QueueActionError, do_join
from ..services.tickets import MAX_PARTY_SIZE, check_date_open
from ._common import refuse_form

TEMPLATE = "queueapp/request.html"


def _answer(request, location: Location, resources: list[Queue], *, single: Queue | None):
    language = use_language(request, visitor_language(request, location))
    form = SeatRequestForm(request.POST if request.method == "POST" else None, resources=resources)
    context = {"location": location, "resources": resources, "single": single, "form": form,
               "max_party": MAX_PARTY_SIZE, "languages": language_choices(location.offered_languages)}
    if request.method != "POST":
        return render(request, TEMPLATE, context)
    try:
        if not form.is_valid():
            raise InvalidInput(form.error_text(), field=form.first_error_field())
        alert = alert_contact_from(request.POST)  # optional contact; checked before anything is written
        check_join_rate(request)  # the join page's limits: per browser, then per address
        ticket = do_join(form.cleaned_data["queue"], party_size=form.cleaned_data["party_size"],
                         language=language)
        if alert is not None:
            do_subscribe(ticket, channel=alert[0], address=alert[1])
    except QueueActionError as error:
        return refuse_form(request, TEMPLATE, context, error)
    return redirect(reverse("ticket", args=[ticket.token]))


def location_requests(request, location_slug: str):
    location = get_object_or_404(Location, slug=location_slug)
    return remember_browser(request, _answer(request, location, requestable_resources(location), single=None))


def resource_requests(request, location_slug: str, queue_slug: str):
    location = get_object_or_404(Location, slug=location_slug)
    queue = get_object_or_404(Queue, location=location, slug=queue_slug, kind=Queue.Kind.CAPACITY,
                              waiting_room__isnull=True)
    listed = [q for q in requestable_resources(location) if q.pk == queue.pk]
    if not listed:
        use_language(request, visitor_language(request, location))  # its date has passed: say so, on GET and POST alike
        try:
            check_date_open(queue)
        except QueueActionError as error:
            return render(request, TEMPLATE, {"location": location, "resources": [], "single": queue,
                                              "error": error.message}, status=error.status_code)
    return remember_browser(request, _answer(request, location, listed, single=listed[0]))


urlpatterns = [
    path("request/<slug:location_slug>/", location_requests, name="requests"),
    path("request/<slug:location_slug>/<slug:queue_slug>/", resource_requests, name="request-resource"),
]
