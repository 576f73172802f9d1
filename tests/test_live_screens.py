"""Live screens over WebSockets against the real ASGI app.

The channel layer is whatever the settings say: the real Redis layer when
REDIS_URL is set (CI's second run), the in-memory layer otherwise. Consumers
read the database from other threads, hence `transaction=True`.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.test import Client

from queueapp import jobs
from queueapp.live import hub, publisher
from queueapp.models import Priority
from queueapp.services import do_call_next, do_complete, do_join, do_recall, do_transfer
from tests.conftest import make_counter, make_queue
from tests.live_helpers import ORIGIN, next_frame, screen, ticket_state, wait_for_ticket

pytestmark = pytest.mark.django_db(transaction=True)

call_next = database_sync_to_async(do_call_next)
complete = database_sync_to_async(do_complete)
join = database_sync_to_async(do_join)


def run(scenario):
    async def wrapped():
        try:
            await scenario()
        finally:
            await hub.close_current()

    async_to_sync(wrapped)()


async def serve_next(counter):
    """Call the next ticket to `counter` and complete it at once."""
    ticket = await call_next(counter=counter)
    await complete(ticket)
    return ticket


def test_ticket_screen_counts_down_then_says_which_counter(queue, counter):
    tokens = [do_join(queue).token for _ in range(3)]

    async def scenario():
        async with screen(f"/ws/ticket/{tokens[2]}/") as (comm, connected, _):
            assert connected
            first = ticket_state(await comm.receive_from(timeout=5))
            assert first == {"status": "waiting", "position": 3, "counter": None, "number": "A-003"}
            # A completion also moves the wait (a frame at the same place).
            await serve_next(counter)
            assert (await wait_for_ticket(comm, lambda s: s["position"] != 3))["position"] == 2
            await serve_next(counter)
            assert (await wait_for_ticket(comm, lambda s: s["position"] != 2))["position"] == 1
            await call_next(counter=counter)
            called = await wait_for_ticket(comm, lambda s: s["status"] == "called")
            assert called["counter"] == "Counter 1"

    run(scenario)


def test_position_counts_only_tickets_ahead(queue, counter):
    mine = do_join(queue).token

    async def scenario():
        async with screen(f"/ws/ticket/{mine}/") as (comm, connected, _):
            assert connected
            assert ticket_state(await comm.receive_from(timeout=5))["position"] == 1
            await join(queue)  # behind me: nothing to show
            await join(queue, priority=Priority.URGENT)  # ahead of me
            state = await wait_for_ticket(comm, lambda s: True)
            assert state["position"] == 2
            assert await comm.receive_nothing(timeout=0.3)

    run(scenario)


def test_recall_reaches_the_screen_with_its_call_count(queue, counter):
    token = do_join(queue).token

    async def scenario():
        async with screen(f"/ws/ticket/{token}/") as (comm, connected, _):
            assert connected
            await comm.receive_from(timeout=5)
            ticket = await call_next(counter=counter)
            first = await next_frame(comm, contains='data-status="called"')
            assert 'data-call-count="1"' in first
            await database_sync_to_async(do_recall)(ticket)
            again = await next_frame(comm, contains='data-call-count="2"')
            assert 'data-counter="Counter 1"' in again

    run(scenario)


def test_screen_that_missed_three_calls_is_right_after_reconnecting(queue, counter):
    tokens = [do_join(queue).token for _ in range(5)]

    async def scenario():
        async with screen(f"/ws/ticket/{tokens[4]}/") as (comm, connected, _):
            assert connected
            assert ticket_state(await comm.receive_from(timeout=5))["position"] == 5
        for _ in range(3):  # while the phone is in a pocket
            await serve_next(counter)
        async with screen(f"/ws/ticket/{tokens[4]}/") as (comm, connected, _):
            assert connected
            assert ticket_state(await comm.receive_from(timeout=5))["position"] == 2

    run(scenario)


class _Dropping:
    """A publisher that loses every message (as a crash right after commit would)."""

    def publish(self, message):
        pass


def test_a_lost_message_is_repaired_by_the_tick(queue, counter):
    tokens = [do_join(queue).token for _ in range(3)]

    async def scenario():
        async with screen(f"/ws/ticket/{tokens[2]}/") as (comm, connected, _):
            assert connected
            assert ticket_state(await comm.receive_from(timeout=5))["position"] == 3
            real = publisher.use(_Dropping())
            try:
                await serve_next(counter)
            finally:
                publisher.use(real)
            assert await comm.receive_nothing(timeout=0.5)  # the screen is behind
            await database_sync_to_async(jobs.publish_queue_ticks)()
            assert (await wait_for_ticket(comm, lambda s: True))["position"] == 2

    run(scenario)


def test_screen_follows_a_transfer_to_the_new_ticket(location, queue, counter):
    lab = make_queue(location, "Lab", "L")
    do_join(lab)
    token = do_join(queue).token

    async def scenario():
        async with screen(f"/ws/ticket/{token}/") as (comm, connected, _):
            assert connected
            await comm.receive_from(timeout=5)
            await database_sync_to_async(do_transfer)(
                await database_sync_to_async(lambda: queue.tickets.get(token=token).pk)(), to_queue=lab)
            moved = await wait_for_ticket(comm, lambda s: s["number"] == "L-002")
            assert moved["status"] == "waiting" and moved["position"] == 2
            lab_counter = await database_sync_to_async(make_counter)(location, "Lab desk", [lab])
            await serve_next(lab_counter)  # the screen now listens to the lab's line
            assert (await wait_for_ticket(comm, lambda s: True))["position"] == 1

    run(scenario)


def test_a_called_ticket_transferred_shows_its_next_call_in_the_new_queue(location, queue, counter):
    """A call is shown from its own message, and an older message about the
    ticket never replaces a newer one (`TicketConsumer._own_news`); versions
    are per queue, so after a transfer the old queue's call must not hide the
    new queue's (whose versions are lower here)."""
    lab = make_queue(location, "Lab", "L")
    token = do_join(queue).token
    for _ in range(5):
        do_join(queue)  # (the old queue's versions run ahead of the lab's)

    async def scenario():
        async with screen(f"/ws/ticket/{token}/") as (comm, connected, _):
            assert connected
            await comm.receive_from(timeout=5)
            called = await call_next(counter=counter)
            assert (await wait_for_ticket(comm, lambda s: s["status"] == "called"))["counter"] == counter.name
            await database_sync_to_async(do_transfer)(called.pk, to_queue=lab)
            moved = await wait_for_ticket(comm, lambda s: s["number"] == "L-001")
            assert moved["status"] == "waiting"
            lab_counter = await database_sync_to_async(make_counter)(location, "Lab desk", [lab])
            await call_next(counter=lab_counter)
            state = await wait_for_ticket(comm, lambda s: s["status"] == "called")
            assert (state["number"], state["counter"]) == ("L-001", "Lab desk")

    run(scenario)


def test_unknown_ticket_is_refused(db):
    async def scenario():
        async with screen("/ws/ticket/AAAAAAAAAAAAAAAAAAAAAA/") as (comm, connected, _):
            assert connected  # accepted at once, refused with a code once looked up
            assert (await comm.receive_output(timeout=5))["code"] == 4404

    run(scenario)


def test_foreign_origin_is_refused(queue):
    token = do_join(queue).token

    async def scenario():
        async with screen(f"/ws/ticket/{token}/", headers=[(b"origin", b"https://evil.example")]) as (
                _, connected, _code):
            assert not connected
        async with screen(f"/ws/ticket/{token}/", headers=[]) as (_, connected, _code):
            assert not connected  # no Origin at all: not a browser on our site

    run(scenario)


def test_garbage_input_is_ignored_or_closes_cleanly(queue):
    token = do_join(queue).token

    async def scenario():
        async with screen(f"/ws/ticket/{token}/") as (comm, connected, _):
            assert connected
            await comm.receive_from(timeout=5)
            for junk in ("not json", "[1, 2]", '{"type": 7}', '{"body": "x"}', "{}", "\u0000\ufffd"):
                await comm.send_to(text_data=junk)
            assert await comm.receive_nothing(timeout=0.3)  # still open, nothing broke
            await comm.send_to(text_data='{"type": "refresh"}')
            assert ticket_state(await comm.receive_from(timeout=5))["position"] == 1
            await comm.send_to(text_data="x" * 10_000)
            assert (await comm.receive_output(timeout=5))["code"] == 4009
        async with screen(f"/ws/ticket/{token}/") as (comm, connected, _):
            await comm.receive_from(timeout=5)
            await comm.send_to(bytes_data=b"\x00\x01")
            assert (await comm.receive_output(timeout=5))["code"] == 4003
        async with screen(f"/ws/ticket/{token}/") as (comm, connected, _):
            await comm.receive_from(timeout=5)
            for _ in range(25):
                await comm.send_to(text_data="{}")
            assert (await comm.receive_output(timeout=5))["code"] == 4008

    run(scenario)


def test_display_shows_the_board_and_announces_each_call(location, queue, counter):
    do_join(queue)
    do_join(queue)

    async def scenario():
        async with screen(f"/ws/display/{location.slug}/") as (comm, connected, _):
            assert connected
            board = await next_frame(comm, contains='id="display-board"')
            assert "Counter 1" in board and "<strong>2</strong>" in board
            ticket = await call_next(counter=counter)
            announce = await next_frame(comm, contains='id="display-announce"')
            assert 'data-number="A-001"' in announce and 'data-counter="Counter 1"' in announce
            assert 'data-kind="called"' in announce and 'data-key="%d.3"' % queue.pk in announce
            board = await next_frame(comm, contains='id="display-board"')
            assert "A-001" in board and "<strong>1</strong>" in board
            await database_sync_to_async(do_recall)(ticket)
            again = await next_frame(comm, contains='id="display-announce"')
            assert 'data-kind="recalled"' in again and 'data-key="%d.4"' % queue.pk in again

    run(scenario)


def test_display_lists_a_recalled_ticket_once_and_drops_a_transferred_call_from_the_banner(
        location, queue, counter):
    lab = make_queue(location, "Lab", "L")
    do_join(queue)
    do_join(queue)

    async def scenario():
        async with screen(f"/ws/display/{location.slug}/") as (comm, connected, _):
            assert connected
            await next_frame(comm, contains='id="display-board"')
            first = await call_next(counter=counter)
            await database_sync_to_async(do_recall)(first)
            board = await next_frame(comm, contains='class="recalled"')
            assert re.findall(r'<li[^>]*><span class="ticket-number">([^<]+)<', board) == ["A-001"]
            await complete(first)
            second = await call_next(counter=counter)
            await database_sync_to_async(do_transfer)(second, to_queue=lab)
            frame = await next_frame(comm, contains='data-key=""')
            # The banner is empty; the board no longer has A-002 at the counter.
            assert 'id="display-announce"' in frame and 'data-number=""' in frame

    run(scenario)


def test_unknown_display_is_refused(db):
    async def scenario():
        async with screen("/ws/display/nowhere/") as (comm, connected, _):
            assert connected
            assert (await comm.receive_output(timeout=5))["code"] == 4404

    run(scenario)


def _session_cookie(user) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


def test_console_feed_refuses_anonymous_and_other_locations(counter, other_staff):
    cookie = _session_cookie(other_staff)

    async def scenario():
        for path, headers, code in ((f"/ws/console/{counter.pk}/", [ORIGIN], 4401),
                                    (f"/ws/console/{counter.pk}/", [ORIGIN, cookie], 4403),
                                    ("/ws/console/999999/", [ORIGIN, cookie], 4404)):
            async with screen(path, headers=headers) as (comm, connected, _):
                assert connected
                assert (await comm.receive_output(timeout=5))["code"] == code

    run(scenario)


def test_console_feed_lists_the_waiting_line_live(queue, counter, staff):
    do_join(queue)
    cookie = _session_cookie(staff)

    async def scenario():
        async with screen(f"/ws/console/{counter.pk}/", headers=[ORIGIN, cookie]) as (comm, connected, _):
            assert connected
            feed = await next_frame(comm, contains='id="console-feed"')
            assert "A-001" in feed and "1 waiting" in feed
            await join(queue, priority=Priority.URGENT)
            feed = await next_frame(comm, contains="2 waiting")
            assert feed.index("A-002") < feed.index("A-001")  # urgent first
            await call_next(counter=counter)
            feed = await next_frame(comm, contains="1 waiting")
            assert "Counter 1: A-002 (Called)" in feed

    run(scenario)


def test_many_screens_of_one_queue_all_follow(queue, counter):
    tokens = [do_join(queue).token for _ in range(12)]

    async def scenario():
        from contextlib import AsyncExitStack

        async with AsyncExitStack() as stack:
            comms = []
            for token in tokens[1:]:
                comm, connected, _ = await stack.enter_async_context(screen(f"/ws/ticket/{token}/"))
                assert connected
                await comm.receive_from(timeout=5)
                comms.append(comm)
            await call_next(counter=counter)
            states = await asyncio.gather(*(wait_for_ticket(c, lambda s: True) for c in comms))
            assert [s["position"] for s in states] == list(range(1, 12))

    run(scenario)


def test_screens_connecting_while_calls_happen_end_up_right(queue, counter):
    tokens = [do_join(queue).token for _ in range(16)]

    async def last_position(comm) -> int | None:
        state = None
        while not await comm.receive_nothing(timeout=1.0):  # (a timed-out receive_from kills the app)
            state = ticket_state(await comm.receive_from(timeout=5))
        return state and state["position"]

    async def scenario():
        from config.asgi import application
        from channels.testing import WebsocketCommunicator

        comms = [WebsocketCommunicator(application, f"/ws/ticket/{t}/", headers=[ORIGIN]) for t in tokens[4:]]
        try:
            calls = asyncio.ensure_future(serve_next(counter))
            connected = await asyncio.gather(*(c.connect(timeout=5) for c in comms))
            assert all(ok for ok, _ in connected)
            await calls
            await serve_next(counter)
            await serve_next(counter)
            positions = await asyncio.gather(*(last_position(c) for c in comms))
            assert positions == list(range(2, 14))
        finally:
            for c in comms:
                await c.disconnect()

    run(scenario)


def test_an_offer_on_a_waitlist_shows_its_accept_and_decline_forms(location):
    from queueapp.services import do_decline_offer

    seats = make_queue(location, "Evening train", "T", kind="capacity", capacity=1, offer_seconds=600)
    first = do_join(seats)
    second = do_join(seats)

    async def scenario():
        async with screen(f"/ws/ticket/{second.token}/") as (comm, connected, _):
            assert connected
            assert ticket_state(await comm.receive_from(timeout=5))["status"] == "waiting"
            await database_sync_to_async(do_decline_offer)(first)
            offered = await next_frame(comm, contains='data-status="offered"')
            assert 'id="offer-actions"' in offered and f"/t/{second.token}/accept" in offered

    run(scenario)


def test_two_screens_of_one_ticket_opened_together_both_follow(queue, counter):
    """A phone and a laptop on the same ticket, connecting in the same burst: the
    hub's batched lookup answers both with one read, and each screen must still
    keep its own view (one shared view would take each event once, for one screen)."""
    do_join(queue)
    token = do_join(queue).token

    async def scenario():
        from config.asgi import application
        from channels.testing import WebsocketCommunicator

        comms = [WebsocketCommunicator(application, f"/ws/ticket/{token}/", headers=[ORIGIN]) for _ in range(2)]
        try:
            results = await asyncio.gather(*(c.connect(timeout=5) for c in comms))
            assert all(connected for connected, _ in results)
            for comm in comms:
                assert (await wait_for_ticket(comm, lambda s: True))["position"] == 2
            await join(queue, priority=Priority.URGENT)
            for comm in comms:
                assert (await wait_for_ticket(comm, lambda s: True))["position"] == 3
            await serve_next(counter)
            for comm in comms:
                assert (await wait_for_ticket(comm, lambda s: s["position"] == 2))["position"] == 2
        finally:
            for comm in comms:
                await comm.disconnect()

    run(scenario)
