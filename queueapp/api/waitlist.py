"""Capacity waitlists: their state, *Confirm the waitlist*, capacity, and offers.

Staff endpoints check access through `Principal` (queueapp.access); accepting
or declining an offer is public with the ticket's token, as on the ticket page.
Every write is one service of `queueapp.services.waitlist`.
"""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Path, Router, Schema
from pydantic import StrictInt

from .. import services
from ..models import Queue, Ticket
from ..selectors import waitlist_overview
from ..errors import InvalidInput
from ..services.waitlist import MAX_CAPACITY
from .auth import principal
from .schemas import ERRORS, MAX_ID, Input
from .tickets import Token, TokenPath, _by_token

router = Router(tags=["waitlists"])

QueueId = Path(..., ge=1, le=MAX_ID)


class CapacityIn(Input):
    capacity: StrictInt = Field(ge=0, le=MAX_CAPACITY,
                                description="Seats in all; not below the seats already held.")


class RequestOut(Schema):
    """A request on a waitlist as staff see it."""

    id: int
    number: str
    status: str
    party_size: int
    priority: int
    offer_expires_at: datetime | None
    confirmed_at: datetime | None


class WaitlistOut(Schema):
    queue_id: int
    name: str
    service_date: str | None
    capacity: int
    seats_taken: int = Field(description="Held by confirmed requests and open offers.")
    seats_free: int
    waiting: int
    open_offers: int
    confirmed: int
    allow_skip: bool = Field(description="False: strict order, everyone waits for a head that does not fit.")
    offer_seconds: int | None
    batch_size: int | None
    max_open_offers: int | None
    is_paused: bool


class ConfirmOut(Schema):
    admitted: list[RequestOut] = Field(description="Confirmed, or offered when the queue makes offers.")
    waitlist: WaitlistOut


class OfferOut(Schema):
    """What the holder of a token sees of their offer."""

    number: str
    status: str
    status_label: str
    party_size: int
    offer_expires_at: datetime | None
    confirmed_at: datetime | None


def request_out(ticket: Ticket) -> RequestOut:
    return RequestOut(id=ticket.pk, number=ticket.display_number, status=ticket.status,
                      party_size=ticket.party_size, priority=ticket.priority,
                      offer_expires_at=ticket.offer_expires_at, confirmed_at=ticket.confirmed_at)


def waitlist_out(queue: Queue) -> WaitlistOut:
    queue.refresh_from_db()
    seen = waitlist_overview(queue, limit=0)
    return WaitlistOut(
        queue_id=queue.pk, name=queue.name,
        service_date=queue.service_date.isoformat() if queue.service_date else None,
        capacity=seen.capacity, seats_taken=seen.seats_taken, seats_free=seen.seats_free,
        waiting=seen.waiting_count, open_offers=len(seen.offers), confirmed=seen.confirmed_count,
        allow_skip=queue.allow_skip, offer_seconds=queue.offer_seconds, batch_size=queue.batch_size,
        max_open_offers=queue.max_open_offers, is_paused=queue.is_paused,
    )


def offer_out(ticket: Ticket) -> OfferOut:
    return OfferOut(number=ticket.display_number, status=ticket.status,
                    status_label=str(ticket.get_status_display()), party_size=ticket.party_size,
                    offer_expires_at=ticket.offer_expires_at, confirmed_at=ticket.confirmed_at)


def _waitlist(request: HttpRequest, queue_id: int, *, manager: bool = False) -> Queue:
    queue = principal(request).queue(queue_id, manager=manager)
    if queue.kind != Queue.Kind.CAPACITY:
        raise InvalidInput(_("%(queue)s is a counter queue, not a waitlist.") % {"queue": queue.name}, field="queue_id")
    return queue


@router.get("/{queue_id}", response={200: WaitlistOut, **ERRORS}, summary="Seats and the waitlist (staff)")
def get_waitlist(request: HttpRequest, queue_id: int = QueueId):
    return waitlist_out(_waitlist(request, queue_id))


@router.post("/{queue_id}/confirm", response={200: ConfirmOut, **ERRORS},
             summary="Confirm the waitlist: admit waiting requests in order while seats remain (staff)")
def confirm_waitlist(request: HttpRequest, queue_id: int = QueueId):
    queue = _waitlist(request, queue_id)
    admitted = services.do_confirm_waitlist(queue, acting_user=principal(request).user)
    return ConfirmOut(admitted=[request_out(t) for t in admitted], waitlist=waitlist_out(queue))


@router.post("/{queue_id}/capacity", response={200: WaitlistOut, **ERRORS},
             summary="Change the number of seats; a larger number admits from the waitlist (manager)")
def set_capacity(request: HttpRequest, payload: CapacityIn, queue_id: int = QueueId):
    queue = _waitlist(request, queue_id, manager=True)
    services.do_set_capacity(queue, capacity=payload.capacity, acting_user=principal(request).user)
    return waitlist_out(queue)


@router.post("/offers/{token}/accept", auth=None, response={200: OfferOut, **ERRORS},
             summary="Accept one's offer before it expires (public, with the ticket's token)")
def accept_offer(request: HttpRequest, token: Token = TokenPath):
    return offer_out(services.do_accept_offer(_by_token(token)))


@router.post("/offers/{token}/decline", auth=None, response={200: OfferOut, **ERRORS},
             summary="Decline one's offer: the seats go to the next in line (public, with the token)")
def decline_offer(request: HttpRequest, token: Token = TokenPath):
    return offer_out(services.do_decline_offer(_by_token(token)))
