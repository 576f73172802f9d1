"""Queues: join (staff or a kiosk at the location), the waiting line, pause and resume."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db import router as router_db
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Path, Query, Router, Status

from .. import services
from ..models import Ticket, format_display_number
from ..selectors import waiting_tickets
from ..errors import PermissionDenied
from .auth import LoopBearerTokenAuth, SessionAuth, principal
from .schemas import (
    ERRORS,
    MAX_ID,
    JoinIn,
    JoinOut,
    QueueOut,
    WaitingLineOut,
    WaitingTicketOut,
    join_out,
    queue_out,
)

router = Router(tags=["queues"])

QueueId = Path(..., ge=1, le=MAX_ID)


@router.post("/{queue_id}/tickets", response={201: JoinOut, **ERRORS}, auth=[LoopBearerTokenAuth(), SessionAuth()],
             summary="Join a queue: take a ticket (staff, or a kiosk token of this location)")
async def join(request: HttpRequest, payload: JoinIn, queue_id: int = QueueId):
    # A kiosk's join on PostgreSQL runs in the event loop (services/_join_async.py,
    # API_ASYNC_JOIN: no request thread); everything else as before, in one thread hop.
    who = principal(request)
    if who.is_kiosk and services.joins_in_loop(request, router_db.db_for_write(Ticket)):
        queue, check = _checked_join(who, payload, queue_id)
        ticket = await services.do_join_in_loop(queue, priority=payload.priority, party_size=payload.party_size,
                                                 acting_user=who.user, note=payload.note,
                                                 language=payload.language, check=check)
        if ticket is not None:
            if getattr(ticket, "place_and_wait_at_join", None) is None:  # the ordinary reads: a thread
                return Status(201, await sync_to_async(join_out)(request, ticket))
            return Status(201, join_out(request, ticket))
    return await sync_to_async(_join)(request, payload, queue_id)


def _checked_join(who, payload: JoinIn, queue_id: int):
    """What `do_join` is handed (the queue or its id, the caller's check),
    after the refusals that come before it."""
    queue, check = who.queue_to_join(queue_id)
    if payload.note and who.is_kiosk:
        raise PermissionDenied(_("A kiosk token cannot write staff notes."), field="note")
    who.check_priority(payload.priority)
    return queue, check


def _join(request: HttpRequest, payload: JoinIn, queue_id: int):
    who = principal(request)
    queue, check = _checked_join(who, payload, queue_id)
    ticket = services.do_join(queue, priority=payload.priority, party_size=payload.party_size,
                              acting_user=who.user, note=payload.note, language=payload.language,
                              check=check, with_place=True)
    return Status(201, join_out(request, ticket))


@router.get("/{queue_id}", response={200: QueueOut, **ERRORS}, summary="A queue and how many wait (staff)")
def get_queue(request: HttpRequest, queue_id: int = QueueId):
    queue = principal(request).queue(queue_id)
    return queue_out(queue, waiting=waiting_tickets(queue).count())


@router.get("/{queue_id}/waiting", response={200: WaitingLineOut, **ERRORS},
            summary="The waiting line in serving order (staff)")
def waiting_line(request: HttpRequest, queue_id: int = QueueId,
                 limit: int = Query(200, ge=1, le=1000, description="At most this many tickets.")):
    queue = principal(request).queue(queue_id)
    line = waiting_tickets(queue)
    tickets = [
        WaitingTicketOut(id=t.pk, number=format_display_number(queue.prefix, t.number), priority=t.priority,
                         party_size=t.party_size, position=place, queued_at=t.queued_at, note=t.note)
        for place, t in enumerate(line[:limit], start=1)
    ]
    return WaitingLineOut(queue=queue_out(queue, waiting=line.count()), tickets=tickets)


def _queue_action(path: str, service, summary: str) -> None:
    @router.post(path, response={200: QueueOut, **ERRORS}, summary=summary,
                 operation_id=f"queue_{service.__name__.removeprefix('do_')}")
    def action(request: HttpRequest, queue_id: int = QueueId):
        who = principal(request)
        queue = service(who.queue(queue_id, manager=True), acting_user=who.user)
        return queue_out(queue, waiting=waiting_tickets(queue).count())


_queue_action("/{queue_id}/pause", services.do_pause, "Stop joins and calls (managers)")
_queue_action("/{queue_id}/resume", services.do_resume, "Take joins and calls again (managers)")
