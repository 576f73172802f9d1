"""Tickets: the holder's view by token (public) and the staff actions by id.

Each endpoint checks who may act (through `Principal`, i.e. `queueapp.access`)
and calls one service; the service's typed errors become the answer.
"""

from __future__ import annotations

import re
from typing import Annotated

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Path, Router
from pydantic import WithJsonSchema

from .. import services
from ..errors import NotFound
from ..models import TOKEN_PATTERN, Ticket
from ..selectors import follow_transfers, ticket_by_token
from .auth import principal
from .schemas import ERRORS, MAX_ID, CallIn, TicketOut, TicketStatusOut, TransferIn, ticket_out, ticket_status_out

router = Router(tags=["tickets"])

TicketId = Path(..., ge=1, le=MAX_ID, description="The ticket's id (staff only).")
# Anything not shaped like a token cannot be one (and must not reach the database).
TOKEN_RE = re.compile(TOKEN_PATTERN)
# The schema states the shape; a token of another shape is answered as unknown (404), like
# a well-shaped token nobody holds, so a guess learns nothing from the status.
Token = Annotated[str, WithJsonSchema({"type": "string", "pattern": f"^{TOKEN_PATTERN}$"})]
TokenPath = Path(..., description="The ticket's token, from its page or QR code.")


def _by_token(token: str) -> Ticket:
    ticket = ticket_by_token(token) if TOKEN_RE.fullmatch(token) else None
    if ticket is None:
        raise NotFound(_("No ticket has this token; check the link or QR code."), field="token")
    return ticket


@router.get("/by-token/{token}", auth=None, response={200: TicketStatusOut, **ERRORS},
            summary="A ticket's status, for its holder (public)")
def status_by_token(request: HttpRequest, token: Token = TokenPath):
    return ticket_status_out(_by_token(token))


@router.post("/by-token/{token}/cancel", auth=None, response={200: TicketStatusOut, **ERRORS},
             summary="Cancel one's own ticket (public, with its token)")
def cancel_by_token(request: HttpRequest, token: Token = TokenPath):
    # A transferred ticket's token keeps working: it cancels the ticket the holder now has.
    ticket = services.do_cancel(follow_transfers(_by_token(token)), by_patient=True)
    return ticket_status_out(ticket)


@router.get("/{ticket_id}", response={200: TicketOut, **ERRORS}, summary="A ticket (staff)")
def get_ticket(request: HttpRequest, ticket_id: int = TicketId):
    return ticket_out(principal(request).ticket(ticket_id))


@router.post("/{ticket_id}/call", response={200: TicketOut, **ERRORS},
             summary="Call this ticket to a counter, out of turn")
def call_ticket(request: HttpRequest, payload: CallIn, ticket_id: int = TicketId):
    who = principal(request)
    ticket = who.ticket(ticket_id)
    counter = who.counter(payload.counter_id)
    return ticket_out(services.do_call_ticket(ticket, counter=counter, acting_user=who.user))


def _simple_action(path: str, service, summary: str) -> None:
    """recall, start, complete, no-show, cancel: a ticket id in, the ticket out."""

    @router.post(path, response={200: TicketOut, **ERRORS}, summary=summary,
                 operation_id=f"ticket_{service.__name__.removeprefix('do_')}")
    def action(request: HttpRequest, ticket_id: int = TicketId):
        who = principal(request)
        return ticket_out(service(who.ticket(ticket_id), acting_user=who.user))


_simple_action("/{ticket_id}/recall", services.do_recall, "Announce a called ticket again")
_simple_action("/{ticket_id}/start", services.do_start_serving, "The called person arrived: start serving")
_simple_action("/{ticket_id}/complete", services.do_complete, "Finish a called or serving ticket")
_simple_action("/{ticket_id}/no-show", services.do_no_show,
               "The called person did not come (back of the line until the recall limit)")
_simple_action("/{ticket_id}/cancel", services.do_cancel, "Cancel a ticket (staff)")


@router.post("/{ticket_id}/transfer", response={200: TicketOut, **ERRORS},
             summary="Move a ticket to another queue; answers the new ticket")
def transfer(request: HttpRequest, payload: TransferIn, ticket_id: int = TicketId):
    who = principal(request)
    ticket = who.ticket(ticket_id)
    target = who.queue(payload.to_queue)
    new = services.do_transfer(ticket, to_queue=target, acting_user=who.user, to_front=payload.to_front)
    return ticket_out(new)
