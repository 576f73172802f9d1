"""One sender per channel: take a claimed outbox row, try once, say how it went.

Senders never touch the database (the worker loaded everything they need when
it claimed the row) and never raise: every failure becomes an `Outcome`, with
the address masked in any error text.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx
from django.conf import settings
from django.core.mail import EmailMessage
from django.urls import reverse
from django.utils import translation
from standardwebhooks import Webhook

from . import push, sms
from .http import http_client
from .models import Channel, OutboxMessage, masked
from .outcome import Outcome
from .texts import PUSH_STOP_ACTION, PUSH_STOP_HINT, STOP_LINE


def _subscriber(message: OutboxMessage):
    """Who asked for it and holds the address: the ticket holder's contact, or the
    manager's browser (None for webhooks and staff e-mails)."""
    return message.contact if message.contact is not None else message.staff_push


def stop_url(message: OutboxMessage) -> str:
    return settings.ALERTS_BASE_URL + reverse("alerts-stop", args=[_subscriber(message).stop_token])


def send(message: OutboxMessage) -> Outcome:
    started = time.monotonic()
    try:
        outcome = SENDERS[message.channel](message)
    except Exception as error:  # a sender bug must not kill the delivery loop
        outcome = Outcome(False, error=f"{type(error).__name__}: {error}")
    outcome.duration_ms = int((time.monotonic() - started) * 1000)
    subscriber = _subscriber(message)
    address = subscriber.address if subscriber is not None else ""
    if address and address in outcome.error:  # the error is shown in the admin: never the address in full
        outcome.error = outcome.error.replace(address, masked(address))
    outcome.error = outcome.error[:300]
    return outcome


def send_webhook(message: OutboxMessage) -> Outcome:
    """Standard Webhooks: the same `webhook-id` on every attempt, a fresh timestamp
    and signature (`v1,<base64 HMAC-SHA256>` of `id.timestamp.body`)."""
    endpoint = message.endpoint
    now = datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "webhook-id": message.message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(endpoint.secret).sign(message.message_id, now, message.body),
        "user-agent": "queueapp-webhooks/1",
    }
    try:
        response = http_client().post(endpoint.url, content=message.body.encode(), headers=headers)
    except httpx.HTTPError as error:
        return Outcome(False, error=f"{type(error).__name__}: {error or 'no answer'}")
    if 200 <= response.status_code < 300:
        return Outcome(True, response.status_code)
    return Outcome(False, response.status_code, error=f"HTTP {response.status_code}")


def _language(message: OutboxMessage) -> str:
    """A patient message speaks its ticket's language; a staff alert the default."""
    return message.ticket.language if message.ticket is not None else settings.LANGUAGE_CODE


def _text_with_stop(message: OutboxMessage) -> str:
    with translation.override(_language(message)):
        return f"{message.body}\n{str(STOP_LINE).format(url=stop_url(message))}"


def send_email(message: OutboxMessage) -> Outcome:
    if message.contact is not None:
        to, body = message.contact.address, _text_with_stop(message)
        headers = {"List-Unsubscribe": f"<{stop_url(message)}>",
                   "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    else:  # staff alert
        to, body, headers = message.user.email, message.body, {}
    headers["Message-ID"] = f"<{message.message_id}@queueapp>"
    email = EmailMessage(message.subject, body, settings.DEFAULT_FROM_EMAIL, [to], headers=headers)
    try:
        email.send()
    except Exception as error:
        import smtplib

        permanent = isinstance(error, smtplib.SMTPRecipientsRefused)
        return Outcome(False, error=f"{type(error).__name__} sending to {masked(to)}", retry=not permanent)
    return Outcome(True)


def send_sms(message: OutboxMessage) -> Outcome:
    return sms.backend().send(message.contact.address, _text_with_stop(message),
                              idempotency_key=message.message_id)


def push_payload(message: OutboxMessage) -> dict:
    """What the service worker (alerts/sw.js) shows: the text, the page to open on
    a click (the ticket's; the console for staff), and the stop link its "Stop
    alerts" action opens; browsers without notification actions show
    `stop_hint` (that page can stop them too)."""
    if message.ticket is not None and message.contact is not None:
        page = settings.ALERTS_BASE_URL + reverse("ticket", args=[message.ticket.token])
    elif message.staff_push is not None:
        page = settings.ALERTS_BASE_URL + reverse("console-home")
    else:
        page = settings.ALERTS_BASE_URL
    with translation.override(_language(message)):
        stop_title, stop_hint = str(PUSH_STOP_ACTION), str(PUSH_STOP_HINT)
    return {"title": message.subject, "body": message.body, "url": page, "stop": stop_url(message),
            "stop_title": stop_title, "stop_hint": stop_hint, "tag": message.reason or message.kind}


def send_push(message: OutboxMessage) -> Outcome:
    subscriber = _subscriber(message)
    return push.send(subscriber.address, subscriber.keys, json.dumps(push_payload(message)))


SENDERS = {
    Channel.WEBHOOK: send_webhook,
    Channel.EMAIL: send_email,
    Channel.SMS: send_sms,
    Channel.PUSH: send_push,
}
