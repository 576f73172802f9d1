"""Appointments over the API: a queue's slots and booking one (public), the
holder's booking by its token (read, move, cancel, check in), and for a kiosk
token or staff the check-in by code and the day's bookings of a location.

The same services and refusals as the pages; the contact goes through the
alerts' contact parsing (`alert_contact` + `alert_consent`, as on the forms).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Path, Query, Router, Schema, Status
from pydantic import StrictBool, WithJsonSchema

from .. import services
from ..access import check_staff_at
from ..alerts.contacts import alert_contact_from
from ..errors import InvalidInput, NotFound
from ..forms import DAY, SLOT_START, parse_day, parse_slot_start
from ..models import MAX_ID, TOKEN_PATTERN, Booking, Queue
from ..ratelimit import check_rate
from ..slots import booking_by_code, booking_view, day_of_bookings, open_slots, schedule_of
from .auth import principal
from .schemas import ERRORS, Input

router = Router(tags=["bookings"])

QueueId = Path(..., ge=1, le=MAX_ID)
TOKEN_RE = re.compile(TOKEN_PATTERN)
Token = Annotated[str, WithJsonSchema({"type": "string", "pattern": f"^{TOKEN_PATTERN}$"})]
SlotStart = Annotated[str, Field(max_length=40, json_schema_extra={"pattern": f"^{SLOT_START.pattern}$"},
                                 description="A listed slot's start, with its offset: 2027-03-01T09:30:00+01:00.")]


DayQuery = Query(..., min_length=10, max_length=10, pattern=f"^{DAY.pattern}$", description="The local day, YYYY-MM-DD.")


class SlotOut(Schema):
    starts_at: datetime
    ends_at: datetime
    capacity: int
    free: int


class SlotsOut(Schema):
    queue_id: int
    day: date
    slots: list[SlotOut]


class BookIn(Input):
    starts_at: SlotStart
    alert_contact: str = Field("", max_length=254, description="Optional phone number or e-mail address to "
                               "be told when the turn is near (personal data, erased after the visit).")
    alert_consent: StrictBool = Field(False, description="Required (true) with a contact.")


class MoveIn(Input):
    starts_at: SlotStart


class CodeIn(Input):
    code: str = Field(..., max_length=300, description="The booking's code, or its page address (the QR code).")


class BookingOut(Schema):
    code: str
    token: str
    status: str
    queue_id: int
    starts_at: datetime
    ends_at: datetime
    check_in_opens: datetime
    check_in_closes: datetime
    arrived_late: bool
    ticket_number: str | None
    ticket_path: str | None
    booking_path: str


class StaffBookingOut(Schema):
    id: int
    code: str
    status: str
    queue_id: int
    starts_at: datetime
    priority: int
    arrived_late: bool
    ticket_number: str | None


def booking_out(booking: Booking) -> BookingOut:
    view = booking_view(booking)
    ticket = booking.ticket
    return BookingOut(code=booking.code, token=booking.token, status=booking.status,
                      queue_id=booking.slot.queue_id, starts_at=view["starts_at"], ends_at=view["ends_at"],
                      check_in_opens=view["opens"], check_in_closes=view["closes"],
                      arrived_late=booking.arrived_late,
                      ticket_number=ticket.display_number if ticket else None,
                      ticket_path=f"/t/{ticket.token}/" if ticket else None, booking_path=f"/b/{booking.token}/")


def _bookable(queue_id: int) -> Queue:
    queue = Queue.objects.select_related("location").filter(pk=queue_id).first()
    schedule = schedule_of(queue) if queue is not None else None
    if schedule is None or not schedule.is_open:
        raise NotFound(_("Queue %(id)s takes no appointments.") % {"id": queue_id}, field="queue_id")
    return queue


def _by_token(token: str) -> Booking:
    booking = (Booking.objects.select_related("slot__queue__location", "ticket__queue")
               .filter(token=token).first()) if TOKEN_RE.fullmatch(token) else None
    if booking is None:
        raise NotFound(_("No booking has this token; check the link or QR code."), field="token")
    return booking


@router.get("/queues/{queue_id}/slots", auth=None, response={200: SlotsOut, **ERRORS},
            summary="A day's bookable slots of a queue, with their free places (public)")
def slots(request: HttpRequest, queue_id: int = QueueId,
          day: str = DayQuery):
    queue = _bookable(queue_id)
    day = parse_day(day)
    return SlotsOut(queue_id=queue.pk, day=day, slots=[
        SlotOut(starts_at=s.starts_at, ends_at=s.ends_at, capacity=s.capacity, free=s.free)
        for s in open_slots(queue, day)])


@router.post("/queues/{queue_id}/bookings", auth=None, response={201: BookingOut, **ERRORS},
             summary="Book a slot (public; normal priority; optional contact with consent)")
def book(request: HttpRequest, payload: BookIn, queue_id: int = QueueId):
    queue = _bookable(queue_id)
    starts_at = parse_slot_start(payload.starts_at)
    contact = alert_contact_from({"alert_contact": payload.alert_contact,
                                  "alert_consent": "yes" if payload.alert_consent else ""})
    check_rate(request, "join_address", refusal="Too many bookings from this network")
    booking = services.do_book(queue, starts_at=starts_at, contact=contact)
    return Status(201, booking_out(booking))


@router.get("/bookings/by-token/{token}", auth=None, response={200: BookingOut, **ERRORS},
            summary="A booking, for its holder (public, with its token)")
def get_booking(request: HttpRequest, token: Token = Path(...)):
    return booking_out(_by_token(token))


@router.post("/bookings/by-token/{token}/cancel", auth=None, response={200: BookingOut, **ERRORS},
             summary="Cancel one's booking (public, with its token)")
def cancel(request: HttpRequest, token: Token = Path(...)):
    return booking_out(services.do_cancel_booking(_by_token(token), by_holder=True))


@router.post("/bookings/by-token/{token}/move", auth=None, response={200: BookingOut, **ERRORS},
             summary="Move one's booking to another slot of the same queue (public, with its token)")
def move(request: HttpRequest, payload: MoveIn, token: Token = Path(...)):
    booking = _by_token(token)
    return booking_out(services.do_move_booking(booking, starts_at=parse_slot_start(payload.starts_at)))


@router.post("/bookings/by-token/{token}/check-in", auth=None, response={200: BookingOut, **ERRORS},
             summary="Check in from one's booking (public, with its token, if the queue allows it)")
def check_in_by_token(request: HttpRequest, token: Token = Path(...)):
    booking = _by_token(token)
    if not booking.slot.queue.booking_schedule.self_check_in:
        raise InvalidInput(_("Please check in at the kiosk or at the desk."), field="token")
    services.do_check_in(booking, via="page")
    return booking_out(_by_token(token))


@router.post("/bookings/check-in", response={200: BookingOut, **ERRORS},
             summary="Check a booking in by its code or scanned QR code (kiosk token or staff of its location)")
def check_in_by_code(request: HttpRequest, payload: CodeIn):
    who = principal(request)
    booking = booking_by_code(payload.code)
    location_id = booking.slot.queue.location_id
    if who.token is not None and who.token.location_id != location_id:
        raise NotFound(_("No booking has that code here."), field="code")
    if not who.is_kiosk:
        check_staff_at(who.user, location_id)
    services.do_check_in(booking, via="kiosk" if who.is_kiosk else "staff",
                         acting_user=None if who.is_kiosk else who.user)
    return booking_out(Booking.objects.select_related("slot__queue__location", "ticket__queue").get(pk=booking.pk))


@router.get("/locations/{location_id}/bookings", response={200: list[StaffBookingOut], **ERRORS},
            summary="A location's bookings on a day, in slot order (staff)")
def day_bookings(request: HttpRequest, location_id: int = Path(..., ge=1, le=MAX_ID),
                 day: str = DayQuery):
    day = parse_day(day)
    location = principal(request).staff_locations().filter(pk=location_id).first()
    if location is None:
        raise NotFound(_("Location %(id)s does not exist.") % {"id": location_id}, field="location_id")
    return [StaffBookingOut(id=b.pk, code=b.code, status=b.status, queue_id=b.slot.queue_id,
                            starts_at=b.slot.starts_at, priority=b.priority, arrived_late=b.arrived_late,
                            ticket_number=b.ticket.display_number if b.ticket else None)
            for b in day_of_bookings(location, day)]
