"""Events that daphne's own requests commit in a burst reach a page on that
daphne over a real socket, in order: the server's publisher sends its
backlog to Redis in pipelined batches (`publisher._send_in_order`), and the
page shows every step to the right place. (That the batch takes a few loop
turns where one send per event took one each is tests/test_live_publisher.py.)

PostgreSQL + Redis only: the pipelined batch is channels_redis's pub/sub layer."""

from __future__ import annotations

import asyncio
import os
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from websockets.asyncio.client import connect

from queueapp.services import do_join
from tests.browser_support import database_url_for, run_daphne
from tests.live_helpers import ticket_state

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow,
              pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL)")]

AHEAD = 30


def cancel(server, token: str) -> int:
    request = urllib.request.Request(f"{server.url}/api/tickets/by-token/{token}/cancel", data=b"{}",
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status


async def positions_until_first(server, last, connected: threading.Event) -> list[int]:
    """The positions `last`'s page shows, from its first frame until it shows 1 (or 20 s)."""
    shown = []
    async with connect(f"{server.ws_url}/ws/ticket/{last.token}/", origin=server.url,
                       open_timeout=10, ping_interval=None) as ws:
        shown.append(ticket_state(await asyncio.wait_for(ws.recv(), 10))["position"])
        connected.set()
        try:
            async with asyncio.timeout(20):
                while shown[-1] != 1:
                    position = ticket_state(await ws.recv())["position"]
                    if position is not None:
                        shown.append(position)
        except TimeoutError:
            pass
    return shown


def test_a_burst_of_events_committed_by_daphne_reaches_its_page_in_order(queue):
    ahead = [do_join(queue) for _ in range(AHEAD)]
    last = do_join(queue)
    connected = threading.Event()
    with run_daphne(database_url_for(connection.settings_dict)) as server:
        with ThreadPoolExecutor(max_workers=AHEAD + 1) as pool:
            watching = pool.submit(async_to_sync(positions_until_first), server, last, connected)
            assert connected.wait(15)
            answers = list(pool.map(lambda t: cancel(server, t.token), ahead))
            shown = watching.result(40)
        log = server.log()
    assert answers == [200] * AHEAD
    assert shown[0] == AHEAD + 1 and shown[-1] == 1, shown
    assert shown == sorted(shown, reverse=True), shown  # never back to a place it had left
    assert "behind for" not in log
