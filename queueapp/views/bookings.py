"""Appointments: book online, the booking page (code, QR, move, cancel, check in),
check-in at the kiosk (scan or type the code), and the staff's day of bookings.

Plain forms (they work without JavaScript); every write is one service call;
the refusals are the services' own words, naming the field.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ..access import check_staff_at
from ..alerts.contacts import alert_contact_from
from ..forms import WholeNumberField, parse_day, parse_slot_start
from ..languages import language_choices, use_language, visitor_language
from ..models import MAX_ID, Booking, BookingStatus, Location, Priority, Queue
from ..ratelimit import check_join_rate, check_rate, remember_browser
from ..services import (
    InvalidInput,
    NotFound,
    QueueActionError,
    do_book,
    do_cancel_booking,
    do_check_in,
    do_move_booking,
)
from ..slots import booking_by_code, booking_view, bookable_queues, day_of_bookings, open_slots, slot_days
from ._common import authorize, refuse_form
from .kiosk import qr_svg

DAYS_SHOWN = 7


def _whole(raw, field: str, message: str, *, low: int = 0) -> int:
    try:
        return WholeNumberField(min_value=low, max_value=MAX_ID).clean(raw)
    except ValidationError:
        raise InvalidInput(message, field=field) from None


def _pick(queues, raw) -> Queue | None:
    if raw in (None, ""):
        return None
    queue_id = _whole(raw, "queue", _("Choose one of the services listed."), low=1)
    queue = next((q for q in queues if q.pk == queue_id), None)
    if queue is None:
        raise InvalidInput(_("Choose one of the services listed."), field="queue")
    return queue


def _slots_context(queue: Queue | None, day) -> dict:
    if queue is None:
        return {}
    days = slot_days(queue, DAYS_SHOWN)
    day = day or (days[0] if days else None)
    return {"days": days, "day": day, "slots": open_slots(queue, day) if day else []}


def book(request, location_slug: str):
    """Pick a service, a day and a slot; optional contact; POST books and goes to the booking page."""
    location = get_object_or_404(Location, slug=location_slug)
    use_language(request, visitor_language(request, location))
    queues = bookable_queues(location)
    data = request.POST if request.method == "POST" else request.GET
    context = {"location": location, "queues": queues, "languages": language_choices(location.offered_languages)}
    try:
        queue = _pick(queues, data.get("queue"))
        context.update(queue=queue, **_slots_context(queue, parse_day(request.GET.get("day"))))
        if request.method != "POST":
            return render(request, "queueapp/book.html", context)
        if queue is None:
            raise InvalidInput(_("Choose a service."), field="queue")
        starts_at = parse_slot_start(request.POST.get("starts_at"))
        contact = alert_contact_from(request.POST)  # checked before anything is written
        check_join_rate(request)
        booking = do_book(queue, starts_at=starts_at, contact=contact)
    except QueueActionError as error:
        return remember_browser(request, refuse_form(request, "queueapp/book.html", context, error))
    return remember_browser(request, redirect("booking", booking.token))


def _booking(request, token: str) -> Booking:
    """The booking, and its page's language: the visitor's (a pick, the browser's,
    the location's default), as on the booking page it was made from."""
    booking = Booking.objects.select_related("slot__queue__location", "ticket__queue").filter(token=token).first()
    if booking is None:
        raise Http404(_("No such booking."))
    use_language(request, visitor_language(request, booking.slot.queue.location))
    return booking


def booking_page(request, token: str, *, error: QueueActionError | None = None):
    """The holder's page: when, the code and its QR (what the kiosk scans), and what to do next."""
    booking = _booking(request, token)
    url = request.build_absolute_uri(reverse("booking", args=[booking.token]))
    context = {**booking_view(booking), "qr": qr_svg(url, title=_("QR code of your booking")), "booking_url": url,
               "languages": language_choices(booking.slot.queue.location.offered_languages)}
    if booking.status == BookingStatus.BOOKED:
        try:
            context.update(moving=True, **_slots_context(booking.slot.queue, parse_day(request.GET.get("day"))))
        except QueueActionError as bad_day:
            error = error or bad_day
    if error is not None:
        context.update(error=error.message, error_field=error.field)
        return render(request, "queueapp/booking.html", context, status=error.status_code)
    return render(request, "queueapp/booking.html", context)


def _holder_action(request, token: str, act) -> HttpResponse:
    """A holder's action from their own booking page: done, back to the page;
    refused, the page again saying why."""
    booking = _booking(request, token)
    try:
        act(booking)
    except QueueActionError as error:
        return booking_page(request, token, error=error)
    return redirect("booking", booking.token)


@require_POST
def booking_cancel(request, token: str):
    return _holder_action(request, token, lambda booking: do_cancel_booking(booking, by_holder=True))


@require_POST
def booking_move(request, token: str):
    return _holder_action(request, token, lambda booking: do_move_booking(
        booking, starts_at=parse_slot_start(request.POST.get("starts_at"))))


def _check_in_from_page(booking) -> None:
    if not booking.slot.queue.booking_schedule.self_check_in:
        raise InvalidInput(_("Please check in at the kiosk or at the desk."), field="booking")
    do_check_in(booking, via="page")


@require_POST
def booking_check_in(request, token: str):
    """Check in from one's own booking page, when the queue allows it (the holder is near)."""
    return _holder_action(request, token, _check_in_from_page)


def kiosk_check_in(request, location_slug: str):
    """The kiosk's appointment check-in: scan the booking's QR code or type its code."""
    location = get_object_or_404(Location, slug=location_slug)
    use_language(request, visitor_language(request, location))
    context = {"location": location}
    if request.method != "POST":
        return render(request, "queueapp/kiosk_check_in.html", context)
    try:
        check_rate(request, "kiosk")
        booking = booking_by_code(request.POST.get("code"))
        if booking.slot.queue.location_id != location.pk:
            raise NotFound(_("That booking is for another location."), field="code")
        booking = do_check_in(booking, via="kiosk")
    except QueueActionError as error:
        context.update(error=error.message, code=str(request.POST.get("code", ""))[:40])
        return render(request, "queueapp/kiosk_check_in.html", context, status=error.status_code)
    return redirect(reverse("kiosk-ticket", args=[location.slug, booking.ticket.token]))


# -- staff ------------------------------------------------------------------

@authorize
def staff_bookings(request, location_slug: str):
    """The day's bookings at a location, with check-in and cancel, and booking for someone."""
    location = get_object_or_404(Location, slug=location_slug)
    check_staff_at(request.user, location)
    queues = bookable_queues(location, staff=True)
    data = request.POST if request.method == "POST" else request.GET
    day = parse_day(request.GET.get("day")) or location.business_day()
    context = {"location": location, "queues": queues, "day": day, "priorities": Priority.choices,
               "previous": day - timedelta(days=1), "next": day + timedelta(days=1)}
    error = None
    try:
        queue = _pick(queues, data.get("queue"))
        if queue is not None:
            context.update(queue=queue, slots=open_slots(queue, day))
        if request.method == "POST":
            _staff_act(request, queues, queue)
            return redirect(f"{reverse('staff-bookings', args=[location.slug])}?day={day.isoformat()}"
                            + (f"&queue={queue.pk}" if queue else ""))
    except QueueActionError as failed:
        error = failed
        context.update(error=failed.message, error_field=failed.field)
    context["bookings"] = day_of_bookings(location, day)
    return render(request, "queueapp/staff_bookings.html", context,
                  status=error.status_code if error else 200)


def _staff_act(request, queues, queue) -> None:
    action = request.POST.get("action")
    if action == "book":
        if queue is None:
            raise InvalidInput(_("Choose a service."), field="queue")
        priority = _whole(request.POST.get("priority") or "0", "priority", _("Choose one of the priorities listed."))
        note = str(request.POST.get("note", "")).strip()
        if len(note) > 200 or "\x00" in note:
            raise InvalidInput(_("A note is at most 200 characters, without control characters."), field="note")
        do_book(queue, starts_at=parse_slot_start(request.POST.get("starts_at")), priority=priority, note=note,
                contact=alert_contact_from(request.POST), acting_user=request.user)
        return
    if action not in ("check_in", "cancel"):
        raise InvalidInput(_("Choose check in, cancel or book."), field="action")
    booking_id = _whole(request.POST.get("booking"), "booking", _("Choose one of the bookings listed."), low=1)
    booking = Booking.objects.filter(pk=booking_id, slot__queue__in=queues).first()
    if booking is None:
        raise NotFound(_("No such booking here."), field="booking")
    if action == "check_in":
        do_check_in(booking, via="staff", acting_user=request.user)
    else:
        do_cancel_booking(booking, acting_user=request.user)


urlpatterns = [
    path("book/<slug:location_slug>/", book, name="book"),
    path("b/<token:token>/", booking_page, name="booking"),
    path("b/<token:token>/cancel", booking_cancel, name="booking-cancel"),
    path("b/<token:token>/move", booking_move, name="booking-move"),
    path("b/<token:token>/check-in", booking_check_in, name="booking-check-in"),
    path("kiosk/<slug:location_slug>/check-in/", kiosk_check_in, name="kiosk-check-in"),
    path("console/bookings/<slug:location_slug>/", staff_bookings, name="staff-bookings"),
]
