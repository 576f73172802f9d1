"""Queues: join (staff or a kiosk at the location), the waiting line, pause and resume."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Path, Query, Router, Status

from .. import services
from ..models import format_display_number
from ..selectors import waiting_tickets
from ..errors import PermissionDenied
from .auth import principal
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


@router.post("/{queue_id}/tickets", response={201: JoinOut, **ERRORS},
             summary="Join a queue: take a ticket (staff, or a kiosk token of this location)")
def join(request: HttpRequest, payload: JoinIn, queue_id: int = QueueId):
    who = principal(request)
    queue, check = who.queue_to_join(queue_id)
    if payload.note and who.is_kiosk:
        raise PermissionDenied(_("A kiosk token cannot write staff notes."), field="note")
    who.check_priority(payload.priority)
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
