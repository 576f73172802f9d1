"""bench/lean_client.py, the light phones of bench/cold_connect.py, against
daphne over real sockets: a benchmark that counts a screen as right must
have read the right place from the server's own frames, follow a change, and
count a refusal as the `websockets` phones do (a close code, not an open)."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from bench.lean_client import run_lean_phone
from bench.restart import HTMX_BACKOFF, Phone, Stats
from queueapp.live.codes import CLOSE_NOT_FOUND
from queueapp.services import do_call_next, do_join
from tests.browser_support import database_url_for, run_daphne

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


async def until(check, seconds: float = 15.0) -> bool:
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.02)
    return True


def test_lean_phones_read_their_places_follow_a_call_and_count_a_refusal(queue, counter):
    tickets = [do_join(queue) for _ in range(3)]

    async def scenario(server):
        stats = Stats()
        phones = [Phone(t.token, 0) for t in tickets] + [Phone("a" * 22, 0)]  # (no such ticket)
        tasks = [asyncio.create_task(run_lean_phone(p, "127.0.0.1", server.port, "/ws/ticket/{token}/",
                                                    server.url, stats, HTMX_BACKOFF)) for p in phones]
        try:
            await until(lambda: [p.position for p in phones[:3]] == [1, 2, 3])
            assert all(p.open for p in phones[:3])
            await sync_to_async(do_call_next)(counter=counter)
            await until(lambda: [p.position for p in phones[1:3]] == [1, 2])
            await until(lambda: stats.closes[CLOSE_NOT_FOUND] >= 1)
            assert phones[3].position is None
            assert not stats.failures
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    with run_daphne(database_url_for(connection.settings_dict)) as server:
        asyncio.run(scenario(server))
