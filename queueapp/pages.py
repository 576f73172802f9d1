"""Reads that build what the pages show on their first render.

The live path (`queueapp.live`) pushes the same fragments afterwards; these
functions give each page the context its fragment templates expect, so the
first paint and a pushed update look the same. Nothing here writes.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q

from .live import reads, render
from .models import AT_COUNTER, Counter, Location, Queue, Ticket, TicketStatus
from .selectors import estimate_wait, placed_ahead, position_of


def ticket_context(ticket: Ticket) -> dict:
    """Context of `queueapp/live/ticket_status.html` (`live.render.ticket_context`
    is the live screens' side: the same keys from the same rules)."""
    position = position_of(ticket)
    return {"ticket": ticket, "position": position,
            "estimated_wait": estimate_wait(ticket.queue, position),
            "placed_ahead": position is not None
            and placed_ahead(ticket.queue_id, ticket.priority, ticket.queued_at).exists()}


def display_context(location: Location) -> dict:
    """Context of `display_board.html` and `display_announce.html`: the live
    path's own read, so the first paint and every pushed update come from one
    function."""
    context = reads.display_context(location.pk)
    return {**context, **render.announce_context(context["announce"])}


def console_feed_context(counter: Counter) -> dict:
    """Context of `console_feed.html`, from the same read the live feed pushes."""
    return reads.console_context(counter.pk)


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


def start_locations() -> list[Location]:
    """Locations where a visitor can take a ticket online (they have a counter queue)."""
    return list(Location.objects.filter(queues__kind=Queue.Kind.COUNTER).distinct().order_by("name"))
