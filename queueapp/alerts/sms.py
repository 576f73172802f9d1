"""SMS behind one small interface: `backend().send(to, text)`.

`ConsoleSmsBackend` (the default) prints the message with the number masked;
`TwilioSmsBackend` sends through Twilio's REST API (Messages resource) over
HTTP. Pick one with ALERTS_SMS_BACKEND (a dotted path); a new provider is a
class with the same `send`.
"""

from __future__ import annotations

import logging
import sys
from functools import cache

import httpx
from django.conf import settings
from django.utils.module_loading import import_string

from .http import http_client
from .models import masked
from .outcome import Outcome

log = logging.getLogger(__name__)


class ConsoleSmsBackend:
    """Writes each SMS to standard output (number masked): the embedded default."""

    def send(self, to: str, text: str, *, idempotency_key: str = "") -> Outcome:
        sys.stdout.write(f"SMS to {masked(to)}: {text}\n")
        sys.stdout.flush()
        return Outcome(True)


class TwilioSmsBackend:
    """POST /2010-04-01/Accounts/{sid}/Messages.json with Basic auth.

    TWILIO_FROM is a sender number (From) or a Messaging Service SID (MG…).
    Twilio answers 201 when it accepted the message; a 400 (invalid or
    unreachable number, e.g. error 21211) will not get better with retries.
    """

    def __init__(self):
        if not (settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN and settings.TWILIO_FROM):
            raise RuntimeError("Set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM for Twilio SMS.")
        self.url = (f"{settings.TWILIO_API_URL.rstrip('/')}/2010-04-01/Accounts/"
                    f"{settings.TWILIO_ACCOUNT_SID}/Messages.json")
        self.auth = (settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN)

    def send(self, to: str, text: str, *, idempotency_key: str = "") -> Outcome:
        sender = settings.TWILIO_FROM
        data = {"To": to, "Body": text,
                **({"MessagingServiceSid": sender} if sender.startswith("MG") else {"From": sender})}
        try:
            response = http_client().post(self.url, data=data, auth=self.auth,
                                          headers={"I-Twilio-Idempotency-Token": idempotency_key})
        except httpx.HTTPError as error:
            return Outcome(False, error=f"{type(error).__name__}: {error or 'no answer'}")
        if response.status_code in (200, 201):
            return Outcome(True, response.status_code)
        try:
            detail = response.json()
            reason = f"Twilio error {detail.get('code')}: {detail.get('message', '')}"
        except ValueError:
            reason = f"HTTP {response.status_code}"
        permanent = response.status_code in (400, 401, 403, 404)
        return Outcome(False, response.status_code, reason.replace(to, masked(to)), retry=not permanent)


@cache
def backend():
    return import_string(settings.ALERTS_SMS_BACKEND)()


def reset() -> None:
    """Forget the configured back-end (tests change the setting)."""
    backend.cache_clear()
