"""What an open screen holds under daphne (queueapp/live/server_tuning.py:
lean_websocket_connections; LiveConsumer's receive loop): one task, no
asyncio.Queue, no handshake leftovers; over real sockets (tests/lean_asgi.py
reports from inside the server). And the smaller input queue's own rules."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from websockets.asyncio.client import connect

from queueapp.live.server_tuning import InputQueue
from queueapp.services import do_call_next, do_join
from tests.browser_support import database_url_for, run_daphne

APP = "tests.lean_asgi:application"
POSITION_MARK = 'class="position-number">'
NEXT_MARK = "You are <strong>next</strong>"


def test_input_queue_gives_messages_in_order_and_waits_for_the_next():
    async def scenario():
        queue = InputQueue()
        queue.put_nowait(1)
        queue.put_nowait(2)
        assert queue.qsize() == 2
        assert [await queue.get(), await queue.get()] == [1, 2]
        assert queue.empty()
        waiting = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        assert not waiting.done()
        queue.put_nowait(3)
        queue.put_nowait(4)
        assert await waiting == 3
        assert await queue.get() == 4

    asyncio.run(scenario())


def test_a_cancelled_get_loses_no_message():
    async def scenario():
        queue = InputQueue()
        waiting = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        queue.put_nowait("connect")
        waiting.cancel()  # cancelled after it was woken, before it ran
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert await queue.get() == "connect"

    asyncio.run(scenario())


def held(server) -> dict:
    with urllib.request.urlopen(f"{server.url}/held/", timeout=10) as answer:
        return json.loads(answer.read())


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_each_more_open_screen_holds_one_task_and_no_handshake(queue, counter):
    """Eight more open ticket screens cost the server eight tasks (Channels'
    consumer loop would run a second, the `receive`, for each), no
    `asyncio.Queue` as its input queue, and keep nothing of their handshake (the Twisted request
    that carried the upgrade, autobahn's raw bytes and header dict, autobahn's
    options copied into each connection). They still show, and follow, the
    right places."""
    tokens = [do_join(queue).token for _ in range(17)]

    async def open_screens(server, some):
        screens = [await connect(f"{server.ws_url}/ws/ticket/{t}/", origin=server.url, open_timeout=10,
                                 ping_interval=None) for t in some]
        for ws, token in zip(screens, some):
            place = tokens.index(token) + 1
            assert f"{POSITION_MARK}{place}<" in await ws.recv()
        return screens

    async def scenario(server):
        first = await open_screens(server, tokens[1:9])
        before = await asyncio.to_thread(held, server)
        more = await open_screens(server, tokens[9:])
        after = await asyncio.to_thread(held, server)
        assert after["open"] - before["open"] == 8
        assert after["tasks"] - before["tasks"] == 8
        assert (after["asyncio_input_queues"], after["upgraded_http_requests"], after["with_handshake"],
                after["with_options_copied"]) == (0, 0, 0, 0)
        await follow_a_call(first + more, counter)

    on_daphne(scenario)


async def follow_a_call(screens, counter) -> None:
    """Staff call the first ticket; `screens` (the 2nd, 3rd, ... in line) each
    show their place one nearer; then they close."""
    await asyncio.to_thread(do_call_next, counter=counter)
    async with asyncio.timeout(20):
        for place, ws in enumerate(screens, start=2):
            shows = NEXT_MARK if place == 2 else f"{POSITION_MARK}{place - 1}<"
            while shows not in await ws.recv():
                pass
    for ws in screens:
        await ws.close()


def on_daphne(scenario) -> None:
    """Run `scenario(server)` against daphne serving tests/lean_asgi.py; its log printed on failure."""
    with run_daphne(database_url_for(connection.settings_dict), app=APP) as server:
        try:
            async_to_sync(scenario)(server)
        except BaseException:
            print(server.log())
            raise
