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


async def page_frames(server, visitor, *, unpushed, then) -> list[str]:
    """The frames of `visitor`'s page (the first shows it waiting): `unpushed()`
    runs with every push lost, then `then()` as usual; read until a frame shows
    the admission, or 15 s."""
    frames = []
    async with connect(f"{server.ws_url}/ws/ticket/{visitor.token}/", origin=server.url,
                       open_timeout=10, ping_interval=None) as ws:
        frames.append(await asyncio.wait_for(ws.recv(), 10))
        assert 'data-status="waiting"' in frames[0]
        real = publisher.use(_Recording())
        try:
            await database_sync_to_async(unpushed)()
        finally:
            publisher.use(real)
        await database_sync_to_async(then)()
        try:
            async with asyncio.timeout(15):
                while 'data-status="confirmed"' not in frames[-1]:
                    frames.append(await ws.recv())
        except TimeoutError:
            pass
    return frames


def one_inside_one_waiting(location):
    room = make_room(location, rate=600_000, inside=1)  # the place inside decides, not the rate
    inside, visitor = do_enter_line(room), do_enter_line(room)
    assert (inside.status, visitor.status) == (TicketStatus.CONFIRMED, TicketStatus.WAITING)
    return room, inside, visitor


def test_a_page_whose_catch_up_fails_still_shows_its_admission(location):
    room, inside, visitor = one_inside_one_waiting(location)

    def tick():  # what the worker does every TICK_SECONDS
        version = Queue.objects.values_list("version", flat=True).get(pk=room.queue_id)
        assert publisher.broadcast_ticks({room.queue_id: version}) == 1

    with run_daphne(database_url_for(connection.settings_dict), app=APP) as server:
        # The release's and the admission's pushes are lost; a tick tells the page.
        frames = async_to_sync(page_frames)(
            server, visitor, unpushed=lambda: do_release_visitor(room, inside.pk, outcome="done"), then=tick)
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
    room, inside, visitor = one_inside_one_waiting(location)
    with run_daphne(database_url_for(connection.settings_dict), app=APP, FAILING_CATCH_UPS="1000000") as server:
        # One arrival behind it whose push is lost (a gap); then the release and
        # the admission it makes, pushed as usual.
        frames = async_to_sync(page_frames)(
            server, visitor, unpushed=lambda: do_enter_line(room.pk),
            then=lambda: do_release_visitor(room, inside.pk, outcome="done"))
        log = server.log()
    visitor.refresh_from_db()
    assert visitor.status == TicketStatus.CONFIRMED
    assert 'data-status="confirmed"' in frames[-1], (frames, log[-3000:])
