"""A page that knows it is behind keeps catching up until it shows what it
missed: over a real socket against daphne (tests/failing_catch_up_asgi.py
makes the first two reads of missed events fail, as a database dropping
connections under load does), a waiting-room visitor whose admission reached
the page only as a tick (its events' pushes lost) sees it once the reads work
again. The screen's work gave up after one failed round before, and with no
later message (the last admission of a run, no worker ticking) the page
showed "waiting" for good.

PostgreSQL + Redis only: the test process must reach daphne's hub (the
in-memory layer's hub ticks itself, which hid this)."""

from __future__ import annotations

import asyncio
import os

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.db import connection
from websockets.asyncio.client import connect

from queueapp.live import publisher
from queueapp.models import Queue, TicketStatus
from queueapp.services.rooms import do_enter_line, do_release_visitor
from tests.browser_support import database_url_for, run_daphne
from tests.test_live_room_batch import _Recording
from tests.test_waiting_room import make_room

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow,
              pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL)")]

APP = "tests.failing_catch_up_asgi:application"


def test_a_page_whose_catch_up_fails_still_shows_its_admission(location):
    room = make_room(location, rate=600_000, inside=1)  # the place inside decides, not the rate
    inside = do_enter_line(room)
    visitor = do_enter_line(room)
    assert (inside.status, visitor.status) == (TicketStatus.CONFIRMED, TicketStatus.WAITING)

    async def scenario(server) -> list[str]:
        frames = []
        async with connect(f"{server.ws_url}/ws/ticket/{visitor.token}/", origin=server.url,
                           open_timeout=10, ping_interval=None) as ws:
            frames.append(await asyncio.wait_for(ws.recv(), 10))
            assert 'data-status="waiting"' in frames[0]
            real = publisher.use(_Recording())  # the release's and the admission's pushes are lost
            try:
                await database_sync_to_async(do_release_visitor)(room, inside.pk, outcome="done")
            finally:
                publisher.use(real)
            version = await database_sync_to_async(
                lambda: Queue.objects.values_list("version", flat=True).get(pk=room.queue_id))()
            assert await database_sync_to_async(publisher.broadcast_ticks)({room.queue_id: version}) == 1
            try:
                async with asyncio.timeout(15):
                    while 'data-status="confirmed"' not in frames[-1]:
                        frames.append(await ws.recv())
            except TimeoutError:
                pass
        return frames

    with run_daphne(database_url_for(connection.settings_dict), app=APP) as server:
        frames = async_to_sync(scenario)(server)
        log = server.log()
    visitor.refresh_from_db()
    assert visitor.status == TicketStatus.CONFIRMED
    assert 'data-status="confirmed"' in frames[-1], (frames, log[-3000:])
    assert log.count("live screen could not catch up") == 2, log[-3000:]  # both failures were hit


def test_a_page_behind_shows_its_own_admission_when_its_message_arrives(location):
    """A page that missed a message and cannot catch up (here every read of
    missed events fails; under a crowd they wait behind every other screen's
    and request's in the process's one database thread, longer than an
    admission lasts) still shows its visitor's admission the moment the
    admission's message arrives: its place no longer matters."""
    room = make_room(location, rate=600_000, inside=1)
    inside = do_enter_line(room)
    visitor = do_enter_line(room)

    async def scenario(server) -> list[str]:
        frames = []
        async with connect(f"{server.ws_url}/ws/ticket/{visitor.token}/", origin=server.url,
                           open_timeout=10, ping_interval=None) as ws:
            frames.append(await asyncio.wait_for(ws.recv(), 10))
            assert 'data-status="waiting"' in frames[0]
            real = publisher.use(_Recording())  # one arrival behind it: its push is lost (a gap)
            try:
                await database_sync_to_async(do_enter_line)(room.pk)
            finally:
                publisher.use(real)
            # The release and the admission it makes are pushed as usual.
            await database_sync_to_async(do_release_visitor)(room, inside.pk, outcome="done")
            try:
                async with asyncio.timeout(10):
                    while 'data-status="confirmed"' not in frames[-1]:
                        frames.append(await ws.recv())
            except TimeoutError:
                pass
        return frames

    with run_daphne(database_url_for(connection.settings_dict), app=APP, FAILING_CATCH_UPS="1000000") as server:
        frames = async_to_sync(scenario)(server)
        log = server.log()
    visitor.refresh_from_db()
    assert visitor.status == TicketStatus.CONFIRMED
    assert 'data-status="confirmed"' in frames[-1], (frames, log[-3000:])
