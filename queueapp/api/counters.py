"""Counters: call the next ticket to a counter; open it, put it on a break, close it."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Path, Router

from .. import services
from .auth import principal
from .schemas import ERRORS, MAX_ID, CallNextIn, CallNextOut, CounterOut, CounterStateIn, counter_out, ticket_out

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


@router.post("/{counter_id}/state", response={200: CounterOut, **ERRORS},
             summary="Open the counter, put it on a break (with a reason) or close it")
def set_state(request: HttpRequest, payload: CounterStateIn, counter_id: int = Path(..., ge=1, le=MAX_ID)):
    who = principal(request)
    counter = who.counter(counter_id)
    to_queue = who.queue(payload.to_queue) if payload.to_queue else None
    counter = services.do_set_counter_state(
        counter, state=payload.state, reason=payload.reason, held=payload.held,
        held_ticket=payload.held_ticket, to_queue=to_queue, acting_user=who.user)
    return counter_out(counter)
