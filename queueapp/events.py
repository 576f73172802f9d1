"""The one shape of a queue event message, and the one way to push it.

`event_message` builds the message every screen receives, both when a service
publishes an event on commit and when a screen reads the events it missed
from the database (`live.reads.event_messages`): one function, so the live
push and the catch-up can never disagree (`tests/test_event_schema.py` pins
the shape).

`send_event_on_commit` is how services push, as Zulip's function of that name:
it registers delivery with `transaction.on_commit` and hands the message to
the receivers connected at start-up (`queueapp.apps` connects the live
publisher). This module sits below the services and the live package, so the
services never import the live package and the live package never imports a
service (the import contract in `.importlinter` checks both).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.db import transaction

from .models import Ticket

log = logging.getLogger(__name__)

EVENT_TYPE = "queue.event"  # the channel-layer message type of an event (a tick is "queue.tick")

# Keys of every event message; an event adds "ticket" (`ticket_snapshot`),
# "left"/"entered" (ordering keys), "entered_at" (beside "entered": the
# ticket's `queued_at` as `instant_us`) and its kind's own data.
MESSAGE_KEYS = ("type", "queue", "location", "version", "kind", "at")
TICKET_KEYS = ("id", "display", "number", "priority", "seq", "status", "party_size",
               "counter", "counter_id", "call_count")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def instant_us(at: datetime) -> int:
    """An instant as whole microseconds since the epoch: exact in JSON (below
    2**53 until the year 2255) and compared as a number by the live screens."""
    return (at - _EPOCH) // timedelta(microseconds=1)


def ticket_snapshot(ticket: Ticket) -> dict:
    """What screens need to know about a ticket: numbers, never names."""
    return {
        "id": ticket.pk,
        "display": ticket.display_number,
        "number": ticket.number,
        "priority": ticket.priority,
        "seq": ticket.seq,
        "status": ticket.status,
        "party_size": ticket.party_size,
        "counter": ticket.counter.name if ticket.counter_id else None,
        "counter_id": ticket.counter_id,
        "call_count": ticket.call_count,
    }


def event_message(*, queue_id: int, location_id: int, version: int, kind: str, at: datetime,
                  data: dict) -> dict:
    """The message of one QueueEvent row (`data` is the row's `data` column)."""
    return {"type": EVENT_TYPE, "queue": queue_id, "location": location_id, "version": version,
            "kind": kind, "at": at.isoformat(), **data}


Receiver = Callable[[dict], None]
_receivers: list[Receiver] = []


def connect(receiver: Receiver) -> None:
    """Deliver every committed event message to `receiver` (called once at start-up)."""
    if receiver not in _receivers:
        _receivers.append(receiver)


def send_event_on_commit(message: dict) -> None:
    """Push `message` once the current transaction commits (never if it rolls back)."""
    transaction.on_commit(lambda: _deliver(message))


def send_event_committed(message: dict) -> None:
    """Push `message` now: its statement has committed on a connection Django
    does not hold (the event loop's async join, services/_join_async.py), where
    `on_commit` would ask Django's own connection, a blocking call in the loop."""
    _deliver(message)


def _deliver(message: dict) -> None:
    for receiver in list(_receivers):
        try:
            receiver(message)
        except Exception:  # a receiver must not turn a committed action into an error
            log.exception("event receiver %r failed", receiver)
