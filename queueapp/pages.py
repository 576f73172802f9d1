"""Reads that build what the pages show on their first render.

The live path (`queueapp.live`) pushes the same fragments afterwards; these
functions give each page the context its fragment templates expect, so the
first paint and a pushed update look the same. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Q

from .models import AT_COUNTER, Counter, Location, Queue, QueueEvent, Ticket, TicketStatus
from .selectors import estimate_wait, position_of, waiting_tickets

LAST_CALLS = 6  # how many recent calls the lobby display lists
FEED_LIMIT = 50  # waiting tickets listed per queue on the console; the count says the rest


@dataclass(frozen=True)
class Call:
    key: str  # "<queue_id>.<version>": what the display script announces once
    number: str
    counter: str
    kind: str  # called | recalled


def ticket_context(ticket: Ticket) -> dict:
    """Context of `queueapp/live/ticket_status.html`."""
    position = position_of(ticket)
    return {"ticket": ticket, "position": position,
            "estimated_wait": estimate_wait(ticket.queue, position)}


def _active_by_counter(counter_ids) -> dict[int, Ticket]:
    tickets = Ticket.objects.filter(counter_id__in=counter_ids, status__in=AT_COUNTER).select_related("queue")
    return {t.counter_id: t for t in tickets}


def recent_calls(location: Location, limit: int = LAST_CALLS) -> list[Call]:
    """The last calls and recalls at a location, newest first (numbers only, no names)."""
    events = (QueueEvent.objects
              .filter(queue__location=location, kind__in=[QueueEvent.Kind.CALLED, QueueEvent.Kind.RECALLED])
              .select_related("counter").order_by("-created_at", "-pk")[:limit])
    return [Call(key=f"{e.queue_id}.{e.version}", number=e.data.get("ticket", {}).get("display", "?"),
                 counter=e.counter.name if e.counter else "", kind=e.kind) for e in events]


def waiting_counts(queues) -> dict[int, int]:
    rows = (Ticket.objects.filter(queue__in=queues, status=TicketStatus.WAITING)
            .values("queue_id").annotate(n=Count("pk")))
    return {row["queue_id"]: row["n"] for row in rows}


def display_context(location: Location) -> dict:
    """Context of `display_board.html` and `display_announce.html`."""
    counters = list(Counter.objects.filter(location=location, is_open=True))
    active = _active_by_counter([c.pk for c in counters])
    queues = list(Queue.objects.filter(location=location, kind=Queue.Kind.COUNTER))
    counts = waiting_counts(queues)
    calls = recent_calls(location)
    return {
        "location": location,
        "serving": [{"counter": c, "ticket": active.get(c.pk)} for c in counters],
        "last_calls": calls,
        "queues": [{"queue": q, "waiting": counts.get(q.pk, 0)} for q in queues],
        "announce": calls[0] if calls else None,
    }


def console_feed_context(counter: Counter) -> dict:
    """Context of `console_feed.html`: the lines this counter serves and every counter's ticket."""
    queues = list(counter.queues.filter(kind=Queue.Kind.COUNTER).order_by("name"))
    counts = waiting_counts(queues)
    lines = []
    for queue in queues:
        tickets = list(waiting_tickets(queue)[:FEED_LIMIT])
        for t in tickets:
            t.queue = queue  # display_number without one query per ticket
        lines.append({"queue": queue, "tickets": tickets, "waiting": counts.get(queue.pk, 0)})
    counters = list(Counter.objects.filter(location_id=counter.location_id))
    active = _active_by_counter([c.pk for c in counters])
    return {
        "counter": counter,
        "lines": lines,
        "counters": [{"counter": c, "ticket": active.get(c.pk)} for c in counters],
    }


def active_ticket(counter: Counter) -> Ticket | None:
    return (Ticket.objects.filter(counter=counter, status__in=AT_COUNTER)
            .select_related("queue", "counter").first())


def transfer_targets(counter: Counter) -> list[Queue]:
    """Counter queues of the counter's location a ticket may be moved to."""
    return list(Queue.objects.filter(location_id=counter.location_id, kind=Queue.Kind.COUNTER)
                .order_by("name"))


def joinable_queues(location: Location) -> list[Queue]:
    """Services offered at the kiosk and online, with how many wait and whether they take tickets."""
    queues = (Queue.objects.filter(location=location, kind=Queue.Kind.COUNTER)
              .annotate(waiting=Count("tickets", filter=Q(tickets__status=TicketStatus.WAITING)))
              .order_by("name"))
    for q in queues:
        q.full = q.max_waiting is not None and q.waiting >= q.max_waiting
        q.wait = estimate_wait(q, q.waiting + 1) or timedelta()
    return list(queues)
