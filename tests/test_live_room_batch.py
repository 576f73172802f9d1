"""A waiting room's batch of events on its open pages (queueapp/live/batch.py,
`Hub._in_order`): events that reach a server out of version order (two
processes publish them, each as its commits end) are put back in order and
applied to every page as one batch, without a catch-up read from the
database, and every page ends on its right place.

Over the real ASGI app (in-process sockets), on either channel layer: the
room's events are recorded as they are published and handed to the hub in a
shuffled order, as a crowd's were.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from queueapp.live import consumers, hub, publisher
from queueapp.models import TicketStatus
from queueapp.selectors import position_of
from queueapp.services.rooms import do_enter_line, do_release_visitor
from tests.live_helpers import screen, wait_for_ticket
from tests.test_waiting_room import make_room

pytestmark = pytest.mark.django_db(transaction=True)

INSIDE, WAITING = 3, 6


class _Recording:
    """A publisher that keeps the messages instead of sending them."""

    def __init__(self):
        self.messages: list[dict] = []

    def publish(self, message):
        self.messages.append(message)


def recorded(action, queue_id: int) -> list[dict]:
    """The messages about `queue_id` that `action()` publishes, in version
    order, recorded instead of sent."""
    recording = _Recording()
    real = publisher.use(recording)
    try:
        action()
    finally:
        publisher.use(real)
    return sorted((m for m in recording.messages if m.get("queue") == queue_id), key=lambda m: m["version"])


async def published_by(action, queue_id: int) -> list[dict]:
    """`recorded`, with `action` run in the database thread."""
    return await database_sync_to_async(recorded)(action, queue_id)


async def open_pages(tickets) -> tuple[list, list]:
    """A connected screen per ticket, each past its first paint: (context managers, communicators)."""
    screens = [screen(f"/ws/ticket/{t.token}/") for t in tickets]
    comms = []
    try:
        for cm in screens:
            comm, connected, _ = await cm.__aenter__()
            assert connected
            comms.append(comm)
            await comm.receive_from(timeout=5)  # its first paint
    except BaseException:
        await close_pages(screens, comms)
        raise
    return screens, comms


async def close_pages(screens, comms) -> None:
    for cm in screens[:len(comms)]:
        await cm.__aexit__(None, None, None)


async def right_states(comms, tickets, *, timeout: float = 8.0) -> list[tuple]:
    """(status, place) each page shows once it shows what the database says of its ticket."""
    states = []
    for comm, ticket in zip(comms, tickets):
        await database_sync_to_async(ticket.refresh_from_db)()
        want = (ticket.status, None if ticket.status != TicketStatus.WAITING
                else await database_sync_to_async(position_of)(ticket))
        state = await wait_for_ticket(comm, lambda s, want=want: (s["status"], s["position"]) == want,
                                      timeout=timeout)
        states.append((state["status"], state["position"]))
    return states


@pytest.fixture
def room(location):
    return make_room(location, rate=600_000, inside=INSIDE)  # the places inside decide, not the rate


def test_events_out_of_order_reach_every_page_in_one_batch_without_a_catch_up_read(room, settings):
    settings.LIVE_ROOM_UPDATE_EVERY = 0.3
    inside = [do_enter_line(room) for _ in range(INSIDE)]
    waiting = [do_enter_line(room) for _ in range(WAITING)]
    assert all(t.status == TicketStatus.CONFIRMED for t in inside)

    async def scenario():
        the_hub = hub.Hub.current()
        reads = []
        real_events_after = the_hub.events_after

        async def counted(queue_id, version):
            reads.append((queue_id, version))
            return await real_events_after(queue_id, version)

        the_hub.events_after = counted
        screens, comms = await open_pages(waiting)
        try:
            recording = _Recording()
            real = publisher.use(recording)
            try:
                # Two leave (each release admits the next), two arrive behind everyone.
                for ticket in inside[:2]:
                    await database_sync_to_async(do_release_visitor)(room, ticket.pk, outcome="done")
                for _ in range(2):
                    await database_sync_to_async(do_enter_line)(room.pk)
            finally:
                publisher.use(real)
            messages = [m for m in recording.messages if m.get("queue") == room.queue_id]
            assert len(messages) >= 6  # 2 releases, 2 admissions, 2 arrivals
            shuffled = list(messages)
            while shuffled == messages:
                random.Random(7).shuffle(shuffled)
            for message in shuffled:
                await the_hub.dispatch(message)
            states = await right_states(comms, waiting)
            assert states == [(TicketStatus.CONFIRMED, None)] * 2 + [
                (TicketStatus.WAITING, n) for n in range(1, WAITING - 1)]
            assert reads == [], "a page caught up from the database"
        finally:
            await close_pages(screens, comms)
            await hub.close_current()

    async_to_sync(scenario)()


@pytest.mark.parametrize("lost", [False, True], ids=["tick covered", "event lost"])
def test_the_workers_tick_sends_no_page_to_the_database_unless_an_event_was_lost(room, settings, monkeypatch, lost):
    """The worker's tick (the queue's version every few seconds) nearly always
    names versions still on their way under a crowd: a tick no later than what
    the pages were handed is dropped (no catch-up read: the pages miss
    nothing), one naming a version that never comes goes to the pages after
    `hub.ROOM_TICK_GRACE` and they read what they missed."""
    settings.LIVE_ROOM_UPDATE_EVERY = 0.2
    monkeypatch.setattr(hub, "ROOM_TICK_GRACE", 0.6)
    monkeypatch.setattr(consumers, "GAP_GRACE", 0.2)  # (a missing version: the database after this)
    inside = [do_enter_line(room) for _ in range(INSIDE)]
    waiting = [do_enter_line(room) for _ in range(WAITING)]

    async def scenario():
        the_hub = hub.Hub.current()
        reads = []
        real_events_after = the_hub.events_after

        async def counted(queue_id, version):
            reads.append((queue_id, version))
            return await real_events_after(queue_id, version)

        the_hub.events_after = counted
        screens, comms = await open_pages(waiting)
        try:
            def release_and_arrive():
                do_release_visitor(room, inside[0].pk, outcome="done")
                do_enter_line(room.pk)

            messages = await published_by(release_and_arrive, room.queue_id)
            tick = {"type": "queue.tick", "queue": room.queue_id, "version": messages[-1]["version"]}
            if lost:
                messages = messages[:-1]  # the arrival's event never reaches this process
            # The tick first, as when the other process's commits are still on their way.
            for message in [tick, *messages]:
                await the_hub.dispatch(message)
            states = await right_states(comms, waiting)
            await asyncio.sleep(1.0)  # the tick's grace and a batch more
            return states, reads
        finally:
            await close_pages(screens, comms)
            await hub.close_current()

    states, reads = async_to_sync(scenario)()
    assert states == [(TicketStatus.CONFIRMED, None)] + [(TicketStatus.WAITING, n) for n in range(1, WAITING)]
    if lost:
        assert reads, "the tick of a lost event made no page read what it missed"
    else:
        assert reads == [], "a tick the pages were already past sent them to the database"
