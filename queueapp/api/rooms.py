"""Waiting rooms: the protected site reports a visitor done or abandoned.

Authenticated with the room's own key (`Authorization: Bearer qr_…`, made by
`manage.py create_room_token <room>`), which may do nothing else: it is
checked here rather than by the API's staff/kiosk authentication.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Path, Router, Schema
from ninja.errors import AuthenticationError

from ..models import WaitingRoom
from ..services.errors import NotFound, PermissionDenied
from ..services.rooms import do_release_visitor, room_key_matches
from .schemas import ERRORS, MAX_ID, Input

router = Router(tags=["waiting rooms"])


class ReleaseIn(Input):
    outcome: Literal["done", "abandoned"] = Field(
        description="done: the visitor finished (e.g. paid); abandoned: they left without finishing.")


class ReleaseOut(Schema):
    visitor_id: int
    status: str = Field(description="completed (done) or cancelled (abandoned).")
    released_at: datetime | None
    inside: int = Field(description="Visitors inside the protected site now.")
    max_inside: int


def _room(request: HttpRequest, slug: str) -> WaitingRoom:
    room = WaitingRoom.objects.select_related("queue").filter(slug=slug).first()
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise AuthenticationError(message=_("Send the room's key: Authorization: Bearer qr_…"))
    if room is None:
        raise NotFound(_("There is no waiting room %(slug)s.") % {"slug": repr(slug)}, field="room")
    if not room_key_matches(room, header.removeprefix("Bearer ").strip()):
        raise PermissionDenied(_("This key is not the key of waiting room %(slug)s.") % {"slug": repr(slug)})
    return room


@router.post("/{room}/visitors/{visitor_id}/release", auth=None, response={200: ReleaseOut, **ERRORS},
             summary="The protected site reports a visitor done or abandoned (room key)")
def release_visitor(request: HttpRequest, payload: ReleaseIn, room: str,
                    visitor_id: int = Path(..., ge=1, le=MAX_ID, description="The token's `sub`.")):
    found = _room(request, room)
    ticket = do_release_visitor(found, visitor_id, outcome=payload.outcome)
    found.queue.refresh_from_db(fields=["seats_taken", "capacity"])
    return ReleaseOut(visitor_id=ticket.pk, status=ticket.status, released_at=ticket.finished_at,
                      inside=found.queue.seats_taken, max_inside=found.queue.capacity or 0)
