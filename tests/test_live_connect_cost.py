"""What a burst of patient screens connecting costs the database.

A server restart brings thousands of phones back at once; each used to cost a
session lookup (Channels' auth middleware, even for an anonymous phone) and a
ticket lookup, one after another on the process's one database thread. Now a
burst shares its lookups: the tickets in one query per batch, the queue's
waiting line once. Queries are counted on every connection of the process
(the consumers' reads run on another thread than the test's).
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.db.backends import utils

from queueapp.live import hub
from queueapp.services import do_join
from tests.live_helpers import ORIGIN, ticket_state

pytestmark = pytest.mark.django_db(transaction=True)

BURST = 200


@pytest.fixture
def count_queries(monkeypatch):
    """Every SQL statement any thread of this process runs, counted."""
    counted = {"n": 0}
    lock = threading.Lock()
    execute, executemany = utils.CursorWrapper._execute, utils.CursorWrapper._executemany

    def counting_execute(self, *args, **kwargs):
        with lock:
            counted["n"] += 1
        return execute(self, *args, **kwargs)

    def counting_executemany(self, *args, **kwargs):
        with lock:
            counted["n"] += 1
        return executemany(self, *args, **kwargs)

    monkeypatch.setattr(utils.CursorWrapper, "_execute", counting_execute)
    monkeypatch.setattr(utils.CursorWrapper, "_executemany", counting_executemany)
    return counted


def test_a_burst_of_200_connects_to_one_queue_costs_a_bounded_number_of_queries(queue, count_queries):
    tokens = [do_join(queue).token for _ in range(BURST)]
    # A phone that visited the site carries a session cookie: public screens must not look it up.
    headers = [ORIGIN, (b"cookie", b"sessionid=abcdefghijklmnopqrstuvwxyz012345")]

    async def scenario():
        from config.asgi import application

        comms = [WebsocketCommunicator(application, f"/ws/ticket/{t}/", headers=headers) for t in tokens]
        try:
            before = count_queries["n"]
            results = await asyncio.gather(*(c.connect(timeout=30) for c in comms))
            assert all(connected for connected, _ in results)
            frames = await asyncio.gather(*(c.receive_from(timeout=30) for c in comms))
            used = count_queries["n"] - before
            positions = [ticket_state(f)["position"] for f in frames]
            assert positions == list(range(1, BURST + 1))  # every screen right
            # One ticket query per batch (a few batches: whoever arrives while one
            # runs waits for the next) and the waiting line once (about 5 queries);
            # before: 2 per screen (session + ticket), 400 here.
            assert used <= 15, f"{used} queries for {BURST} connects"
        finally:
            await asyncio.gather(*(c.disconnect() for c in comms))
            await hub.close_current()

    async_to_sync(scenario)()
