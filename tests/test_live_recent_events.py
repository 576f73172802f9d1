"""A screen behind catches up from the queue messages its server already
received (`Hub.recent_after`), not from the database: under a crowd the one
database thread answered a catch-up seconds late, the events arriving meanwhile
put the page behind again, and waiting-room pages showed an old place after
their admission. What the hub never received (a lost push) still comes from
the database.

Over the real ASGI app (in-process sockets), on either channel layer: the
queue's messages are recorded as they are published and handed to the hub in
the order two server processes can deliver them (one late).
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from queueapp.live import hub, publisher, reads
from queueapp.services import do_call_next, do_complete, do_join
from tests.live_helpers import screen, wait_for_ticket
from tests.test_live_room_batch import _Recording, close_pages, open_pages, published_by, recorded, right_states

pytestmark = pytest.mark.django_db(transaction=True)


def serve_three(counter):
    for _ in range(3):
        do_complete(do_call_next(counter=counter))


@pytest.mark.parametrize("lost", [False, True], ids=["one late", "one lost"])
def test_a_screen_behind_catches_up_from_what_its_server_received(queue, counter, monkeypatch, lost):
    tokens = [do_join(queue).token for _ in range(5)]
    monkeypatch.setattr(hub, "YIELD_EVERY", 60.0)  # the hand-outs below run without a loop turn between them
    database_reads = []
    real_read = reads.event_messages

    def recorded_read(queue_id, after_version):
        database_reads.append(after_version)
        return real_read(queue_id, after_version)

    monkeypatch.setattr(reads, "event_messages", recorded_read)

    async def scenario():
        the_hub = hub.Hub.current()
        async with screen(f"/ws/ticket/{tokens[4]}/") as (comm, connected, _):
            assert connected
            first = await wait_for_ticket(comm, lambda s: True)
            assert first["position"] == 5
            recording = _Recording()
            real = publisher.use(recording)
            try:
                await database_sync_to_async(serve_three)(counter)
            finally:
                publisher.use(real)
            messages = sorted((m for m in recording.messages if m.get("queue") == queue.pk),
                              key=lambda m: m["version"])
            assert len(messages) >= 6  # three calls, three completions
            # The first arrives after its successors (another process's commit,
            # or lost): the screen sees a gap and asks to catch up.
            late, rest = messages[0], messages[1:]
            for message in rest + ([] if lost else [late]):
                await the_hub.dispatch(message)
            state = await wait_for_ticket(comm, lambda s: s["position"] == 2)
            assert state["status"] == "waiting"

    try:
        async_to_sync(scenario)()
    finally:
        async_to_sync(hub.close_current)()
    if lost:
        assert database_reads, "the screen caught up without the event its server never received"
    else:
        assert database_reads == [], "the screen read from the database what its server had received"


def test_the_hub_keeps_a_bounded_run_of_each_queues_events(monkeypatch):
    monkeypatch.setattr(hub, "RECENT_KEEP", 10)

    async def scenario():
        the_hub = hub.Hub.current()
        try:
            for version in range(1, 101):
                await the_hub.dispatch({"type": "queue.event", "queue": 7, "version": version})
            await the_hub.dispatch({"type": "queue.tick", "queue": 7, "version": 101})
            kept = set(the_hub._recent[7])
            after_95 = the_hub.recent_after(7, 95)
            await the_hub.dispatch({"type": "queue.event", "queue": 7, "version": 101})
            return kept, after_95, the_hub.recent_after(7, 95), the_hub.recent_after(7, 50)
        finally:
            await hub.close_current()

    kept, after_tick, after_event, too_far = async_to_sync(scenario)()
    assert len(kept) <= 20 and set(range(91, 101)) <= kept  # the newest RECENT_KEEP at least, never unbounded
    assert after_tick is None  # version 101 announced only by a tick: the database has it
    assert [m["version"] for m in after_event] == list(range(96, 102))
    assert too_far is None  # more missed than kept: the database (or a snapshot)


def database_never_answers(the_hub) -> list[int]:
    """Make `the_hub`'s catch-up reads wait forever (a database thread far
    behind); the versions asked for are recorded in the list returned."""
    asked: list[int] = []

    async def never(queue_id, version):
        asked.append(version)
        await asyncio.sleep(3600)

    the_hub.events_after = never
    return asked


async def release_admit_and_two_arrive(room, inside, waiting) -> tuple[list[dict], dict]:
    """`inside` leaves the room (which admits `waiting`), two arrive: the
    messages published, in version order, and the admission's."""
    from queueapp.services.rooms import do_enter_line, do_release_visitor

    def moves():
        do_release_visitor(room, inside.pk, outcome="done")
        for _ in range(2):
            do_enter_line(room.pk)

    messages = await published_by(moves, room.queue_id)
    return messages, next(m for m in messages if (m.get("ticket") or {}).get("id") == waiting.pk)


def test_a_room_page_behind_shows_its_late_admission_while_the_database_is_slow(location, settings, monkeypatch):
    """The crowd's case (bench/waiting_room.py, sessions 9 and 10): a room's
    events reach a server out of order, the pages meet a gap, the admission of
    one of them arrives after its successors went out, and the database answers
    catch-ups late (here: never within the test). The admitted page shows
    "admitted" from what its server received, and every other page its right
    place, without waiting for the database."""
    from queueapp.live import consumers
    from queueapp.models import TicketStatus
    from queueapp.services.rooms import do_enter_line
    from tests.test_waiting_room import make_room

    settings.LIVE_ROOM_UPDATE_EVERY = 0.2
    monkeypatch.setattr(consumers, "GAP_GRACE", 0.3)
    room = make_room(location, rate=600_000, inside=2)
    inside = [do_enter_line(room) for _ in range(2)]
    waiting = [do_enter_line(room) for _ in range(4)]

    async def scenario():
        the_hub = hub.Hub.current()
        database_asked = database_never_answers(the_hub)
        screens, comms = await open_pages(waiting)
        try:
            messages, admission = await release_admit_and_two_arrive(room, inside[0], waiting[0])
            assert admission is not messages[-1]
            for message in messages:
                if message is not admission:
                    await the_hub.dispatch(message)
            await asyncio.sleep(0.7)  # its successors went out to the pages (held one batch period, then sent)
            await the_hub.dispatch(admission)
            return await right_states(comms, waiting, timeout=4), database_asked
        finally:
            await close_pages(screens, comms)
            await hub.close_current()

    states, database_asked = async_to_sync(scenario)()
    assert states == [(TicketStatus.CONFIRMED, None)] + [(TicketStatus.WAITING, n) for n in range(1, 4)]
    assert database_asked == [], "a page waited for the database for what its server had received"


def count_line_reads(monkeypatch) -> list[int]:
    """The queues whose waiting line is read from the database from now on
    (call it before the hub is made: the hub keeps the function it found)."""
    line_reads: list[int] = []
    real_line = reads.waiting_line

    def counted_line(queue_id, previous=None):
        line_reads.append(queue_id)
        return real_line(queue_id, previous)

    monkeypatch.setattr(reads, "waiting_line", counted_line)
    return line_reads


def test_a_screen_connecting_after_the_line_moved_reads_no_line(queue, counter, monkeypatch):
    """The queue's waiting line, shared by connecting screens, is brought up to
    the newest version from the events the server received (`Hub._advance_line`),
    not read again: under a crowd every connecting page needed a newer line,
    and reading thousands of waiting keys back to back took a fifth of a
    server's samples. The new screen's place is right all the same."""
    line_reads = count_line_reads(monkeypatch)
    first = do_join(queue)

    def moves():
        do_join(queue)
        do_complete(do_call_next(counter=counter))  # the first leaves the line
        return [do_join(queue) for _ in range(2)]

    async def scenario():
        the_hub = hub.Hub.current()
        async with screen(f"/ws/ticket/{first.token}/") as (comm, connected, _):
            assert connected
            assert (await wait_for_ticket(comm, lambda s: True))["position"] == 1
            assert line_reads == [queue.pk]
            joined = []
            for message in await published_by(lambda: joined.extend(moves()), queue.pk):
                await the_hub.dispatch(message)
            async with screen(f"/ws/ticket/{joined[-1].token}/") as (late, connected, _):
                assert connected
                state = await wait_for_ticket(late, lambda s: True)
        await hub.close_current()
        return state

    state = async_to_sync(scenario)()
    assert (state["status"], state["position"]) == ("waiting", 3)
    assert line_reads == [queue.pk], "the connecting screen read the waiting line again"


def test_a_line_brought_forward_from_events_equals_the_line_read_afresh(queue, counter, location):
    """`WaitingLine.advanced` over the events of every kind of move (joins at
    three priorities, calls, a no-show sent to the back, a cancel, transfers
    out and in at the front) gives the keys, instants, counters and service
    time that reading the line gives."""
    from queueapp.models import Priority, Queue
    from queueapp.services import do_cancel, do_no_show, do_transfer

    other = Queue.objects.create(location=location, name="Other", slug="other", prefix="O")
    counter.queues.add(other)
    for priority in (Priority.NORMAL, Priority.HIGH, Priority.NORMAL, Priority.URGENT, Priority.NORMAL):
        do_join(queue, priority=priority)
    elsewhere = do_join(other)
    _versions, before = reads.waiting_line(queue.pk)

    def moves():
        called = do_call_next(queue, counter=counter)
        do_no_show(called)  # back of the line
        do_complete(do_call_next(queue, counter=counter))
        do_join(queue, priority=Priority.HIGH)
        do_cancel(reads.waiting_tickets(queue.pk).last(), by_patient=True)
        do_transfer(reads.waiting_tickets(queue.pk).first(), to_queue=other)
        do_transfer(elsewhere, to_queue=queue, to_front=True)
        do_join(queue)

    messages = recorded(moves, queue.pk)
    assert len(messages) >= 8
    advanced = before.advanced(messages)
    _versions, afresh = reads.waiting_line(queue.pk)
    assert advanced is not None
    assert (advanced.keys, advanced.entered) == (afresh.keys, afresh.entered)
    assert (advanced.open_counters, advanced.service_seconds) == (afresh.open_counters, afresh.service_seconds)
    assert before.advanced([{"left": [0, 10_000]}]) is None  # a key that is not in the line: read it instead


def test_a_screen_connecting_while_an_event_is_on_its_way_waits_for_it_not_for_a_read(queue, monkeypatch):
    """Under a crowd a page connects right after its arrival committed, and the
    server has not yet received every event before it (another process
    published them): the page's ticket is not in the line the hub holds. It
    waits for the event to arrive (up to GAP_GRACE) instead of reading the
    line, and its first frame shows its place after every event before it."""
    line_reads = count_line_reads(monkeypatch)
    first = do_join(queue)

    async def scenario():
        the_hub = hub.Hub.current()
        async with screen(f"/ws/ticket/{first.token}/") as (comm, connected, _):
            assert connected
            await wait_for_ticket(comm, lambda s: True)
            messages = await published_by(lambda: [do_join(queue) for _ in range(3)], queue.pk)
            on_its_way = messages[1]
            for message in messages:
                if message is not on_its_way:
                    await the_hub.dispatch(message)
            newest = await database_sync_to_async(lambda: queue.tickets.order_by("-seq").first())()

            async def connect_late():
                async with screen(f"/ws/ticket/{newest.token}/") as (late, connected, _):
                    assert connected
                    return await wait_for_ticket(late, lambda s: True)

            late_screen = asyncio.ensure_future(connect_late())
            await asyncio.sleep(0.3)
            await the_hub.dispatch(on_its_way)
            state = await late_screen
        await hub.close_current()
        return state

    state = async_to_sync(scenario)()
    assert (state["status"], state["position"]) == ("waiting", 4)
    assert line_reads == [queue.pk], "the connecting screen read the waiting line again"


def test_a_room_page_stuck_behind_a_lost_event_shows_its_late_admission(location, settings, monkeypatch):
    """The page is behind an event its server never received (the database,
    which has it, does not answer here), and its own admission reaches the
    server after the events that follow it went out: the hub still hands the
    late message out (`Hub._in_order` keeps it in the next batch), and the page
    shows its admission at once (`_own_news`), not after its gap is filled."""
    from queueapp.models import TicketStatus
    from queueapp.services.rooms import do_enter_line
    from tests.test_waiting_room import make_room

    settings.LIVE_ROOM_UPDATE_EVERY = 0.2
    room = make_room(location, rate=600_000, inside=2)
    inside = [do_enter_line(room) for _ in range(2)]
    waiting = [do_enter_line(room) for _ in range(3)]

    async def scenario():
        the_hub = hub.Hub.current()
        database_never_answers(the_hub)
        screens, comms = await open_pages(waiting[:1])
        try:
            messages, admission = await release_admit_and_two_arrive(room, inside[0], waiting[0])
            lost = messages[0]
            assert lost is not admission and admission is not messages[-1]
            for message in messages:
                if message is not lost and message is not admission:
                    await the_hub.dispatch(message)
            await asyncio.sleep(0.6)  # the events after the admission went out (held one period, then sent)
            await the_hub.dispatch(admission)
            state = await wait_for_ticket(comms[0], lambda s: s["status"] != TicketStatus.WAITING, timeout=3)
            return state["status"]
        finally:
            await close_pages(screens, comms)
            await hub.close_current()

    assert async_to_sync(scenario)() == TicketStatus.CONFIRMED


def test_a_screen_behind_for_long_is_logged_with_what_it_waits_on(queue, counter, monkeypatch):
    """A page still behind after `BEHIND_WARN` shows an old state: the server
    says so once, with its versions and how long its reads took, even while
    the read it waits on has not come back (no personal data: the ticket's id)."""
    from queueapp.live import consumers

    monkeypatch.setattr(consumers, "BEHIND_WARN", 0.5)
    monkeypatch.setattr(consumers, "GAP_GRACE", 0.1)
    tokens = [do_join(queue).token for _ in range(5)]

    async def scenario():
        the_hub = hub.Hub.current()
        database_never_answers(the_hub)
        async with screen(f"/ws/ticket/{tokens[4]}/") as (comm, connected, _):
            assert connected
            await wait_for_ticket(comm, lambda s: True)
            messages = await published_by(lambda: serve_three(counter), queue.pk)
            for message in messages[1:]:  # the first never reaches this server
                await the_hub.dispatch(message)
            await asyncio.sleep(1.0)
        await hub.close_current()

    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("queueapp.live.consumers")
    logger.addHandler(handler)
    try:
        async_to_sync(scenario)()
    finally:
        logger.removeHandler(handler)
    behind = [r.getMessage() for r in records if "behind for" in r.getMessage()]
    assert len(behind) == 1, behind
    ticket = queue.tickets.get(token=tokens[4])
    assert f"ticket {ticket.pk} (waiting)" in behind[0] and "newest seen v" in behind[0]
