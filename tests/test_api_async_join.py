"""The kiosk's join in the event loop (API_ASYNC_JOIN, services/_join_async.py)
answers as the thread path does, on PostgreSQL, through the ASGI app daphne
serves (rows committed: the async connections are the join's own).

tests/test_api_asgi_joins.py runs 40 concurrent joins on this path.
"""

import asyncio
import json
import time

import pytest
from asgiref import sync as asgiref_sync
from django.db import connection

from config.asgi import application
from queueapp.events import EVENT_TYPE
from queueapp.integrity import validate_queue_integrity
from queueapp.models import Queue, Ticket
from queueapp.services._join_async import APPLICATION_NAME, _pool, close_loop_pool
from queueapp.services._take import arun_take_and_read, run_take_and_read
from queueapp.services.tickets import JOIN_IN_ONE, join_in_one_params
from tests.api_support import kiosk_key  # noqa: F401 (fixture)
from tests.asgi_client import asgi_request
from tests.conftest import make_queue

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the async join is PostgreSQL's")]


async def _post(path: str, body: bytes, key: str) -> tuple[int, dict]:
    status, answer = await asgi_request(application, "POST", path, body=body, headers=[
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"authorization", f"Bearer {key}".encode())])
    return status, json.loads(answer)


def _run(settings, calls, *, loop_join: bool):
    """[(status, body)] of `calls` ((path, body, key)), one after another, with the
    join in the loop on or off."""
    settings.API_ASYNC_JOIN = loop_join

    async def all_of_them():
        try:
            return [await _post(path, body, key) for path, body, key in calls]
        finally:
            await close_loop_pool()
    return asyncio.run(all_of_them())


def _stable(body: dict) -> dict:
    """The answer without what differs from one join to the next."""
    return {k: v for k, v in body.items() if k not in ("id", "token", "patient_path", "patient_url")}


def test_a_join_answers_the_same_json_in_the_loop_and_on_a_thread(settings, location, queue, kiosk_key):
    other = make_queue(location, name="Other", prefix="B")
    [(s1, thread)] = _run(settings, [(f"/api/queues/{queue.pk}/tickets", b"{}", kiosk_key)], loop_join=False)
    [(s2, loop)] = _run(settings, [(f"/api/queues/{other.pk}/tickets", b"{}", kiosk_key)], loop_join=True)
    assert (s1, s2) == (201, 201)
    assert sorted(loop) == sorted(thread)
    assert _stable(loop) == {**_stable(thread), "number": "B-001"}
    ticket = Ticket.objects.get(token=loop["token"])
    assert loop["patient_url"] == f"http://testserver{loop['patient_path']}"
    assert (ticket.pk, ticket.queue_id, ticket.status) == (loop["id"], other.pk, "waiting")
    assert validate_queue_integrity(other) == []


def test_hostile_and_refused_joins_get_the_same_answers_in_the_loop(settings, location, other_location,
                                                                    queue, kiosk_key):
    paused = make_queue(location, name="Paused", prefix="P", is_paused=True)
    elsewhere = make_queue(other_location, name="Elsewhere", prefix="E")
    limited = make_queue(location, name="Limited", prefix="L", max_waiting=0)
    join = f"/api/queues/{queue.pk}/tickets"
    calls = [
        (join, b'{"language": "de\\u0000"}', kiosk_key),
        (join, '{"party_size": "\uff12"}'.encode(), kiosk_key),
        (join, b'{"party_size": 2}', kiosk_key + "\x00"),
        (join, json.dumps({"note": "x" * 5000}).encode(), kiosk_key),
        (join, b'{"note": "for staff"}', kiosk_key),
        (join, b'{"priority": 2}', kiosk_key),
        (join, b'{"language": "xx"}', kiosk_key),
        (join, b'{"party_size": 0}', kiosk_key),
        (join, b'{not json', kiosk_key),
        (join, b'{}', "qk_nobody"),
        ("/api/queues/\u0661/tickets", b"{}", kiosk_key),
        ("/api/queues/99999999/tickets", b"{}", kiosk_key),
        (f"/api/queues/{paused.pk}/tickets", b"{}", kiosk_key),
        (f"/api/queues/{elsewhere.pk}/tickets", b"{}", kiosk_key),
        (f"/api/queues/{limited.pk}/tickets", b"{}", kiosk_key),
    ]
    thread = _run(settings, calls, loop_join=False)
    loop = _run(settings, calls, loop_join=True)
    assert [status for status, _ in thread] != [201] * len(calls)
    assert all(status >= 400 for status, _ in thread)
    assert loop == thread
    assert not Ticket.objects.exists()


def test_a_join_in_the_loop_pushes_the_same_event(settings, location, queue, kiosk_key, published):
    other = make_queue(location, name="Other", prefix="B")
    _run(settings, [(f"/api/queues/{queue.pk}/tickets", b"{}", kiosk_key)], loop_join=False)
    _run(settings, [(f"/api/queues/{other.pk}/tickets", b"{}", kiosk_key)], loop_join=True)
    thread, loop = [m for m in published if m["type"] == EVENT_TYPE]
    differ = ("queue", "at", "entered", "entered_at")
    assert loop["queue"] == other.pk
    assert {k: v for k, v in loop.items() if k not in differ} | {"ticket": None} == \
        {k: v for k, v in thread.items() if k not in differ} | {"ticket": None}
    own = ("id", "seq", "display")  # its row, its place in time, its queue's prefix
    assert {k: v for k, v in loop["ticket"].items() if k not in own} == \
        {k: v for k, v in thread["ticket"].items() if k not in own}
    assert (loop["ticket"]["display"], loop["entered"]) == ("B-001", [0, loop["ticket"]["seq"]])
    assert loop["ticket"]["id"] == Ticket.objects.get(queue=other).pk


def test_a_kiosk_join_in_the_loop_takes_no_thread_hop_of_its_own(settings, queue, kiosk_key, monkeypatch):
    """Django's own hops (request_started, the response's close) stay; the view's goes."""
    hops = []
    real = asgiref_sync.SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        hops.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(asgiref_sync.SyncToAsync, "__call__", counted)
    path = f"/api/queues/{queue.pk}/tickets"
    counts = {}
    for loop_join in (False, True):
        # The first call reads the token (a hop); the second is a kiosk's usual one.
        _run(settings, [(path, b"{}", kiosk_key)], loop_join=loop_join)
        hops.clear()
        [(status, _)] = _run(settings, [(path, b"{}", kiosk_key)], loop_join=loop_join)
        assert status == 201
        counts[loop_join] = len(hops)
    assert counts[True] == counts[False] - 1
    assert Ticket.objects.filter(queue=queue).count() == 4


def test_the_answer_read_failing_after_the_join_committed_leaves_the_ticket_to_answer(location, queue):
    """The take and a failing read in one pipeline: the take's row comes back
    (the ticket is written), the read's answer is None (the caller reads it the
    ordinary way), nothing raises."""
    queue = Queue.objects.select_related("location").get(pk=queue.pk)
    ticket, params, _ = join_in_one_params(queue, priority=0, party_size=1, acting_user=None, note="", language="")

    async def take():
        try:
            async with (await _pool(connection.alias)).connection() as conn:
                return await arun_take_and_read(conn, JOIN_IN_ONE, params, (
                    f"SELECT 1 / (SELECT COUNT(*) - COUNT(*) FROM {Queue._meta.db_table})", []))
        finally:
            await close_loop_pool()

    row, place = asyncio.run(take())
    assert place is None
    assert row is not None
    assert Ticket.objects.get(token=ticket.token).number == row[1] == 1


def test_the_thread_paths_answer_read_failing_after_the_join_committed_leaves_the_ticket(location, queue):
    """The same on the thread path (`_take.run_take_and_read`, Django's connection)."""
    queue = Queue.objects.select_related("location").get(pk=queue.pk)
    ticket, params, _ = join_in_one_params(queue, priority=0, party_size=1, acting_user=None, note="", language="")
    row, place = run_take_and_read(JOIN_IN_ONE, params, (
        f"SELECT 1 / (SELECT COUNT(*) - COUNT(*) FROM {Queue._meta.db_table})", []))
    assert (row is not None, place) == (True, None)
    assert Ticket.objects.get(token=ticket.token).number == row[1] == 1
    assert Queue.objects.count() == 1  # the connection still answers


def _loop_join_sessions() -> int:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND application_name = %s", [APPLICATION_NAME])
            return cursor.fetchone()[0]
    finally:
        connection.close()  # this thread's own (asyncio.to_thread's is not a request's)


def test_the_loop_pools_sessions_end_with_their_loop(settings, queue, kiosk_key):
    """Nobody closes the pool by hand: its sessions end when the loop that
    made them ends (asyncio.run's end, as a test's or uvicorn's), instead of
    staying open until the process exits (a PostgreSQL suite could then not
    drop its database)."""
    settings.API_ASYNC_JOIN = True

    async def join_and_count():
        status, _ = await _post(f"/api/queues/{queue.pk}/tickets", b"{}", kiosk_key)
        return status, await asyncio.to_thread(_loop_join_sessions)

    status, open_meanwhile = asyncio.run(join_and_count())
    assert (status, open_meanwhile >= 1) == (201, True)
    deadline = time.monotonic() + 10  # a server process leaves pg_stat_activity once it has exited
    while (left := _loop_join_sessions()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == 0
