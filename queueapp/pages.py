"""Reads that build what the pages show on their first render.

The live path (`queueapp.live`) pushes the same fragments afterwards; these
functions give each page the context its fragment templates expect, so the
first paint and a pushed update look the same. Nothing here writes.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from .models import AT_COUNTER, Counter, Location, Queue, QueueEvent, Ticket, TicketStatus
from .selectors import estimate_wait, position_of, waiting_tickets

LAST_CALLS = 8  # how many recent calls the lobby display lists
FEED_LIMIT = 50  # waiting tickets listed per queue on the console; the count says the rest


def ticket_context(ticket: Ticket) -> dict:
    """Context of `queueapp/live/ticket_status.html`."""
    position = position_of(ticket)
    return {"ticket": ticket, "position": position,
            "estimated_wait": estimate_wait(ticket.queue, position)}


def _active_by_counter(counter_ids) -> dict[int, Ticket]:
    tickets = Ticket.objects.filter(counter_id__in=counter_ids, status__in=AT_COUNTER).select_related("queue")
    return {t.counter_id: t for t in tickets}


def announce_context(location: Location) -> dict:
    """Context of `display_announce.html`: the latest call or recall (key "<queue>.<version>")."""
    event = (QueueEvent.objects
             .filter(queue__location=location, kind__in=[QueueEvent.Kind.CALLED, QueueEvent.Kind.RECALLED])
             .order_by("-created_at", "-pk").first())
    if event is None:
        return {"key": "", "number": "", "counter": "", "kind": ""}
    ticket = event.data.get("ticket") or {}
    return {"key": f"{event.queue_id}.{event.version}", "number": ticket.get("display", ""),
            "counter": ticket.get("counter") or "", "kind": event.kind}


def display_context(location: Location) -> dict:
    """Context of `display_board.html` (now serving, last calls, waiting per queue)."""
    queues = list(Queue.objects.filter(location=location).order_by("name"))
    waiting = dict(Ticket.objects.filter(queue__in=queues, status=TicketStatus.WAITING)
                   .values_list("queue_id").annotate(n=Count("pk")).values_list("queue_id", "n"))
    active = {t.counter_id: t for t in Ticket.objects.filter(queue__in=queues, status__in=AT_COUNTER)
              .select_related("queue")}
    counters = [{"name": c.name, "ticket": active.get(c.pk)}
                for c in Counter.objects.filter(location=location).order_by("name")
                if c.is_open or c.pk in active]
    last_calls = list(
        QueueEvent.objects.filter(queue__in=queues, kind__in=[QueueEvent.Kind.CALLED, QueueEvent.Kind.RECALLED])
        .select_related("ticket__queue", "counter").order_by("-created_at", "-pk")[:LAST_CALLS])
    return {"queues": [{"queue": q, "waiting": waiting.get(q.pk, 0)} for q in queues],
            "counters": counters, "last_calls": last_calls}


def console_feed_context(counter: Counter) -> dict:
    """Context of `console_feed.html`: the lines this counter serves and every counter's ticket."""
    lines = []
    now = timezone.now()
    for queue in counter.queues.order_by("name"):
        shown = list(waiting_tickets(queue)[:FEED_LIMIT])
        for t in shown:
            t.queue = queue  # display_number without one query per ticket
            t.waited = now - t.queued_at
        total = waiting_tickets(queue).count() if len(shown) == FEED_LIMIT else len(shown)
        lines.append({"queue": queue, "tickets": shown, "total": total})
    active = {t.counter_id: t for t in Ticket.objects.filter(
        queue__location_id=counter.location_id, status__in=AT_COUNTER).select_related("queue")}
    counters = [{"counter": c, "ticket": active.get(c.pk)}
                for c in Counter.objects.filter(location_id=counter.location_id).order_by("name")]
    return {"counter": counter, "lines": lines, "counters": counters}


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
