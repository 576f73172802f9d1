"""What a caller may see: its locations, their queues and counters.

A session sees the user's locations; a token only its own location. A kiosk
token may list the queues it can join, not the counters.
"""

from __future__ import annotations

from django.db.models import Count, Q
from django.http import HttpRequest
from ninja import Query, Router

from ..models import Counter, Queue, TicketStatus
from .auth import principal
from .schemas import ERRORS, MAX_ID, CounterOut, LocationOut, QueueOut, counter_out, location_out, queue_out

router = Router(tags=["locations"])

LocationFilter = Query(None, ge=1, le=MAX_ID, description="Only this location (default: every one "
                                                         "the caller may see).")


def _places(request: HttpRequest, location_id: int | None, *, staff: bool = False):
    who = principal(request)
    places = who.staff_locations() if staff else who.locations()
    return places if location_id is None else places.filter(pk=location_id)


@router.get("/locations", response={200: list[LocationOut], **ERRORS},
            summary="The locations the caller may see (a token: its own)")
def list_locations(request: HttpRequest):
    return [location_out(place) for place in principal(request).locations()]


@router.get("/queues", response={200: list[QueueOut], **ERRORS},
            summary="The queues of the caller's locations (a kiosk token: the ones it can join)")
def list_queues(request: HttpRequest, location_id: int | None = LocationFilter):
    queues = (Queue.objects.filter(location__in=_places(request, location_id)).select_related("location")
              .annotate(waiting=Count("tickets", filter=Q(tickets__status=TicketStatus.WAITING)))
              .order_by("location__name", "name", "pk"))
    return [queue_out(q, waiting=q.waiting) for q in queues]


@router.get("/counters", response={200: list[CounterOut], **ERRORS},
            summary="The counters of the caller's locations and the queues each serves (staff)")
def list_counters(request: HttpRequest, location_id: int | None = LocationFilter):
    counters = (Counter.objects.filter(location__in=_places(request, location_id, staff=True)).select_related("location")
                .prefetch_related("queues").order_by("location__name", "name", "pk"))
    return [counter_out(c) for c in counters]
