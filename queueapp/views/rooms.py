"""The virtual waiting room's pages: `/wait/<room>/?return=<path>` and the JWKS.

One place per browser: the place (its ticket token) and the return path live
in a signed cookie for that room, so reloading or a second tab shows the same
place, and a forged cookie is ignored (a new place at the back). Once the
visitor is admitted, the same URL redirects to the protected site with a
signed admission token (`queueapp.admission`). The page is live (the ticket's
WebSocket); without JavaScript it reloads itself.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import Resolver404, path, resolve
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from .. import admission, pages
from ..overload import short_pool_wait
from ..models import Ticket, TicketStatus, WaitingRoom
from ..ratelimit import check_rate
from ..services import InvalidInput, QueueActionError
from ..services.rooms import RoomChanged, do_end_late_admission, do_enter_line, room_for_arrival
from ._common import refuse

COOKIE_SALT = "queueapp.waiting-room"
COOKIE_PREFIX = "waitroom-"
COOKIE_AGE = 24 * 3600
MAX_RETURN = 2000
NOSCRIPT_REFRESH = 10  # seconds between reloads without JavaScript
TOKEN_PARAM = "queue_token"


def cookie_name(room: WaitingRoom | str) -> str:
    """The place cookie's name for `room` (or a room's slug)."""
    return f"{COOKIE_PREFIX}{room if isinstance(room, str) else room.slug}"


def holds_place(path: str, cookies: dict[str, str]) -> bool:
    """Whether a request for a room's page (`path`) carries that room's place
    cookie with our signature, not expired: its browser holds a place (or
    held one). For the request gate (config/admission.py), on the event loop:
    no database, an HMAC (the view still checks the place itself)."""
    if not any(name.startswith(COOKIE_PREFIX) for name in cookies):
        return False
    try:
        match = resolve(path)
    except Resolver404:
        return False
    if match.url_name != "waiting-room":
        return False
    request = HttpRequest()  # (the view's own reading of the cookie: `_held`)
    request.COOKIES = cookies
    return request.get_signed_cookie(cookie_name(match.kwargs["room_slug"]), default=None, salt=COOKIE_SALT,
                                     max_age=COOKIE_AGE) is not None


def return_path(raw: str | None) -> str:
    """The path on the protected site the visitor goes back to; refuse anything
    that could send them elsewhere (a scheme, `//host`, backslashes, controls)."""
    if not raw:
        return "/"
    if (len(raw) > MAX_RETURN or not raw.startswith("/") or raw.startswith("//") or "\\" in raw
            or any(ord(c) < 32 or ord(c) == 127 for c in raw)):
        raise InvalidInput(
            "return must be a path on the protected site, starting with a single / "
            f"(at most {MAX_RETURN} characters), e.g. /checkout?event=12.", field="return")
    return raw


def target_url(room: WaitingRoom, path_: str, token: str) -> str:
    base = urlsplit(room.target_url)
    back = urlsplit(path_)
    query = "&".join(q for q in (back.query, urlencode({TOKEN_PARAM: token})) if q)
    return urlunsplit((base.scheme, base.netloc, back.path, query, back.fragment))


def _held(request: HttpRequest, room: WaitingRoom) -> tuple[Ticket | None, str | None]:
    """The place this browser holds in `room` (from the signed cookie), if still current."""
    try:
        raw = request.get_signed_cookie(cookie_name(room), salt=COOKIE_SALT, max_age=COOKIE_AGE)
        held = json.loads(raw)
        token, back = str(held["t"]), str(held["r"])
    except (KeyError, ValueError, TypeError, signing.BadSignature):
        return None, None
    ticket = (Ticket.objects.select_related("queue__location", "queue__waiting_room")
              .filter(token=token, queue_id=room.queue_id).first())
    if ticket is None or not _current(ticket.queue.waiting_room, ticket):
        return None, back
    return ticket, back


def _current(room: WaitingRoom, ticket: Ticket) -> bool:
    """Still in line, or admitted (a lapsed admission the worker has not yet
    ended is ended by `_wait`, which says so)."""
    return ticket.status in (TicketStatus.WAITING, TicketStatus.CONFIRMED)


@require_GET
@cache_control(no_store=True)
@short_pool_wait()  # thousands arrive at once: a 503 within seconds, not a 500 after 20 s
def wait(request: HttpRequest, room_slug: str) -> HttpResponse:
    try:
        return _wait(request, room_slug, fresh=False)
    except RoomChanged:  # the cached room is stale: no place was taken; once more, read afresh
        return _wait(request, room_slug, fresh=True)


def _wait(request: HttpRequest, room_slug: str, *, fresh: bool) -> HttpResponse:
    room = room_for_arrival(room_slug, fresh=fresh)
    if room is None:
        raise Http404
    ticket, back = _held(request, room)
    try:
        if "return" in request.GET or back is None:
            back = return_path(request.GET.get("return"))
        if ticket is None:
            if not fresh:  # (a retry's arrival was counted by its first try)
                check_rate(request, "wait")
            ticket = do_enter_line(room)
        else:
            room = ticket.queue.waiting_room  # as read with the place just now, not the cached copy
            room.queue = ticket.queue
    except QueueActionError as error:
        return refuse(request, error)
    if ticket.status == TicketStatus.CONFIRMED and not admission.has_time_for_token(room, ticket):
        # No token that would reach the site dead: the admission ends now and
        # the page says so, with a link to join again (no automatic reload).
        ticket = do_end_late_admission(room, ticket.pk) or ticket
        ticket.queue = room.queue
        response = HttpResponse(pages.waiting_room_page(request, room, ticket, refresh=0))
    elif ticket.status == TicketStatus.CONFIRMED:
        response = redirect(target_url(room, back, admission.issue(room, ticket)))
    else:
        response = HttpResponse(pages.waiting_room_page(request, room, ticket, refresh=NOSCRIPT_REFRESH))
    response.set_signed_cookie(cookie_name(room), json.dumps({"t": ticket.token, "r": back}),
                               salt=COOKIE_SALT, max_age=COOKIE_AGE, httponly=True, samesite="Lax",
                               secure=request.is_secure())
    return response


@require_GET
@cache_control(max_age=300, public=True)
def jwks(request: HttpRequest) -> JsonResponse:
    """The public keys that verify admission tokens (RFC 7517)."""
    return JsonResponse(admission.jwks())


urlpatterns = [
    path("wait/<slug:room_slug>/", wait, name="waiting-room"),
    path(".well-known/jwks.json", jwks, name="jwks"),
]
