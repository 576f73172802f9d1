"""queueapp/live/wire.py: live screens' frames written straight to the socket
under daphne, over real sockets (tests/wire_asgi.py serves the project's app
plus a bare test route), and the stock path everywhere else."""

from __future__ import annotations

import asyncio
import functools
import json
import urllib.request

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from websockets.asyncio.client import connect

from queueapp.live.wire import Wire
from queueapp.services import do_call_next, do_join
from tests.browser_support import database_url_for, run_daphne
from tests.test_live_left_early import wait_for_log_async
from tests.wire_asgi import WIRE_CLOSED_MARK, frame_text

APP = "tests.wire_asgi:application"
POSITION_MARK = 'class="position-number">'
NEXT_MARK = "You are <strong>next</strong>"


def test_no_direct_path_without_daphne_behind_send():
    """Another server (uvicorn), the test communicator or a wrapped `send`: the stock path."""

    async def send(message):
        pass

    assert Wire.behind(send) is None
    assert Wire.behind(functools.partial(send)) is None
    assert Wire.behind(functools.partial(print, object())) is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_frames_of_every_length_arrive_whole_and_in_order():
    """Lengths around each of the WebSocket header's forms (7-bit, 16-bit,
    64-bit), multi-byte text, and frames far bigger than the socket's kernel
    buffer followed by small ones: what the kernel does not take at once is
    sent from Twisted's buffer before anything written after it."""
    sizes = [1, 2, 125, 126, 127, 65_535, 65_536, 300_000, 10, 1_000_000, 3, 3]

    async def scenario(server):
        async with connect(f"{server.ws_url}/wire-test/", origin=server.url, open_timeout=10,
                           ping_interval=None, max_size=2 ** 22, compression=None) as ws:
            await ws.send(json.dumps({"sizes": sizes}))
            async with asyncio.timeout(30):
                got = [await ws.recv() for _ in sizes]
        assert got == [frame_text(i, size) for i, size in enumerate(sizes)]
        await wait_for_log_async(server, WIRE_CLOSED_MARK)  # writing to a closed socket raises, as before

    with run_daphne(database_url_for(connection.settings_dict), app=APP) as server:
        async_to_sync(scenario)(server)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_ticket_screens_under_daphne_get_their_frames_by_the_direct_path(queue, counter):
    """Each frame the phones receive (snapshot and updates) was written by
    `Wire.write` in the server: the fan-out does not silently fall back to the
    stock path, and the phones see the right places."""
    tokens = [do_join(queue).token for _ in range(4)]

    async def scenario(server):
        screens = [await connect(f"{server.ws_url}/ws/ticket/{t}/", origin=server.url, open_timeout=10,
                                 ping_interval=None) for t in tokens[1:]]
        received = 0
        for place, ws in enumerate(screens, start=2):
            assert f"{POSITION_MARK}{place}<" in await ws.recv()
            received += 1
        await asyncio.to_thread(do_call_next, counter=counter)  # the first ticket is called
        async with asyncio.timeout(20):
            for place, ws in enumerate(screens, start=2):
                shows = NEXT_MARK if place == 2 else f"{POSITION_MARK}{place - 1}<"
                while shows not in await ws.recv():
                    received += 1
                received += 1
        writes = int(await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"{server.url}/wire-writes/", timeout=10).read()))
        for ws in screens:
            await ws.close()
        return received, writes

    with run_daphne(database_url_for(connection.settings_dict), app=APP) as server:
        received, writes = async_to_sync(scenario)(server)
    assert received >= 6 and writes >= received, (received, writes)
