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

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from queueapp.live import hub, publisher, reads
from queueapp.services import do_call_next, do_complete, do_join
from tests.live_helpers import screen, wait_for_ticket
from tests.test_live_room_batch import _Recording

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
