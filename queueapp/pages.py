"""Reads that build what the pages show on their first render.

The live path (`queueapp.live`) pushes the same fragments afterwards; these
functions give each page the context its fragment templates expect, so the
first paint and a pushed update look the same. Nothing here writes.
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

from django.db.models import Count, Q
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.html import escape
from django.utils.safestring import mark_safe

from .live import reads, render
from .models import AT_COUNTER, Counter, Location, Queue, Ticket, TicketStatus, WaitingRoom
from .selectors import estimate_wait, may_be_overtaken, placed_ahead, position_of


def ticket_context(ticket: Ticket) -> dict:
    """Context of `queueapp/live/ticket_status.html` (`live.render.ticket_context`
    is the live screens' side: the same keys from the same rules)."""
    position = position_of(ticket)
    return {"ticket": ticket, "position": position,
            "estimated_wait": estimate_wait(ticket.queue, position),
            "placed_ahead": position is not None and may_be_overtaken(ticket.queue)
            and placed_ahead(ticket.queue_id, ticket.priority, ticket.queued_at).exists()}


# The waiting room's page around the ticket's fragment depends only on the room's
# name and the page's language: it is rendered once per (room, name, language)
# with these sentinels, and each arrival's page is that shell with its fragment,
# its socket's token and its CSRF token put in (bench/waiting_room.py: the page's
# template was about a third of an arrival's Python; docs/benchmarks.md).
_STATUS = "__WAIT_STATUS__"
_TOKEN = "__WAIT_TOKEN__"
_CSRF = "__WAIT_CSRF__"
_wait_shells = render._LRU(1024)


def waiting_room_page(request: HttpRequest, room: WaitingRoom, ticket: Ticket, *, refresh: int) -> str:
    """The waiting room's page (`queueapp/wait.html`) for a visitor in line.

    The fragment is the live path's own render (`live.render.ticket_status`,
    shared by every page at the same place and wait), so the first paint is
    exactly what the socket would push, in the page's language."""
    language = translation.get_language()
    view = reads.view_of(ticket, ticket.queue)
    if ticket.status == TicketStatus.WAITING:
        # An arrival's own statement read its place and the room's recent stays
        # (`services.rooms.do_enter_line`: `ticket.line_read`); a reload reads them.
        line = getattr(ticket, "line_read", None)
        reads.place_in_line(view, ticket.queue, position=line.position if line else None,
                            stays=line.stays if line else None)
    view.language = language
    name = room.queue.name

    def make() -> str:
        # No request-specific value may reach the shared shell: the CSRF token
        # and the socket's token are sentinels, messages none (the page shows none).
        return render_to_string("queueapp/wait.html", {
            "room": room, "refresh": refresh, "ticket": SimpleNamespace(token=_TOKEN),
            "ticket_status": mark_safe(_STATUS), "csrf_token": _CSRF, "messages": ()}, request=request)

    shell = _wait_shells.get_or_make((room.pk, name, language, refresh), make)
    return (shell.replace(_STATUS, render.ticket_status(view)).replace(_TOKEN, escape(ticket.token))
            .replace(_CSRF, escape(get_token(request))))


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
