"""Counters: call the next ticket to a counter."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Path, Router

from .. import services
from .auth import principal
from .schemas import ERRORS, MAX_ID, CallNextIn, CallNextOut, ticket_out

router = Router(tags=["counters"])


@router.post("/{counter_id}/call-next", response={200: CallNextOut, **ERRORS},
             summary="Call the next ticket: highest priority, then longest waiting")
def call_next(request: HttpRequest, counter_id: int = Path(..., ge=1, le=MAX_ID),
              payload: CallNextIn | None = None):
    who = principal(request)
    counter = who.counter(counter_id)
    queue = who.queue(payload.queue_id) if payload and payload.queue_id else None
    ticket = services.do_call_next(queue, counter=counter, acting_user=who.user)
    if ticket is None:
        return CallNextOut(ticket=None, detail="Nobody is waiting.")
    return CallNextOut(ticket=ticket_out(ticket), detail=f"{ticket.display_number} to {counter.name}.")
