"""The kiosk's join on PostgreSQL without a request thread (issue 9;
`API_ASYNC_JOIN`): the same queue read, checks and one-statement join + answer
as `do_join(with_place=True)`, sent from the event loop on psycopg's
AsyncConnection.

Why: per kiosk join the sync path hands the request to a thread three times
(request_started, the view, response.close), and measured per join the
request threads took 2.6-3.7 ms of CPU around ~0.9 ms of Python holding the GIL
(docs/benchmarks.md, session 8, `joins`): the rest was waking and handing over.
Here the view runs in the loop and waits for PostgreSQL there.

Only the plain case runs here; anything else answers None and the caller takes
`do_join` through one thread hop, which reads the queue again and decides as
ever (a waitlist, a waiting limit, a webhook, a paused queue: the locked path's
reasons). Every refusal is raised by the same functions as `do_join`'s, in the
same order, so the answers are the same.

One small pool of async connections per event loop (a daphne process has one),
opened on first use, with the parameters and adapters Django's own connection
uses (`get_connection_params`), in autocommit; closed when its loop ends
(`_close_with_the_loop`). Its sessions are named `APPLICATION_NAME`.
"""

from __future__ import annotations

import asyncio
import sys
import weakref

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import connections, router

from ..models import Queue, Ticket
from ._take import arun_take_and_read
from .tickets import (FOR_JOIN, JOIN_IN_ONE, _check_join, found_for_join, join_in_one_params, joined_in_one,
                      takes_in_one)

_pools: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_keepers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # the task that closes each


def joins_in_loop(request, using: str) -> bool:
    """Whether this request joins in the loop: on, PostgreSQL, and served by an
    ASGI server, whose loop lives as long as the process (a WSGI server runs an
    async view in a loop of its own per request: a pool there would outlive it)."""
    return settings.API_ASYNC_JOIN and isinstance(request, ASGIRequest) and connections[using].vendor == "postgresql"


# What the pool's sessions are called in pg_stat_activity (they are not Django's).
APPLICATION_NAME = "queueapp loop join"


async def _pool(using: str):
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        from psycopg import AsyncClientCursor
        from psycopg_pool import AsyncConnectionPool

        wrapper = connections[using]
        params = wrapper.get_connection_params()
        params.pop("cursor_factory", None)
        timezone_name = wrapper.timezone_name

        async def configure(conn) -> None:
            # What Django's connection sets up (init_connection_state): its time zone.
            await conn.execute("SELECT set_config('TimeZone', %s, false)", [timezone_name])

        # Client-side binding, as Django's cursors (the statements' untyped values).
        pool = AsyncConnectionPool(kwargs={**params, "autocommit": True, "cursor_factory": AsyncClientCursor,
                                           "application_name": APPLICATION_NAME},
                                   min_size=settings.API_ASYNC_JOIN_CONNECTIONS,
                                   max_size=settings.API_ASYNC_JOIN_CONNECTIONS,
                                   configure=configure, open=False, name="async-join")
        _pools[loop] = pool
        _close_with_the_loop(loop, pool)
        # All connections made at once, before the first join: none is still
        # being made (by a worker of the pool) when the pool closes, which left
        # such a one open (seen in the PostgreSQL suite).
        await pool.open(wait=True)
    return pool


def _close_with_the_loop(loop: asyncio.AbstractEventLoop, pool) -> None:
    """Close `pool` when its loop ends, so its sessions end with a goodbye
    rather than staying open (a test's `asyncio.run` left them open until the
    process exited: the PostgreSQL suite's teardown could not drop its
    database, "being accessed by other users") or being cut by the exit.

    `asyncio.run` (a test, uvicorn) cancels the tasks still pending when its
    main coroutine ends: a task that waits for that closes the pool. daphne
    stops Twisted's loop without cancelling them: a "before shutdown" trigger
    of its reactor closes the pool there."""
    async def until_cancelled() -> None:
        try:
            await asyncio.Future()
        finally:
            if _pools.get(loop) is pool:
                del _pools[loop]
            _keepers.pop(loop, None)
            idle = list(pool._pool)  # psycopg_pool's idle connections (the pinned 3.3's attribute)
            try:
                await pool.close()
            except asyncio.CancelledError:
                # asyncio.run cancelled the pool's own workers too, and close()
                # stops on them before closing its idle connections: closed here.
                for conn in idle:
                    await conn.close()

    keeper = loop.create_task(until_cancelled(), name="async-join pool keeper")
    _keepers[loop] = keeper
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is not None and getattr(reactor, "running", False):
        from twisted.internet.defer import Deferred

        def before_shutdown():
            keeper.cancel()
            return Deferred.fromFuture(asyncio.ensure_future(_finished(keeper), loop=loop))

        reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)


async def _finished(task: asyncio.Task) -> None:
    try:
        await task
    except asyncio.CancelledError:
        pass


async def do_join_in_loop(queue_id: int, *, priority: int, party_size: int, acting_user, note: str,
                       language: str, check) -> Ticket | None:
    """`do_join(queue_id, ..., with_place=True)` for a queue that joins in one
    statement; None (nothing written) for any other queue or when the statement
    refused (the caller runs `do_join`, which says why or takes the locked path).
    The statement, its values and the answer's reading are `do_join`'s
    (`join_in_one_params`, `_take.arun_take_and_read`, `joined_in_one`)."""
    using = router.db_for_write(Ticket)
    wrapper = connections[using]
    pool = await _pool(using)
    # psycopg's errors as Django's: a lost or busy server answers 503, as on the sync path.
    with wrapper.wrap_database_errors:
        async with pool.connection() as conn:
            read_sql, read_params = FOR_JOIN.sql(router.db_for_read(Queue), queue_id=queue_id)
            cursor = await conn.execute(read_sql, read_params)
            queue = found_for_join(queue_id, FOR_JOIN.from_row(using, await cursor.fetchone()))
            if not takes_in_one(queue):
                return None
            _check_join(queue, check, priority, party_size, language)
            ticket, params, place_read = join_in_one_params(queue, priority=priority, party_size=party_size,
                                                            acting_user=acting_user, note=note,
                                                            language=language, place_on=using)
            if place_read is None:
                row, place = await (await conn.execute(JOIN_IN_ONE, params)).fetchone(), None
            else:
                row, place = await arun_take_and_read(conn, JOIN_IN_ONE, params, place_read)
    if row is None:
        return None
    return joined_in_one(queue, ticket, row, place, acting_user=acting_user, alias=using)


async def close_loop_pool() -> None:
    """Close this loop's pool now (a test that checks what the database
    holds; otherwise it closes when its loop ends: `_close_with_the_loop`)."""
    keeper = _keepers.pop(asyncio.get_running_loop(), None)
    if keeper is not None:
        keeper.cancel()
        await _finished(keeper)
