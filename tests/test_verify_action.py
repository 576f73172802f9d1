"""Screens equal the state, proved the way Zulip proves its events (`verify_action`).

For every action and both queue kinds, and for every screen open at the time
(each ticket's page, the lobby display, the counter's console; see
`screens_support.SCREENS` to add one):

    first paint before the action
      + the frames the socket pushed after it (swapped in as htmx would)
    == first paint of the same page after the action, fragment for fragment.

It also checks that the socket's own snapshot on connect equals the page's
first paint. Any fact computed one way for the page and another for the push
(a wait, a position, a status sentence, a counter) fails here, naming the
action, the screen and the fragment.

The socket is the real ASGI application (Channels' communicator: the frames
are what daphne would send); the channel layer is the configured one (Redis
on the PostgreSQL run), the database is real, the pages come from Django's
test client.
"""

from __future__ import annotations

import asyncio
import difflib
from contextlib import AsyncExitStack
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from queueapp.live import hub
from queueapp.models import Queue, Ticket, TicketStatus
from queueapp.services import (
    do_accept_offer, do_call_next, do_call_ticket, do_cancel, do_complete, do_confirm_waitlist,
    do_decline_offer, do_expire_offers, do_join, do_no_show, do_pause, do_recall, do_resume,
    do_set_capacity, do_start_serving, do_transfer,
)
from tests.conftest import make_counter, make_queue, make_user
from tests.live_helpers import ORIGIN
from tests.screens_support import World, apply_frame, fragments_of, screens_for

pytestmark = pytest.mark.django_db(transaction=True)

QUIET = 0.4  # seconds without a frame after which a screen has shown all it will
SETTLE = 1.5  # a screen that disagrees gets this much longer: late is not wrong, wrong is
CONNECT_TIMEOUT = 5.0


# --- worlds ------------------------------------------------------------------------
def counter_world(location) -> World:
    queue = make_queue(location, "General", prefix="A")
    other = make_queue(location, "Pharmacy", prefix="P")
    counter = make_counter(location, "Counter 1", [queue, other])
    world = World("counter", location, queue, other, counter, make_user("alice", location))
    for name in ("t1", "t2", "t3"):
        world.tickets[name] = do_join(queue)
    return world


def waitlist_world(location, **options) -> World:
    """Two seats; t1 (a party of 2) holds them, t2 and t3 wait."""
    other = make_queue(location, "General", prefix="A")
    queue = make_queue(location, "Tables", prefix="T", kind=Queue.Kind.CAPACITY, capacity=2, **options)
    counter = make_counter(location, "Counter 1", [other])
    world = World("capacity", location, queue, other, counter, make_user("alice", location))
    for name, party in (("t1", 2), ("t2", 1), ("t3", 1)):
        world.tickets[name] = do_join(queue, party_size=party)
    return world


def _t(world: World, name: str) -> Ticket:
    return Ticket.objects.get(pk=world.tickets[name].pk)


def _later():
    return timezone.now() + timedelta(hours=1)


# --- actions: (queue kind, name, build the world, prepare, act) ------------------------
def _none(world):
    return None


CASES = [
    # Counter queues.
    ("counter", "join", counter_world, _none, lambda w: do_join(w.queue)),
    ("counter", "call next", counter_world, _none,
     lambda w: do_call_next(w.queue, counter=w.counter, acting_user=w.staff)),
    ("counter", "call", counter_world, _none,
     lambda w: do_call_ticket(_t(w, "t3"), counter=w.counter, acting_user=w.staff)),
    ("counter", "recall", counter_world, lambda w: do_call_next(w.queue, counter=w.counter),
     lambda w: do_recall(_t(w, "t1"), acting_user=w.staff)),
    ("counter", "start", counter_world, lambda w: do_call_next(w.queue, counter=w.counter),
     lambda w: do_start_serving(_t(w, "t1"), acting_user=w.staff)),
    ("counter", "complete", counter_world,
     lambda w: do_start_serving(do_call_next(w.queue, counter=w.counter)),
     lambda w: do_complete(_t(w, "t1"), acting_user=w.staff)),
    ("counter", "no-show", counter_world, lambda w: do_call_next(w.queue, counter=w.counter),
     lambda w: do_no_show(_t(w, "t1"), acting_user=w.staff)),
    ("counter", "cancel", counter_world, _none, lambda w: do_cancel(_t(w, "t2"), by_patient=True)),
    ("counter", "transfer", counter_world, _none,
     lambda w: do_transfer(_t(w, "t2"), to_queue=w.other, acting_user=w.staff)),
    ("counter", "pause", counter_world, _none, lambda w: do_pause(w.queue, acting_user=w.staff)),
    ("counter", "resume", counter_world, lambda w: do_pause(w.queue),
     lambda w: do_resume(w.queue, acting_user=w.staff)),
    # Capacity waitlists.
    ("capacity", "join", waitlist_world, _none, lambda w: do_join(w.queue)),
    ("capacity", "cancel", waitlist_world, _none, lambda w: do_cancel(_t(w, "t3"), by_patient=True)),
    ("capacity", "cancel confirmed", waitlist_world, _none,
     lambda w: do_cancel(_t(w, "t1"), acting_user=w.staff)),
    ("capacity", "pause", waitlist_world, _none, lambda w: do_pause(w.queue, acting_user=w.staff)),
    ("capacity", "resume", waitlist_world,
     lambda w: (do_pause(w.queue), do_set_capacity(w.queue, capacity=3)),
     lambda w: do_resume(w.queue, acting_user=w.staff)),
    ("capacity", "capacity change", waitlist_world, _none,
     lambda w: do_set_capacity(w.queue, capacity=4, acting_user=w.staff)),
    ("capacity", "confirm", lambda loc: waitlist_world(loc, batch_size=1),
     lambda w: do_set_capacity(w.queue, capacity=4),
     lambda w: do_confirm_waitlist(w.queue, acting_user=w.staff)),
    ("capacity", "offer", lambda loc: waitlist_world(loc, offer_seconds=600), _none,
     lambda w: do_set_capacity(w.queue, capacity=3, acting_user=w.staff)),
    ("capacity", "accept", lambda loc: waitlist_world(loc, offer_seconds=600),
     lambda w: do_set_capacity(w.queue, capacity=3), lambda w: do_accept_offer(_t(w, "t2"))),
    ("capacity", "decline", lambda loc: waitlist_world(loc, offer_seconds=600),
     lambda w: do_set_capacity(w.queue, capacity=3), lambda w: do_decline_offer(_t(w, "t2"))),
    ("capacity", "expire", lambda loc: waitlist_world(loc, offer_seconds=600),
     lambda w: do_set_capacity(w.queue, capacity=3), lambda w: do_expire_offers(now=_later())),
]


# --- the check -------------------------------------------------------------------------
def _first_paint(screen) -> dict[str, str]:
    response = screen.client().get(screen.page_url, follow=True)
    assert response.status_code == 200, (screen.name, response.status_code)
    found = fragments_of(response.content.decode(), screen.fragments)
    assert set(found) == set(screen.fragments), (screen.name, "page lacks", set(screen.fragments) - set(found))
    return found


async def _frames_until_quiet(comm) -> list[str]:
    # receive_nothing polls without cancelling the application (a timeout in
    # receive_from would end it).
    frames = []
    while not await comm.receive_nothing(timeout=QUIET):
        frames.append(await comm.receive_from(timeout=CONNECT_TIMEOUT))
    return frames


def _differences(label: str, shown: dict[str, str], truth: dict[str, str]) -> list[str]:
    problems = []
    for fragment in truth:
        if shown[fragment] != truth[fragment]:
            diff = "\n".join(difflib.unified_diff(
                truth[fragment].replace("><", ">\n<").splitlines(),
                shown[fragment].replace("><", ">\n<").splitlines(),
                "first paint", "live", lineterm="", n=1))
            problems.append(f"{label}, #{fragment}:\n{diff}")
    return problems


def verify_action(world: World, act) -> list[str]:
    """Run `act(world)` with every screen open; return every disagreement."""
    from config.asgi import application

    screens = screens_for(world)
    problems: list[str] = []

    async def scenario():
        async with AsyncExitStack() as stack:
            open_screens = []
            for screen in screens:
                before = await database_sync_to_async(_first_paint)(screen)
                headers = [ORIGIN, *(await database_sync_to_async(screen.cookie_header)())]
                comm = WebsocketCommunicator(application, screen.ws_path, headers=headers)
                connected, code = await comm.connect(timeout=CONNECT_TIMEOUT)
                assert connected, (screen.name, code)
                stack.push_async_callback(comm.disconnect)
                open_screens.append((screen, comm, before))
            for (screen, _, before), frames in zip(open_screens, await asyncio.gather(
                    *(_frames_until_quiet(comm) for _, comm, _ in open_screens))):
                shown = dict(before)
                for frame in frames:
                    apply_frame(shown, frame)
                problems.extend(_differences(f"{screen.name} on connect", shown, before))
            await database_sync_to_async(act)(world)
            shown = [dict(before) for _, _, before in open_screens]
            for state, frames in zip(shown, await asyncio.gather(
                    *(_frames_until_quiet(comm) for _, comm, _ in open_screens))):
                for frame in frames:
                    apply_frame(state, frame)
            after = [await database_sync_to_async(_first_paint)(screen) for screen, _, _ in open_screens]
            if any(state != truth for state, truth in zip(shown, after)):
                await asyncio.sleep(SETTLE)
                for state, frames in zip(shown, await asyncio.gather(
                        *(_frames_until_quiet(comm) for _, comm, _ in open_screens))):
                    for frame in frames:
                        apply_frame(state, frame)
            for (screen, _, _), state, truth in zip(open_screens, shown, after):
                problems.extend(_differences(screen.name, state, truth))
        await hub.close_current()

    async_to_sync(scenario)()
    return problems


@pytest.mark.parametrize(("kind", "action", "build", "prepare", "act"), CASES,
                         ids=[f"{kind}-{action.replace(' ', '-')}" for kind, action, *_ in CASES])
def test_first_paint_after_an_action_equals_the_pushed_updates(location, kind, action, build, prepare, act):
    world = build(location)
    prepare(world)
    problems = verify_action(world, act)
    assert not problems, f"{kind} queue, {action}:\n\n" + "\n\n".join(problems)


def test_the_check_sees_a_screen_that_was_not_told(location):
    """The harness itself: an action whose push is lost must be reported."""
    from queueapp import events

    world = counter_world(location)
    receivers, events._receivers[:] = list(events._receivers), []
    try:
        problems = verify_action(world, lambda w: do_call_next(w.queue, counter=w.counter))
    finally:
        events._receivers[:] = receivers
    assert any(p.startswith("ticket t1, #ticket-status") for p in problems)
    assert any(p.startswith("display, #display-board") for p in problems)
    assert any(p.startswith("console, #console-feed") for p in problems)
