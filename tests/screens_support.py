"""Screens as small adapters, for the verify-action test (`test_verify_action.py`).

A screen is what a person keeps open: a page whose first paint holds some
fragments (elements with an id), and a WebSocket that pushes new versions of
those same fragments as `<hx-partial hx-target="#id">` frames. An adapter
says, for a given world, which page and socket that is, who is looking, and
which fragments the socket keeps up to date. To prove a new screen right, add
an adapter to `SCREENS` (or return more from `screens_for`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser

from django.test import Client


@dataclass
class World:
    """What one verify-action case acts on (built fresh per case)."""

    kind: str
    location: object
    queue: object                  # the queue the action is about
    other: object                  # a second counter queue (transfer target)
    counter: object                # serves `queue` (and `other`)
    staff: object
    tickets: dict[str, object] = field(default_factory=dict)  # name -> Ticket


@dataclass
class Screen:
    """One open screen: the page, its socket, who looks at it, what is pushed."""

    name: str
    page_url: str
    ws_path: str
    fragments: tuple[str, ...]
    user: object | None = None     # logged-in viewer (staff screens), None for the public

    def client(self) -> Client:
        client = Client()
        if self.user is not None:
            client.force_login(self.user)
        return client

    def cookie_header(self) -> list[tuple[bytes, bytes]]:
        if self.user is None:
            return []
        session = self.client().cookies["sessionid"].value
        return [(b"cookie", f"sessionid={session}".encode())]


# --- the screens ---------------------------------------------------------------
def ticket_screens(world: World) -> list[Screen]:
    """The patient's page for every ticket that exists before the action."""
    return [Screen(f"ticket {name}", f"/t/{t.token}/", f"/ws/ticket/{t.token}/", ("ticket-status",))
            for name, t in world.tickets.items()]


def display_screens(world: World) -> list[Screen]:
    slug = world.location.slug
    return [Screen("display", f"/display/{slug}/", f"/ws/display/{slug}/",
                   ("display-board", "display-announce"))]


def console_screens(world: World) -> list[Screen]:
    c = world.counter
    return [Screen("console", f"/console/{c.pk}/", f"/ws/console/{c.pk}/", ("console-feed",),
                   user=world.staff)]


def waitlist_board_screens(world: World) -> list[Screen]:
    """The staff board of every waitlist at the location (a waiting room has none)."""
    from queueapp.models import Queue

    waitlists = (Queue.objects.filter(location=world.location, kind=Queue.Kind.CAPACITY,
                                      waiting_room__isnull=True).order_by("pk"))
    return [Screen(f"waitlist board {q.name}", f"/waitlist/{q.pk}/", f"/ws/waitlist/{q.pk}/",
                   ("waitlist-board",), user=world.staff) for q in waitlists]


SCREENS: list[Callable[[World], list[Screen]]] = [ticket_screens, display_screens, console_screens,
                                                  waitlist_board_screens]


def screens_for(world: World) -> list[Screen]:
    return [screen for make in SCREENS for screen in make(world)]


# --- fragments -------------------------------------------------------------------
_SPACE = re.compile(r"\s+")
_BETWEEN_TAGS = re.compile(r">\s+<")
PARTIAL = re.compile(r'<hx-partial hx-target="#([\w-]+)" hx-swap="outerHTML">(.*?)</hx-partial>', re.S)


# A form's CSRF field is the request's credential, not state: the page's forms
# carry one for browsers without JavaScript, a pushed fragment cannot (no
# request), and htmx sends the token from <body hx-headers> either way.
_CSRF_FIELD = re.compile(r'<input type="hidden" name="csrfmiddlewaretoken" value="[^"]*">')


def normalise(html: str) -> str:
    """Whitespace differences between a page include and a frame are not a
    difference, nor is the CSRF field (above)."""
    return _BETWEEN_TAGS.sub("><", _SPACE.sub(" ", _CSRF_FIELD.sub("", html))).strip()


class _FragmentFinder(HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
            "track", "wbr"}

    def __init__(self, ids):
        super().__init__(convert_charrefs=False)
        self.ids = set(ids)
        self.open: list[tuple[str, str | None, tuple[int, int]]] = []
        self.spans: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {}

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        ident = dict(attrs).get("id")
        self.open.append((tag, ident if ident in self.ids else None, self.getpos()))

    def handle_endtag(self, tag):
        while self.open:
            open_tag, ident, start = self.open.pop()
            if open_tag == tag:
                if ident is not None and ident not in self.spans:
                    self.spans[ident] = (start, self.getpos())
                return


def fragments_of(html: str, ids) -> dict[str, str]:
    """The outer HTML of each element of `html` with one of `ids`."""
    finder = _FragmentFinder(ids)
    finder.feed(html)
    finder.close()
    lines = html.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def at(pos):
        return offsets[pos[0] - 1] + pos[1]

    found = {}
    for ident, (start, end) in finder.spans.items():
        end_at = html.index(">", at(end)) + 1
        found[ident] = normalise(html[at(start):end_at])
    return found


def apply_frame(state: dict[str, str], frame: str) -> None:
    """Swap the fragments a pushed frame carries into `state` (as htmx does)."""
    for target, html in PARTIAL.findall(frame):
        if target in state:
            state[target] = normalise(html)
