"""Which messages an event makes due, written as outbox rows in the action's transaction.

`on_event` is called by `record_event` (queueapp.services._events) right after
the event row is written, under the queue row lock: the rows commit with the
event or roll back with it, so a message is due exactly when its change is
committed. Nothing here sends anything.

"N ahead of you" does not grow with the line: after a ticket left the line,
the ticket now at place N + 1 is one probe of the waiting-order index
(OFFSET N), and it has just reached that place exactly when the ticket that
left stood ahead of it (or it entered the line there itself).
"""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Subquery
from django.utils import timezone

from ..models import Queue, QueueEvent, Ticket
from ..selectors import is_ahead, waiting_tickets
from . import texts
from .models import AlertRule, Channel, Contact, MessageKind, OutboxMessage, WebhookEndpoint

Kind = QueueEvent.Kind
DEFAULT_AHEAD = 3

# Event kind -> (message kind, statuses under which it is still true, reason suffix).
PATIENT_MESSAGE = {
    Kind.CALLED: MessageKind.CALLED,
    Kind.RECALLED: MessageKind.CALLED,
    Kind.REQUEUED: MessageKind.MISSED,
    Kind.NO_SHOW: MessageKind.CLOSED,
    Kind.TRANSFERRED_OUT: MessageKind.TRANSFERRED,
    Kind.OFFERED: MessageKind.OFFERED,
    Kind.CONFIRMED: MessageKind.CONFIRMED,
    Kind.ACCEPTED: MessageKind.CONFIRMED,
    Kind.EXPIRED: MessageKind.EXPIRED,
}
STILL_TRUE_WHILE = {
    MessageKind.AHEAD: "waiting",
    MessageKind.CALLED: "called",
    MessageKind.MISSED: "waiting",
    MessageKind.OFFERED: "offered",
    MessageKind.OFFER_REMINDER: "offered",
    MessageKind.CONFIRMED: "confirmed",
}


class _Rules:
    """A queue's rules, read once per event and only when a message may be due."""

    def __init__(self, queue: Queue):
        self.rules = list(AlertRule.objects.filter(queue=queue))

    def enabled(self, kind: str) -> bool:
        return all(r.enabled for r in self.rules if r.kind == kind and r.threshold is None)

    def template(self, kind: str) -> str:
        return next((r.template for r in self.rules if r.kind == kind and r.template), "")

    def ahead_thresholds(self) -> list[tuple[int, str]]:
        ahead = [r for r in self.rules if r.kind == MessageKind.AHEAD]
        if not ahead:
            return [(DEFAULT_AHEAD, "")]
        return [(r.threshold, r.template) for r in ahead if r.enabled and r.threshold]


def on_event(event: QueueEvent, *, queue: Queue, ticket: Ticket | None,
             left_line: tuple[int, int] | None, entered_line: tuple[int, int] | None,
             webhooks: list[WebhookEndpoint] | None = None) -> None:
    """`webhooks`: `webhook_endpoints(queue.location_id, event.kind)` if the
    caller has just read it (a waiting room's arrival), else read here."""
    rows: list[OutboxMessage] = []
    rows += _webhooks(event, queue, ticket, webhooks)
    rules: _Rules | None = None
    kind = PATIENT_MESSAGE.get(event.kind)
    if ticket is not None and kind is not None:
        contacts = list(Contact.objects.filter(ticket=ticket, stopped_at__isnull=True, blanked_at__isnull=True))
        if contacts:
            rules = _Rules(queue)
            if rules.enabled(kind):
                rows += _for_contacts(contacts, kind, event, queue, ticket, rules.template(kind))
            if event.kind == Kind.OFFERED and rules.enabled(MessageKind.OFFER_REMINDER):
                rows += _reminders(contacts, event, queue, ticket, rules.template(MessageKind.OFFER_REMINDER))
            if event.kind == Kind.TRANSFERRED_OUT:
                _follow_transfer(contacts, event.data.get("new_ticket"))
    # A join puts a ticket that has no contact yet at the back: nobody new reaches place N.
    if left_line is not None or (entered_line is not None and event.kind != Kind.JOINED):
        rules = rules or _Rules(queue)
        for n, template in rules.ahead_thresholds():
            rows += _ahead(queue, n, template, left_line, ticket if entered_line else None)
    if rows:
        OutboxMessage.objects.bulk_create(rows, ignore_conflicts=True)


def _fields(queue: Queue, ticket: Ticket, event: QueueEvent | None = None, **extra) -> dict:
    fields = {"number": ticket.display_number, "queue": queue.name, "location": queue.location.name,
              "counter": ticket.counter.name if ticket.counter_id else ""}
    if event is not None and event.data.get("new_display"):
        fields["new_number"] = event.data["new_display"]
    fields.update(extra)
    return fields


def _local_time(queue: Queue, moment) -> str:
    return moment.astimezone(ZoneInfo(queue.location.timezone)).strftime("%H:%M")


def _message(contact: Contact, kind: str, reason: str, queue: Queue, ticket: Ticket, fields: dict,
             template: str, due=None) -> OutboxMessage:
    subject, text = texts.render(kind, fields, template, language=ticket.language)
    return OutboxMessage(channel=contact.channel, kind=kind, reason=reason, queue=queue, ticket=ticket,
                         contact=contact, subject=subject, body=text,
                         requires_status=STILL_TRUE_WHILE.get(kind, ""),
                         next_attempt_at=due or timezone.now())


def _for_contacts(contacts, kind, event, queue, ticket, template) -> list[OutboxMessage]:
    extra = {}
    if kind == MessageKind.CALLED:
        reason = f"called:{ticket.call_count}"
    elif kind == MessageKind.MISSED:
        reason = f"missed:{ticket.no_show_count}"
    else:
        reason = kind
    if kind == MessageKind.OFFERED and ticket.offer_expires_at:
        extra["time"] = _local_time(queue, ticket.offer_expires_at)
    if kind == MessageKind.EXPIRED and ticket.offer_expires_at:
        extra["time"] = _local_time(queue, ticket.offer_expires_at)
    fields = _fields(queue, ticket, event, **extra)
    return [_message(c, kind, reason, queue, ticket, fields, template) for c in contacts]


def _reminders(contacts, event, queue, ticket, template) -> list[OutboxMessage]:
    """Due before the offer lapses: a third of the offer's time, at most the setting."""
    expires = ticket.offer_expires_at
    if expires is None or not queue.offer_seconds:
        return []
    lead = min(settings.ALERTS_OFFER_REMINDER_SECONDS, queue.offer_seconds // 3)
    due = expires - timedelta(seconds=lead)
    if lead <= 0 or due <= timezone.now():
        return []
    fields = _fields(queue, ticket, event, time=_local_time(queue, expires))
    return [_message(c, MessageKind.OFFER_REMINDER, "offer_reminder", queue, ticket, fields, template, due)
            for c in contacts]


def _follow_transfer(contacts: list[Contact], new_ticket_id: int | None) -> None:
    """The patient's page follows a transfer; so do their alerts (with their consent's date)."""
    if new_ticket_id is None:
        return
    Contact.objects.bulk_create([
        Contact(ticket_id=new_ticket_id, channel=c.channel, address=c.address, keys=c.keys,
                consent_at=c.consent_at) for c in contacts
    ], ignore_conflicts=True)


def _ahead(queue: Queue, n: int, template: str, left_line, entered: Ticket | None) -> list[OutboxMessage]:
    """Messages for the ticket now at place n + 1, if it has just got there."""
    at_place = waiting_tickets(queue).values("pk")[n:n + 1]
    contacts = list(Contact.objects.filter(ticket_id=Subquery(at_place), stopped_at__isnull=True,
                                           blanked_at__isnull=True).select_related("ticket__counter"))
    if not contacts:
        return []
    holder = contacts[0].ticket
    key = (holder.priority, holder.seq)
    moved_up = left_line is not None and is_ahead(tuple(left_line), key)
    if not (moved_up or (entered is not None and entered.pk == holder.pk)):
        return []
    holder.queue = queue
    fields = _fields(queue, holder, ahead=n)
    return [_message(c, MessageKind.AHEAD, f"ahead:{n}", queue, holder, fields, template) for c in contacts]


def webhook_endpoints(location_id: int, kind: str) -> list[WebhookEndpoint]:
    """The active endpoints of a location that want events of `kind`."""
    return [e for e in WebhookEndpoint.objects.filter(location_id=location_id, is_active=True) if e.wants(kind)]


def _webhooks(event: QueueEvent, queue: Queue, ticket: Ticket | None,
              endpoints: list[WebhookEndpoint] | None = None) -> list[OutboxMessage]:
    if endpoints is None:
        endpoints = webhook_endpoints(queue.location_id, event.kind)
    if not endpoints:
        return []
    body = json.dumps(webhook_body(event, queue, ticket), separators=(",", ":"))
    return [OutboxMessage(channel=Channel.WEBHOOK, kind=MessageKind.EVENT, queue=queue, ticket=ticket,
                          endpoint=e, subject=event.kind, body=body) for e in endpoints]


def webhook_body(event: QueueEvent, queue: Queue, ticket: Ticket | None) -> dict:
    """What other systems hear: the event's kind, queue, version, ticket number and
    status; never the ticket's token or a contact address."""
    data = {"event": event.kind, "location": queue.location.slug, "queue": queue.slug,
            "queue_id": queue.pk, "version": event.version,
            "ticket": ticket.display_number if ticket is not None else None,
            "status": event.status_after or None}
    if ticket is not None and ticket.counter_id and event.kind in (Kind.CALLED, Kind.RECALLED):
        data["counter"] = ticket.counter.name
    return {"type": f"queue.{event.kind}", "timestamp": event.created_at.isoformat(), "data": data}
