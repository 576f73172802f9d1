"""Who is calling the API: a logged-in session or an API token (`Authorization: Bearer`).

Authentication answers "who"; `Principal` then answers "may they, here" through
`queueapp.access`, adding the token's limits: a kiosk token may only create
tickets, and any token acts only at its own location.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import router
from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja.errors import AuthenticationError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from .. import access
from ..dbfunctions import CompiledSelect
from ..errors import PermissionDenied
from ..models import ApiToken, Counter, Location, Priority, Queue, Ticket

KEY_PREFIX = "qk_"
# Writing last_used_at on every request would turn each read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_token(*, location: Location, kind: str, name: str, user=None,
                may_set_priority: bool = False) -> tuple[ApiToken, str]:
    """Create a token and return it with its key. Only the digest is stored,
    so the key can be shown once and never again."""
    if kind not in ApiToken.Kind.values:
        raise ValueError(f"kind must be one of {', '.join(ApiToken.Kind.values)}")
    if kind == ApiToken.Kind.STAFF:
        if user is None:
            raise ValueError("A staff token acts as a user: name one.")
        if not access.is_staff_at(user, location):
            raise ValueError(f"{user} is not staff at {location}.")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(location=location, kind=kind, name=name, user=user,
                                    digest=digest_of(key), may_set_priority=may_set_priority)
    return token, key


@dataclass(frozen=True)
class Principal:
    """The caller of one request: a user (session or staff token) or a kiosk."""

    user: object | None
    token: ApiToken | None = None

    @property
    def is_kiosk(self) -> bool:
        return self.token is not None and self.token.kind == ApiToken.Kind.KIOSK

    def _check_token_location(self, location_id: int) -> None:
        if self.token is not None:
            access.check_token_location(self.token, location_id)

    def _staff_user(self):
        if self.is_kiosk:
            raise PermissionDenied(_("A kiosk token may only create tickets."))
        return self.user

    def queue(self, queue_id: int, *, manager: bool = False) -> Queue:
        queue = access.access_queue(self._staff_user(), queue_id, manager=manager)
        self._check_token_location(queue.location_id)
        return queue

    def ticket(self, ticket_id: int) -> Ticket:
        ticket = access.access_ticket(self._staff_user(), ticket_id)
        self._check_token_location(ticket.queue.location_id)
        return ticket

    def counter(self, counter_id: int) -> Counter:
        counter = access.access_counter(self._staff_user(), counter_id)
        self._check_token_location(counter.location_id)
        return counter

    def locations(self) -> QuerySet[Location]:
        """Where the caller may look: a token, its own location (if its user is
        still staff there); a session, the user's locations."""
        if self.is_kiosk:
            return Location.objects.filter(pk=self.token.location_id)
        places = access.locations_for(self.user)
        if self.token is not None:
            places = places.filter(pk=self.token.location_id)
        return places.order_by("name")

    def staff_locations(self) -> QuerySet[Location]:
        self._staff_user()
        return self.locations()

    def check_priority(self, priority: int) -> None:
        """Above normal priority is a staff decision: staff, or a kiosk token that allows it."""
        if priority > Priority.NORMAL and self.is_kiosk and not self.token.may_set_priority:
            raise PermissionDenied(_("A kiosk token creates normal-priority tickets only; staff (or a "
                                     "token issued with --allow-priority) may set a higher one."),
                                   field="priority")

    def queue_to_join(self, queue_id: int) -> tuple[Queue | int, Callable[[Queue], None] | None]:
        """What to hand `do_join` (the queue, and a check for it): staff may join
        anyone at their location, checked here; a kiosk only at its own, checked
        by the join on the row it locks anyway (the kiosk join is the hot path:
        no read of the queue before the transaction)."""
        if not self.is_kiosk:
            return self.queue(queue_id), None
        return queue_id, lambda queue: self._check_token_location(queue.location_id)


# Every API request reads its token: SQL compiled once per process (building
# the queryset cost about as much CPU as a whole /healthz; issue 9). The marker
# is no hex digest.
_TOKEN = CompiledSelect(lambda digest: ApiToken.objects.select_related("user", "location").filter(digest=digest),
                        digest="not a digest")


# A kiosk sends its token with every ticket it prints, many a second when the
# lobby is busy: a token found is kept in this process for at most
# API_TOKEN_CACHE_SECONDS (issue 9: the read was a fifth of a kiosk join's
# database work and a round trip on its thread). Revoking is deleting the
# token, deactivating or deleting its user, or editing either: any save or
# delete of a token or a user in this process empties the cache at once (the
# admin and the API share the web process), elsewhere the bound holds (a
# change written by SQL, another process). Unknown keys are never kept.
_found: dict[str, tuple[ApiToken, float]] = {}
_clock = time.monotonic


def forget_tokens(**_kwargs) -> None:
    """Model signal receiver: a token or a user changed or went; read them again."""
    _found.clear()


post_save.connect(forget_tokens, sender=ApiToken, dispatch_uid="api-token-cache-token-saved")
post_delete.connect(forget_tokens, sender=ApiToken, dispatch_uid="api-token-cache-token-deleted")
post_save.connect(forget_tokens, sender=settings.AUTH_USER_MODEL, dispatch_uid="api-token-cache-user-saved")
post_delete.connect(forget_tokens, sender=settings.AUTH_USER_MODEL, dispatch_uid="api-token-cache-user-deleted")


def _token_by_digest(digest: str) -> ApiToken | None:
    """The token with this digest, its user and location; from this process's
    cache while it is younger than API_TOKEN_CACHE_SECONDS."""
    now = _clock()
    found = _kept(digest, now)
    if found is not None:
        return found
    found = _TOKEN.first(router.db_for_read(ApiToken), digest=digest)
    if found is not None and settings.API_TOKEN_CACHE_SECONDS > 0:
        _found[digest] = (found, now + settings.API_TOKEN_CACHE_SECONDS)
    else:
        _found.pop(digest, None)
    return found


def _kept(digest: str, now: float) -> ApiToken | None:
    kept = _found.get(digest)
    return kept[0] if kept is not None and kept[1] > now else None


def principal(request: HttpRequest) -> Principal:
    return request.auth  # set by one of the two classes below


class BearerTokenAuth(HttpBearer):
    """`Authorization: Bearer <key>`. A key that is sent but unknown is refused
    outright (401) rather than falling back to the session."""

    def authenticate(self, request: HttpRequest, token: str) -> Principal:
        found = _token_by_digest(digest_of(token))
        if found is None or (found.user is not None and not found.user.is_active):
            raise AuthenticationError(message=_("This API token is not valid: it is mistyped or was revoked."))
        now = timezone.now()
        if _last_used_due(found, now):
            ApiToken.objects.filter(pk=found.pk).update(last_used_at=now)
            found.last_used_at = now  # a kept token remembers it (per process: once a minute each)
        return Principal(user=found.user, token=found)


def _last_used_due(found: ApiToken, now) -> bool:
    return found.last_used_at is None or now - found.last_used_at >= LAST_USED_RESOLUTION


class LoopBearerTokenAuth(BearerTokenAuth):
    """`BearerTokenAuth` for an async operation (the kiosk's join,
    services/_join_async.py): a kept token that needs no write is answered in
    the event loop; anything else (a read, a refusal, `last_used_at`) is
    `BearerTokenAuth`'s in one thread hop, so the answers are the same."""

    async def authenticate(self, request: HttpRequest, token: str) -> Principal:
        found = _kept(digest_of(token), _clock())
        if found is not None:
            if (found.user is None or found.user.is_active) and not _last_used_due(found, timezone.now()):
                return Principal(user=found.user, token=found)
        return await sync_to_async(BearerTokenAuth.authenticate)(self, request, token)


class SessionAuth(APIKeyCookie):
    """The Django session of a logged-in user, with Django's CSRF check on
    unsafe methods (a browser page calling the API sends X-CSRFToken)."""

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request: HttpRequest) -> str | None:
        # Check the login before CSRF, so an anonymous caller hears 401, not 403.
        if not request.user.is_authenticated:
            return None
        if not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request):
            raise PermissionDenied(_("CSRF check failed: send the csrftoken cookie's value in the "
                                     "X-CSRFToken header."))
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request: HttpRequest, key: str | None) -> Principal | None:
        return Principal(user=request.user) if request.user.is_authenticated else None
