"""Opting in and out: the services behind the kiosk, join and ticket page forms.

An address is checked and normalised before anything is written (E.164 for
phone numbers, via `phonenumbers`; Django's e-mail validator; an https push
endpoint with its two keys), and refused with the field named.
"""

from __future__ import annotations

import base64
from urllib.parse import urlparse

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..access import managed_locations
from ..errors import InvalidInput, InvalidTransition, NotFound, PermissionDenied
from ..models import FINAL_STATUSES, Ticket
from . import push
from .models import Channel, Contact, StaffPushSubscription


def offered_channels() -> list[str]:
    """Channels a ticket holder may choose: those configured, push only with VAPID keys."""
    return [c for c in settings.ALERTS_CHANNELS
            if c in (Channel.SMS, Channel.EMAIL) or (c == Channel.PUSH and push.enabled())]


def parse_phone(value: str, *, field: str = "phone") -> str:
    value = (value or "").strip()
    try:
        number = phonenumbers.parse(value, settings.ALERTS_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise InvalidInput(_("%(value)s is not a phone number; write it with its country code, e.g. +33 6 12 34 56 78.")
                           % {"value": repr(value)}, field=field) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(_("That phone number does not exist; check the digits and the country code."),
                           field=field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_email(value: str, *, field: str = "email") -> str:
    value = (value or "").strip()
    try:
        validate_email(value)
    except ValidationError:
        raise InvalidInput(_("That is not an e-mail address (it should look like name@example.org)."),
                           field=field) from None
    return value


def parse_contact(value: str, *, field: str) -> tuple[str, str]:
    """One field for either: an e-mail address if it has an @, else a phone number."""
    if "@" in (value or ""):
        return Channel.EMAIL, parse_email(value, field=field)
    return Channel.SMS, parse_phone(value, field=field)


def alert_contact_from(post) -> tuple[str, str] | None:
    """The kiosk and join forms' optional `alert_contact` (+ `alert_consent`):
    None when left empty, else (channel, address); refused naming the field."""
    value = (post.get("alert_contact") or "").strip()
    if not value:
        return None
    if post.get("alert_consent") != "yes":
        raise InvalidInput(_("Tick the box to agree to receive messages, or leave the contact field empty."),
                           field="alert_consent")
    channel, address = parse_contact(value, field="alert_contact")
    if channel not in offered_channels():
        raise InvalidInput(_("Alerts by %(channel)s are not available here.") % {"channel": Channel(channel).label},
                           field="alert_contact")
    return channel, address


def _b64url_len(value, field: str) -> int:
    try:
        return len(base64.urlsafe_b64decode(str(value) + "=" * (-len(str(value)) % 4)))
    except (ValueError, TypeError):
        raise InvalidInput(_("The push subscription's %(field)s key is not base64url.") % {"field": field},
                           field=f"keys.{field}") from None


def parse_push_subscription(data) -> tuple[str, dict]:
    """A PushSubscription's JSON (`endpoint`, `keys.p256dh`, `keys.auth`)."""
    if not isinstance(data, dict):
        raise InvalidInput(_("Send the browser's push subscription as a JSON object."), field="subscription")
    endpoint = data.get("endpoint")
    if not isinstance(endpoint, str) or len(endpoint) > 1000 or not endpoint.isprintable() \
            or " " in endpoint or urlparse(endpoint).scheme != "https" or not urlparse(endpoint).hostname:
        raise InvalidInput(_("The push endpoint must be an https URL."), field="endpoint")
    keys = data.get("keys")
    if not isinstance(keys, dict):
        raise InvalidInput(_("The push subscription has no keys."), field="keys")
    if _b64url_len(keys.get("p256dh", ""), "p256dh") != 65:
        raise InvalidInput(_("keys.p256dh must be a 65-byte P-256 public key."), field="keys.p256dh")
    if _b64url_len(keys.get("auth", ""), "auth") != 16:
        raise InvalidInput(_("keys.auth must be 16 bytes."), field="keys.auth")
    return endpoint, {"p256dh": keys["p256dh"], "auth": keys["auth"]}


@transaction.atomic(durable=True)
def do_subscribe(ticket: Ticket | int, *, channel: str, address: str, keys: dict | None = None) -> Contact:
    """Record a ticket holder's explicit consent to be told on `channel`.

    `address` must already be parsed (see parse_*). One contact per channel
    per ticket: subscribing again replaces the address and renews consent.
    Messages decided from now on reach it; earlier ones are not replayed.
    """
    ticket_id = ticket if isinstance(ticket, int) else ticket.pk
    status = Ticket.objects.filter(pk=ticket_id).values_list("status", flat=True).first()
    if status is None:
        raise NotFound(_("No such ticket."))
    if status in FINAL_STATUSES:
        raise InvalidTransition(_("This ticket has ended; there is nothing left to tell you."), field="ticket")
    if channel not in offered_channels():
        raise InvalidInput(_("Alerts by %(channel)s are not available here.") % {"channel": Channel(channel).label},
                           field="channel")
    contact, _created = Contact.objects.update_or_create(
        ticket_id=ticket_id, channel=channel,
        defaults={"address": address, "keys": keys or {}, "consent_at": timezone.now(),
                  "stopped_at": None, "blanked_at": None})
    return contact


@transaction.atomic(durable=True)
def do_subscribe_staff_push(user, *, endpoint: str, keys: dict) -> StaffPushSubscription:
    """A manager's browser asks for staff alerts (longest wait over a threshold,
    a webhook endpoint switched off) by web push; `endpoint` and `keys` parsed
    by `parse_push_subscription`. Only managers get staff alerts."""
    if not managed_locations(user).exists():
        raise PermissionDenied(_("Staff alerts go to a location's managers; you manage no location."))
    if not push.enabled():
        raise InvalidInput(_("Web push is not set up here (no VAPID keys)."), field="channel")
    subscription, _created = StaffPushSubscription.objects.update_or_create(
        user=user, address=endpoint, defaults={"keys": keys, "created_at": timezone.now()})
    return subscription


@transaction.atomic(durable=True)
def do_stop(stop_token: str) -> Contact | StaffPushSubscription:
    """Withdraw consent: no more messages on this contact, and its address is
    erased now (a manager's push subscription is deleted)."""
    contact = Contact.objects.select_for_update().filter(stop_token=stop_token).first()
    if contact is None:
        staff = StaffPushSubscription.objects.filter(stop_token=stop_token).first()
        if staff is not None:
            staff.delete()
            return staff
        raise NotFound(_("This stop link is not valid (alerts may already be off)."))
    if contact.stopped_at is None:
        contact.stopped_at = timezone.now()
        contact.address, contact.keys = "", {}
        contact.save(update_fields=["stopped_at", "address", "keys"])
    return contact
