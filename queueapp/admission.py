"""Admission tokens: what a waiting room hands the protected site with each visitor.

A JWT signed with Ed25519 (`EdDSA`, PyJWT + cryptography): the site verifies
it offline with the public keys published at `/.well-known/jwks.json` (see
docs/waiting-room.md for the dozen lines it takes). Claims:

- `iss` the issuer (`WAITING_ROOM_ISSUER`), `aud` the room's slug (so a
  token of one room is refused by another), `room` the same slug;
- `sub` the visitor's id (what the site reports done/abandoned with);
- `iat` the admission time, `exp` the end of the admission (rounded up to
  the second: a token never expires before its admission), `jti` one id per
  admission (the site refuses a replay by remembering it).

A token is issued only for an admission with `TOKEN_MIN_SECONDS` left
(`has_time_for_token`): one issued with less would reach the site dead (the
hop there, the site's clock a little ahead), a refusal the visitor cannot
understand; the room's page ends such an admission instead and says so.

Keys rotate (`manage.py rotate_signing_key`): the newest key signs; older
keys stay published until every token they signed has expired.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone
from jwt.algorithms import OKPAlgorithm

from .models import SigningKey, Ticket, WaitingRoom

ALGORITHM = "EdDSA"
# The least time an admission must have left for a token to be issued (seconds):
# the redirect's hop to the protected site and its check take well under a
# second, even loaded a few; the site's clock may be a second or two ahead of
# ours (NTP). Half the shortest admission a room may have (10 s, the model's
# check), so every room still lets its visitors in.
TOKEN_MIN_SECONDS = 5


def issuer() -> str:
    return getattr(settings, "WAITING_ROOM_ISSUER", "queueapp")


def _new_key(now: datetime) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return SigningKey.objects.create(kid=uuid.uuid4().hex, private_pem=pem, created_at=now)


# Key creation is serialised: two processes issuing their first token at once
# must not each make a "current" key (a PostgreSQL advisory lock; SQLite's
# IMMEDIATE transactions already take the write lock at BEGIN).
KEY_LOCK = 0x51_4B_45_59  # "QKEY": the advisory lock id of signing-key creation


def _lock_keys() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [KEY_LOCK])


def _current() -> SigningKey | None:
    return SigningKey.objects.filter(retire_after__isnull=True).order_by("-created_at", "-pk").first()


def signing_key() -> SigningKey:
    """The key that signs now (made on first use, once however many ask at once)."""
    key = _current()
    if key is not None:
        return key
    with transaction.atomic():
        _lock_keys()
        return _current() or _new_key(timezone.now())  # read again: another may have made it meanwhile


def rotate(now: datetime | None = None) -> SigningKey:
    """A new signing key; the previous ones stay published while tokens they
    signed may still be valid (the longest admission lifetime, plus a minute).
    One rotation at a time, so exactly one key is current afterwards."""
    now = now or timezone.now()
    longest = WaitingRoom.objects.aggregate(m=Max("admission_seconds"))["m"] or 600
    with transaction.atomic():
        _lock_keys()
        SigningKey.objects.filter(retire_after__isnull=True).update(
            retire_after=now + timedelta(seconds=longest + 60))
        return _new_key(now)


def published_keys(now: datetime | None = None) -> list[SigningKey]:
    now = now or timezone.now()
    return list(SigningKey.objects.filter(Q(retire_after__isnull=True) | Q(retire_after__gt=now)))


def _private(key: SigningKey) -> Ed25519PrivateKey:
    return serialization.load_pem_private_key(key.private_pem.encode(), password=None)


def jwks(now: datetime | None = None) -> dict:
    """The public keys as a JSON Web Key Set (RFC 7517)."""
    keys = []
    for key in published_keys(now):
        jwk = OKPAlgorithm.to_jwk(_private(key).public_key(), as_dict=True)
        keys.append({**jwk, "kid": key.kid, "use": "sig", "alg": ALGORITHM})
    return {"keys": keys}


def admission_expires_at(room: WaitingRoom, ticket: Ticket) -> datetime:
    return ticket.confirmed_at + timedelta(seconds=room.admission_seconds)


def has_time_for_token(room: WaitingRoom, ticket: Ticket, now: datetime | None = None) -> bool:
    """Whether an admission has time left for its token to reach the site alive."""
    left = admission_expires_at(room, ticket) - (now or timezone.now())
    return left >= timedelta(seconds=TOKEN_MIN_SECONDS)


def issue(room: WaitingRoom, ticket: Ticket) -> str:
    """The signed token of an admitted visitor (`ticket` is CONFIRMED; the
    caller checked `has_time_for_token`)."""
    key = signing_key()
    claims = {
        "iss": issuer(), "aud": room.slug, "room": room.slug, "sub": str(ticket.pk),
        "iat": int(ticket.confirmed_at.timestamp()),
        # Up, not down: JWT times are whole seconds, and a token cut short by up
        # to a second was refused while its admission still held (official run, session 8).
        "exp": math.ceil(admission_expires_at(room, ticket).timestamp()),
        "jti": f"{room.slug}.{ticket.pk}",
    }
    return jwt.encode(claims, _private(key), algorithm=ALGORITHM, headers={"kid": key.kid})
