"""HTML fragments for the live screens, as htmx 4's hx-ws extension swaps them.

A frame is raw HTML (not JSON): htmx turns each `<hx-partial hx-target=...>`
into a swap of that target, here `outerHTML` of the element with the
fragment's root id (`ticket-status`, `display-board`, `display-announce`,
`console-feed`). The same templates serve the first render of the pages.

Rendering is the per-screen cost of a broadcast, so it is shared:
- the display board and console feed are the same for every screen of a
  location/counter: the hub renders them once per change per process;
- a patient fragment depends only on (queue, status, position, wait, counter,
  call count) once the ticket number is taken out, so it is rendered once
  with a placeholder and cached: after a call, the screen at position 5 shows
  the fragment the screen at position 4 showed a moment ago;
- in a counter queue's line, the place and the wait are slots too: the
  fragment is rendered once per queue with sentinel values and each screen's
  number, place, count ahead and wait are put in by string replacement. A
  cold start of 5,000 phones at 5,000 places used to render 5,000 templates
  (a quarter of the event loop's time while they connected, py-spy) and keep
  one cached fragment per place (~7 KB per idle screen); now it renders one.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from datetime import timedelta

from django.template.loader import render_to_string
from django.utils import translation
from django.utils.html import escape

from ..estimates import shown_minutes
from ..models import Queue, TicketStatus
from ..templatetags.live_tags import wait_text
from .reads import TicketView

TICKET_TEMPLATE = "queueapp/live/ticket_status.html"
BOARD_TEMPLATE = "queueapp/live/display_board.html"
ANNOUNCE_TEMPLATE = "queueapp/live/display_announce.html"
CONSOLE_TEMPLATE = "queueapp/live/console_feed.html"

_NUMBER = "__TICKET_NUMBER__"  # survives autoescaping; replaced per screen
# Sentinels for a waiting place: rendered as plain digits and words that no
# real fragment contains, then replaced per screen (see `_slotted`).
_PLACE = 987_654_321
_WAIT = timedelta(hours=876_543, minutes=1)
_CACHE_SIZE = 20_000  # > the longest line we serve at once, so a call re-renders ~nothing


class _LRU(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get_or_make(self, key, make):
        try:
            self.move_to_end(key)
            return self[key]
        except KeyError:
            value = self[key] = make()
            if len(self) > self.size:
                self.popitem(last=False)
            return value


_ticket_cache = _LRU(_CACHE_SIZE)
_announce_cache = _LRU(256)
# The wait in words per (language, shown minutes): a broadcast puts one in each
# of thousands of fragments, and each was two translation lookups inside a
# language switch (~20 % of the fan-out's CPU in our code, py-spy).
_wait_words = _LRU(4096)


def partial(target_id: str, html: str) -> str:
    """One hx-ws frame part: replace the element `#target_id` by `html`."""
    return f'<hx-partial hx-target="#{target_id}" hx-swap="outerHTML">{html}</hx-partial>'


def ticket_context(view: TicketView) -> dict:
    return {"ticket": view, "position": view.position, "estimated_wait": view.estimated_wait,
            "placed_ahead": view.placed_ahead}


def _slotted(view: TicketView) -> bool:
    """A place in a counter queue's line past the first: number, place and wait are slots."""
    return (view.status == TicketStatus.WAITING and view.queue.kind != Queue.Kind.CAPACITY
            and view.position is not None and view.position > 1)


def _wait_in_words(language: str, minutes: int | None, wait: timedelta) -> str:
    """`wait_text(wait)` in `language`, escaped (as the template shows it); None
    as `minutes`: the sentinel's words as rendered, not escaped (see `_slotted_status`)."""
    def make() -> str:
        with translation.override(language):
            return wait_text(wait) if minutes is None else escape(wait_text(wait))

    return _wait_words.get_or_make((language, minutes), make)


def _slotted_status(view: TicketView) -> str:
    """Needs no language switch unless it renders: the cached fragment and the
    words are per language already."""
    wait = view.estimated_wait
    key = ("slots", view.language, view.queue_id, view.queue.name, wait is None, view.call_count, view.party_size,
           view.missed_call, view.placed_ahead)

    def make() -> str:
        generic = replace(view, display_number=_NUMBER, token="")
        with translation.override(view.language):
            return render_to_string(TICKET_TEMPLATE, {"ticket": generic, "position": _PLACE,
                                                      "estimated_wait": None if wait is None else _WAIT,
                                                      "placed_ahead": view.placed_ahead})

    html = _ticket_cache.get_or_make(key, make)
    if wait is not None:
        html = html.replace(_wait_in_words(view.language, None, _WAIT),
                            _wait_in_words(view.language, shown_minutes(wait), wait))
    return (html.replace(str(_PLACE), str(view.position)).replace(str(_PLACE - 1), str(view.position - 1))
            .replace(_NUMBER, escape(view.display_number)))


def ticket_status(view: TicketView) -> str:
    """The patient fragment (`#ticket-status`) for a ticket view, in its holder's
    language (the language is part of every cache key: screens of the same
    language share a render, as before)."""
    if _slotted(view):
        return _slotted_status(view)  # the common case of a broadcast: switches language only to render
    with translation.override(view.language):
        return _ticket_status(view)


def _ticket_status(view: TicketView) -> str:
    if view.status == TicketStatus.OFFERED:  # carries the token and expiry: never shared
        return render_to_string(TICKET_TEMPLATE, ticket_context(view))
    wait = view.estimated_wait
    key = (view.language, view.queue_id, view.queue.name, view.status, view.position,
           None if wait is None else shown_minutes(wait),
           view.counter.name if view.counter else None, view.call_count,
           getattr(view.queue, "seats_free", None), view.party_size, view.missed_call, view.placed_ahead)

    def make() -> str:
        generic = replace(view, display_number=_NUMBER, token="")
        return render_to_string(TICKET_TEMPLATE, ticket_context(generic))

    return _ticket_cache.get_or_make(key, make).replace(_NUMBER, escape(view.display_number))


def warm_next_place(view: TicketView) -> None:
    """Render the fragment this screen will need after the next call (one place
    ahead), so the first broadcast after a burst of connections finds it cached
    even in a process that has no screen at that place yet."""
    if view.status == TicketStatus.WAITING and view.position and view.position > 1:
        ahead = replace(view, position=view.position - 1)
        if not _slotted(ahead):  # a slotted place needs no warming: one render serves every place
            ticket_status(ahead)


def ticket_frame(view: TicketView) -> str:
    return partial("ticket-status", ticket_status(view))


def display_board(context: dict) -> str:
    """Rendered in the active language: the hub renders a location's board in
    the location's language (`hub._board`)."""
    return render_to_string(BOARD_TEMPLATE, context)


def announce_context(message: dict | None) -> dict:
    """Context of `display_announce.html` for a call/recall message (empty without one)."""
    if message is None:
        return {"key": "", "number": "", "counter": "", "kind": ""}
    ticket = message.get("ticket") or {}
    return {"key": f"{message['queue']}.{message['version']}", "number": ticket.get("display", ""),
            "counter": ticket.get("counter") or "", "kind": message.get("kind", "")}


def display_announce(message: dict | None = None) -> str:
    """`#display-announce` for a called/recalled event (empty without one)."""
    if message is None:
        return render_to_string(ANNOUNCE_TEMPLATE, announce_context(None))
    key = (translation.get_language(), message["queue"], message["version"])
    return _announce_cache.get_or_make(key, lambda: render_to_string(ANNOUNCE_TEMPLATE,
                                                                      announce_context(message)))


def display_frame(context: dict) -> str:
    """The board and the banner, from one read: a board refresh also takes a
    banner whose ticket was transferred away off the screen."""
    return (partial("display-board", display_board(context))
            + partial("display-announce", display_announce(context["announce"])))


def waitlist_board(context: dict) -> str:
    """`#waitlist-board`, the staff board of a capacity queue (`queueapp.waitlist_board`)."""
    return render_to_string("queueapp/live/waitlist_board.html", context)


def console_feed(context: dict) -> str:
    return render_to_string(CONSOLE_TEMPLATE, context)
