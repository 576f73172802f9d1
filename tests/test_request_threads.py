"""A reused request thread starts each request with a clean database connection.

`config/asgi_handler.py` lends each HTTP request an idle single-thread
executor that an earlier request used. Django's connections live per thread,
so whatever one request left on its thread's connection (an atomic block it
never left, a savepoint, a transaction begun by hand, a `SET`, a connection a
database error broke) would reach the next request on that thread, unless the
request's end (`request_finished`, run on the request's own thread) returns
the connection cleanly. Each case below runs a leaking request and then a
probe on the same thread (asserted), through the real handler and middleware.

The probe is shown to see each leak: with `request_finished` no longer
closing connections (as a handler that ran the request's end on another
thread would behave), the same sequence reports the leak; and Django's own
clean-up alone leaves the abandoned atomic block on the reused thread.
"""

from __future__ import annotations

import asyncio
import json
import threading
from contextlib import contextmanager

import pytest
from django.contrib.auth.models import Group
from django.core import signals
from django.db import DatabaseError, close_old_connections, connection, connections, transaction
from django.http import JsonResponse
from django.urls import path

from config.asgi_handler import ReusedThreadASGIHandler, drop_unfinished_transactions
from tests.asgi_client import RESPONSE_TIMEOUT, asgi_request

POOL_ROUNDS = 8  # probes after a leaking request: more than the pool's connections (DB_POOL_MAX)
LEAK = "leaked-by-an-earlier-request"


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


# --- the requests -------------------------------------------------------------
def leave_atomic_open(request):
    """An atomic block entered and never left, with a write and a savepoint in it."""
    transaction.atomic().__enter__()
    Group.objects.create(name=LEAK)
    transaction.savepoint_create()
    return JsonResponse({"thread": threading.get_ident()})


def begin_by_hand(request):
    """A transaction begun with raw SQL, behind Django's back, with a write in it."""
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("INSERT INTO auth_group (name) VALUES (%s)", [LEAK])
    return JsonResponse({"thread": threading.get_ident()})


def set_session_settings(request):
    """Session settings changed with SET (PostgreSQL): they outlive the transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = '7min'")
        cursor.execute("SET application_name = %s", [LEAK])
    return JsonResponse({"thread": threading.get_ident()})


def break_the_connection(request):
    """A database error that leaves the connection unusable (its server process gone)."""
    try:
        with connection.cursor() as cursor:
            if _is_postgres():
                cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            else:  # SQLite: close the driver's connection under Django's wrapper
                connection.connection.close()
            cursor.execute("SELECT 1")
    except DatabaseError:
        pass  # a view that swallowed it; the request itself succeeds
    return JsonResponse({"thread": threading.get_ident()})


def error_inside_open_atomic(request):
    """A failed statement inside an atomic block that is never left (PostgreSQL:
    the transaction is aborted, every later statement on it fails)."""
    transaction.atomic().__enter__()
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT * FROM no_such_table_here")
    except DatabaseError:
        pass
    return JsonResponse({"thread": threading.get_ident()})


def probe(request):
    """What this request finds on its thread's connection."""
    found = {  # the connection's state as the request finds it, before it runs anything
        "thread": threading.get_ident(),
        "in_atomic_block": connection.in_atomic_block,
        "needs_rollback": connection.needs_rollback,
    }
    try:
        found["autocommit"] = connection.get_autocommit()
        found["leaked_row_visible"] = Group.objects.filter(name=LEAK).exists()
        with connection.cursor() as cursor:
            if _is_postgres():
                found["transaction_status"] = connection.connection.info.transaction_status.name
                cursor.execute(
                    "SELECT current_setting('statement_timeout') = reset_val FROM pg_settings "
                    "WHERE name = 'statement_timeout'")
                found["statement_timeout_default"] = cursor.fetchone()[0]
                cursor.execute("SELECT current_setting('application_name')")
                found["application_name"] = cursor.fetchone()[0]
            else:
                found["transaction_status"] = "INTRANS" if connection.connection.in_transaction else "IDLE"
        with transaction.atomic(durable=True):  # a write as the services make one
            Group.objects.create(name="probe-write")
        found["wrote"] = Group.objects.filter(name="probe-write").delete()[0] == 1
    except Exception as exc:  # the probe reports, the test judges
        found["error"] = f"{type(exc).__name__}: {exc}"
    return JsonResponse(found)


urlpatterns = [
    path("leak/atomic", leave_atomic_open),
    path("leak/begin", begin_by_hand),
    path("leak/set", set_session_settings),
    path("leak/broken", break_the_connection),
    path("leak/aborted", error_inside_open_atomic),
    path("probe", probe),
]

CASES = ["atomic", "begin", "set", "broken", "aborted"]
CLEAN = {"in_atomic_block": False, "needs_rollback": False, "autocommit": True,
         "leaked_row_visible": False, "transaction_status": "IDLE", "wrote": True}


# --- driving the handler ---------------------------------------------------------
async def get(handler, url: str) -> tuple[int, dict]:
    status, body = await asgi_request(handler, "GET", url)
    return status, json.loads(body)


def _drop_connections() -> None:
    """Give back this thread's connections (the pool rolls back what is open)."""
    for conn in connections.all(initialized_only=True):
        conn.close()
        del connections[conn.alias]


class RecordingHandler(ReusedThreadASGIHandler):
    """The handler, remembering its threads so the test can clean them up."""

    def __init__(self):
        super().__init__()
        self.threads = set()

    def _give_back(self, thread) -> None:
        self.threads.add(thread)
        super()._give_back(thread)


def leak_then_probe(case: str) -> tuple[dict, dict]:
    """The leaking request, then the probe, one after the other on one handler
    (so the probe borrows the thread the leaking request gave back)."""
    handler = RecordingHandler()

    async def run():
        status, leaked = await get(handler, f"/leak/{case}")
        assert status == 200, leaked
        # Every connection of the pool in turn (it hands them out in order):
        # a leak in any of them counts.
        for _ in range(POOL_ROUNDS):
            status, found = await get(handler, "/probe")
            assert status == 200, found
            if leaks(found):
                break
        return leaked, found

    try:
        leaked, found = asyncio.run(run())
    finally:  # whatever the thread still holds (the control case) must not block the teardown
        for thread in handler.threads:
            thread.submit(_drop_connections).result(RESPONSE_TIMEOUT)
            thread.shutdown()
    return leaked, found


@contextmanager
def without(*receivers):
    """The request's start and end without these connection clean-ups."""
    for receiver in receivers:
        signals.request_finished.disconnect(receiver)
        signals.request_started.disconnect(receiver)
    try:
        yield
    finally:
        for receiver in receivers:
            signals.request_finished.connect(receiver)
        signals.request_started.connect(close_old_connections)


def leaks(found: dict) -> dict:
    """What the probe found that a fresh thread's connection would not show."""
    diff = {k: found.get(k) for k, v in CLEAN.items() if found.get(k, v) != v}
    if "error" in found:
        diff["error"] = found["error"]
    if found.get("statement_timeout_default") is False:
        diff["statement_timeout_default"] = False
    if found.get("application_name") == LEAK:
        diff["application_name"] = LEAK
    return diff


@pytest.fixture
def cases():
    if _is_postgres():
        return CASES
    return [c for c in CASES if c != "set"]  # SQLite has no session settings of that kind


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls(__name__)
def test_a_reused_request_thread_starts_with_a_clean_connection(cases):
    for case in cases:
        leaked, found = leak_then_probe(case)
        assert found["thread"] == leaked["thread"], "the probe must run on the leaking request's thread"
        assert leaks(found) == {}, case
        assert not Group.objects.filter(name=LEAK).exists(), f"{case}: an unfinished write was kept"


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls(__name__)
def test_the_probe_sees_each_leak_when_connections_are_not_returned(cases):
    # The same sequence, with the request's end not returning its connection:
    # the probe must report every case (else the test above proves nothing).
    for case in cases:
        with without(close_old_connections, drop_unfinished_transactions):
            leaked, found = leak_then_probe(case)
        assert found["thread"] == leaked["thread"]
        assert leaks(found) != {}, f"{case}: the probe did not see the leak"
    # Django's own clean-up alone returns the connection but leaves the
    # thread's wrapper "inside" the abandoned atomic block (on SQLite every
    # later query on the thread fails): what drop_unfinished_transactions is for.
    with without(drop_unfinished_transactions):
        _leaked, found = leak_then_probe("atomic")
    assert leaks(found) != {}

