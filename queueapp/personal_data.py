"""What is held about the person behind a ticket token: the export they may ask for.

Reads only. The person's tickets are the one the token names and every ticket
a transfer linked to it (one person, moved between queues); for each, its
fields, its events (what happened when, at which counter), and any other rows
that refer to it (contact data for alerts, for instance), whatever app holds
them. Nothing about other people: events list counters, not staff.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db import models

from .models import QueueEvent, Ticket
from .selectors import transfer_chain, transferred_from

TICKET_FIELDS = ["number", "status", "priority", "party_size", "note", "call_count", "no_show_count",
                 "created_at", "queued_at", "called_at", "serving_at", "finished_at", "offer_expires_at",
                 "confirmed_at"]


def person_tickets(ticket: Ticket) -> list[Ticket]:
    """The ticket and those transfers linked to it, oldest first."""
    earlier = transferred_from(ticket)
    return transfer_chain(earlier[-1] if earlier else ticket)


def ticket_data(ticket: Ticket) -> dict:
    """A JSON-ready dict of everything held about the ticket's holder."""
    tickets = person_tickets(ticket)
    location = ticket.queue.location
    cutoff = location.retention_cutoff()
    return {
        "location": location.name,
        "retention": ({"days": location.retention_days,
                       "note": "Tickets that ended before the start of the day this many days ago "
                               "are deleted with everything below.",
                       "ended_before_is_deleted": _plain(cutoff)}
                      if cutoff else {"days": None, "note": "Kept until a retention period is set."}),
        "tickets": [_ticket(t) for t in tickets],
    }


def _ticket(ticket: Ticket) -> dict:
    data = {"display_number": ticket.display_number, "queue": ticket.queue.name,
            "business_day": ticket.business_day.isoformat(),
            "counter": ticket.counter.name if ticket.counter_id else None}
    data.update({name: _plain(getattr(ticket, name)) for name in TICKET_FIELDS})
    data["events"] = [
        {"at": _plain(e.created_at), "what": e.kind, "status_after": e.status_after,
         "counter": e.counter.name if e.counter_id else None}
        for e in QueueEvent.objects.filter(ticket=ticket).select_related("counter").order_by("version")]
    data.update(_other_rows(ticket))
    return data


def _other_rows(ticket: Ticket) -> dict:
    """Rows of any other model that refer to the ticket (e.g. contact data)."""
    found = {}
    for relation in Ticket._meta.related_objects:
        if relation.related_model in (QueueEvent, Ticket) or not relation.one_to_many and not relation.one_to_one:
            continue
        model = relation.related_model
        rows = model._default_manager.filter(**{relation.field.name: ticket})
        fields = [f for f in model._meta.concrete_fields if not f.primary_key and not f.is_relation]
        found[model._meta.label_lower] = [{f.name: _plain(getattr(row, f.attname)) for f in fields}
                                          for row in rows]
    return found


def _plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, models.Model):
        return str(value)
    return value
