"""What a burst of screens connecting costs the database, over a real daphne socket.

A server restart brings thousands of phones back at once; each used to cost a
session lookup (Channels' auth middleware, even for an anonymous phone) and a
ticket lookup, one after another on the process's one database thread. Now a
burst shares its lookups: the tickets in one query per batch, the queue's
waiting line once; lobby displays and staff consoles likewise (`Hub.displays`,
`Hub.consoles`). The server counts every statement any of its threads runs
(`tests/counting_asgi.py`); the screens are real `websockets` clients.
"""

from __future__ import annotations

import asyncio
import urllib.request

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import Client
from websockets.asyncio.client import connect

from queueapp.services import do_join
from tests.browser_support import database_url_for, run_daphne
from tests.conftest import make_counter, make_queue
from tests.live_helpers import ticket_state

pytestmark = pytest.mark.django_db(transaction=True)

BURST = 200
COUNTING_APP = "tests.counting_asgi:application"


def queries_so_far(server) -> int:
    with urllib.request.urlopen(server.url + "/__test__/queries", timeout=10) as answer:
        return int(answer.read())


async def first_frames(server, paths: list[str], cookie: str | None = None) -> list[str]:
    """Open every path at once (a burst), read each one's first frame, close."""
    headers = {"Cookie": cookie} if cookie else None

    async def one(path: str) -> str:
        async with connect(server.ws_url + path, origin=server.url, open_timeout=30, ping_interval=None,
                           additional_headers=headers) as ws:
            return await asyncio.wait_for(ws.recv(), 30)

    return await asyncio.gather(*(one(p) for p in paths))


def burst_cost(paths: list[str], cookie: str | None = None) -> tuple[int, list[str]]:
    with run_daphne(database_url_for(connection.settings_dict), app=COUNTING_APP) as server:
        before = queries_so_far(server)
        frames = async_to_sync(first_frames)(server, paths, cookie)
        return queries_so_far(server) - before, frames


def test_a_burst_of_200_ticket_screens_costs_a_bounded_number_of_queries(queue):
    tokens = [do_join(queue).token for _ in range(BURST)]
    used, frames = burst_cost([f"/ws/ticket/{t}/" for t in tokens],
                              # a phone that visited the site carries a session cookie: never looked up
                              cookie="sessionid=abcdefghijklmnopqrstuvwxyz012345")
    assert [ticket_state(f)["position"] for f in frames] == list(range(1, BURST + 1))  # every screen right
    # One ticket query per batch (whoever arrives while one runs waits for the
    # next) and the waiting line once (about 5 queries); before: 2 per screen.
    assert used <= 20, f"{used} queries for {BURST} ticket screens"


def test_a_burst_of_lobby_displays_costs_a_bounded_number_of_queries(location, queue):
    make_queue(location, "Pharmacy", "P")
    do_join(queue)
    used, frames = burst_cost([f"/ws/display/{location.slug}/"] * 100)
    assert all('id="display-board"' in f for f in frames)
    # The location and its queues once per batch, the board read and rendered
    # once or twice for the whole burst (9 queries when written); before: 2
    # queries per display and a board read per display (~700).
    assert used <= 20, f"{used} queries for 100 displays"


def test_a_burst_of_staff_consoles_costs_two_queries_each_for_the_login_and_little_more(
        location, queue, counter, staff):
    second = make_counter(location, "Counter 2", [queue])
    do_join(queue)
    client = Client()
    client.force_login(staff)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    paths = [f"/ws/console/{c.pk}/" for c in (counter, second)] * 25
    used, frames = burst_cost(paths, cookie)
    assert all('id="console-feed"' in f and "A-001" in f for f in frames)
    # Each console's session and user (staff only: a few per location), then
    # the access checks and the counters' queues in one hop per batch and the
    # feeds rendered a few times for the burst.
    assert used <= 2 * len(paths) + 30, f"{used} queries for {len(paths)} consoles"
