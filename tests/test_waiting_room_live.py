"""A waiting room's open pages over real sockets against daphne, when many
things happen at once: the room's events reach its pages in batches
(`settings.LIVE_ROOM_UPDATE_EVERY`, queueapp.live.hub), one frame per page per
batch, and every page still ends on its right place (or its admission).

Runs on SQLite (in-memory channel layer) and on PostgreSQL + Redis; the
releases and arrivals are made over HTTP on the same server, as the protected
site and the visitors make them.
"""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest
from django.db import connection
from websockets.asyncio.client import connect

from queueapp.models import Location, Ticket, TicketStatus
from queueapp.selectors import position_of
from queueapp.services.rooms import do_create_waiting_room, do_enter_line, do_issue_room_key
from tests.browser_support import database_url_for, serve

pytestmark = pytest.mark.django_db(transaction=True)

BATCH_EVERY = 2.0  # seconds (the server's LIVE_ROOM_UPDATE_EVERY here): wider than the burst below
INSIDE = 4
WAITING = 8
PLACE = re.compile(r'class="position-number">(\d+)<')


def shown(frame: str) -> tuple[str, int | None]:
    """(status, place) a ticket fragment shows."""
    status = re.search(r'data-status="(\w+)"', frame).group(1)
    if status != TicketStatus.WAITING:
        return status, None
    if "You are <strong>next</strong>" in frame:
        return status, 1
    return status, int(PLACE.search(frame).group(1))


def expected(ticket: Ticket) -> tuple[str, int | None]:
    ticket.refresh_from_db()
    return ticket.status, position_of(ticket)


@pytest.fixture
def room():
    location = Location.objects.create(name="Arena", slug="arena")
    # A rate that never holds anyone back: the places inside decide.
    return do_create_waiting_room(location=location, name="Concert", slug="concert", prefix="W",
                                  target_url="http://127.0.0.1:9/", admit_per_minute=600_000,
                                  max_inside=INSIDE)


def test_a_burst_of_admissions_reaches_each_page_as_one_frame_with_its_final_place(room):
    key = do_issue_room_key(room)
    inside = [do_enter_line(room) for _ in range(INSIDE)]
    waiting = [do_enter_line(room) for _ in range(WAITING)]
    assert all(t.status == TicketStatus.CONFIRMED for t in inside)
    assert [position_of(t) for t in waiting] == list(range(1, WAITING + 1))

    with serve(database_url_for(connection.settings_dict),
               LIVE_ROOM_UPDATE_EVERY=str(BATCH_EVERY), WAIT_RATE_LIMIT="1000/60") as url:
        ws_url = url.replace("http://", "ws://")

        async def scenario():
            sockets = [await connect(f"{ws_url}/ws/ticket/{t.token}/", origin=url, open_timeout=20,
                                     ping_interval=None) for t in waiting]
            try:
                # First paint of every socket: its place.
                first = [shown(await asyncio.wait_for(ws.recv(), 20)) for ws in sockets]
                assert first == [(TicketStatus.WAITING, n) for n in range(1, WAITING + 1)]

                frames: list[list[str]] = [[] for _ in sockets]

                async def read(i: int, ws) -> None:
                    async for frame in ws:
                        frames[i].append(frame)

                readers = [asyncio.create_task(read(i, ws)) for i, ws in enumerate(sockets)]
                async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                    started = time.monotonic()
                    # The protected site reports everyone inside at once: each
                    # release frees a place, the room admits the next four.
                    answers = await asyncio.gather(*(
                        http.post(f"/api/rooms/concert/visitors/{t.pk}/release", json={"outcome": "done"},
                                  headers={"Authorization": f"Bearer {key}"}) for t in inside))
                    burst = time.monotonic() - started
                    assert [a.status_code for a in answers] == [200] * INSIDE
                    # Two new visitors: their first paint has the right place, behind everyone.
                    late = []
                    for n in range(2):
                        http.cookies.clear()  # another browser (one place per browser)
                        page = await http.get("/wait/concert/?return=/buy",
                                              headers={"X-Forwarded-For": f"10.9.9.{n}"})
                        assert page.status_code == 200, page.text[:300]
                        late.append(shown(page.text)[1])
                    assert late == [WAITING - INSIDE + 1, WAITING - INSIDE + 2]
                # Two batch periods after the last event, every page has had its frame.
                await asyncio.sleep(2 * BATCH_EVERY + 2)
                for reader in readers:
                    reader.cancel()
                return frames, burst
            finally:
                for ws in sockets:
                    await ws.close()

        frames, burst = asyncio.run(scenario())

    for ticket, got in zip(waiting, frames):
        assert got, f"{ticket.display_number}'s page heard nothing"
        assert shown(got[-1]) == expected(ticket), (ticket.display_number, [shown(f) for f in got])
    admitted, still = waiting[:INSIDE], waiting[INSIDE:]
    assert all(shown(f[-1])[0] == TicketStatus.CONFIRMED for f in frames[:INSIDE])
    assert [shown(f[-1]) for f in frames[INSIDE:]] == [(TicketStatus.WAITING, n)
                                                       for n in range(1, WAITING - INSIDE + 1)]
    if burst < BATCH_EVERY / 2:  # (a machine too loaded for that proves nothing about batches)
        # Each waiting page moved four places (and its wait with every release):
        # one event at a time would be four frames or more; batched, one, or two
        # when the burst straddled a batch boundary (the late arrivals do not
        # move them: they stand behind).
        assert all(len(f) <= 2 for f in frames[INSIDE:]), [len(f) for f in frames]
    assert still and admitted


def test_a_page_that_connects_after_its_admission_learns_it_at_once(room):
    """The page of a visitor admitted while it had no socket (a phone asleep, a
    reconnect, a page that came late) must show the admission on its first
    frame: also while the admission is still in the room's batch, not yet
    handed to the pages (a wide `LIVE_ROOM_UPDATE_EVERY` here), and later
    batches must not take it back to "waiting"."""
    key = do_issue_room_key(room)
    inside = [do_enter_line(room) for _ in range(INSIDE)]
    waiting = [do_enter_line(room) for _ in range(3)]
    asleep, watching, late = waiting

    with serve(database_url_for(connection.settings_dict), LIVE_ROOM_UPDATE_EVERY=str(BATCH_EVERY)) as url:
        ws_url = url.replace("http://", "ws://")

        def screen(ticket):
            return connect(f"{ws_url}/ws/ticket/{ticket.token}/", origin=url, open_timeout=20, ping_interval=None)

        async def scenario():
            frames = []
            async with screen(watching) as open_page:  # keeps the server's hub on the room
                assert shown(await asyncio.wait_for(open_page.recv(), 20)) == (TicketStatus.WAITING, 2)
                async with screen(asleep) as page:  # open, then the phone goes to sleep
                    assert shown(await asyncio.wait_for(page.recv(), 20)) == (TicketStatus.WAITING, 1)
                async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                    answer = await http.post(f"/api/rooms/concert/visitors/{inside[0].pk}/release",
                                             json={"outcome": "done"}, headers={"Authorization": f"Bearer {key}"})
                    assert answer.status_code == 200
                started = time.monotonic()
                # Back within the batch period: the snapshot says admitted.
                async with screen(asleep) as page:
                    frames.append(shown(await asyncio.wait_for(page.recv(), 20)))
                    reopened = time.monotonic() - started
                    # The batch with the admission reaches the open pages after this.
                    await asyncio.sleep(BATCH_EVERY + 1)
                    while True:
                        try:
                            frames.append(shown(await asyncio.wait_for(page.recv(), 0.5)))
                        except TimeoutError:
                            break
                # A page first opened after the admission: its own place, at once.
                async with screen(late) as page:
                    first_late = shown(await asyncio.wait_for(page.recv(), 20))
                last_open = shown(await asyncio.wait_for(open_page.recv(), 20))
            return frames, reopened, first_late, last_open

        frames, reopened, first_late, last_open = asyncio.run(scenario())

    assert frames[0] == (TicketStatus.CONFIRMED, None), frames
    assert all(f == (TicketStatus.CONFIRMED, None) for f in frames), frames  # never back to waiting
    assert first_late == (TicketStatus.WAITING, 2) and last_open == (TicketStatus.WAITING, 1)
    assert expected(asleep) == (TicketStatus.CONFIRMED, None)
    print(f"\nreopened {reopened:.2f} s after the release (batch period {BATCH_EVERY} s)")


def test_a_page_far_back_gets_its_place_at_its_cadence_and_its_admission_at_once():
    """`settings.LIVE_ROOM_NEAR` / `LIVE_ROOM_FAR_EVERY` (queueapp.live.batch.frame_every):
    a page far back in line is sent its new place at most once per its
    cadence (longer the further back), never later than the cadence plus a
    batch; a page admitted, wherever it stood, and a page that reaches the
    front get their frame at the next batch."""
    location = Location.objects.create(name="Arena", slug="arena")
    big = 10
    room = do_create_waiting_room(location=location, name="Concert", slug="concert", prefix="W",
                                  target_url="http://127.0.0.1:9/", admit_per_minute=600_000, max_inside=big)
    key = do_issue_room_key(room)
    inside = [do_enter_line(room) for _ in range(big)]
    waiting = [do_enter_line(room) for _ in range(30)]
    watched = {10: waiting[9], 11: waiting[10], 20: waiting[19], 30: waiting[29]}  # place before -> ticket
    assert [position_of(t) for t in watched.values()] == list(watched)
    every, far_every = 0.5, 8.0
    # After the burst: 10 admitted, 11 -> 1st (near), 20 -> 10th (cadence 5 s), 30 -> 20th (8 s).
    cadence_after = {20: every * 10, 30: far_every}

    with serve(database_url_for(connection.settings_dict), LIVE_ROOM_UPDATE_EVERY=str(every),
               LIVE_ROOM_NEAR="1", LIVE_ROOM_FAR_EVERY=str(far_every)) as url:
        ws_url = url.replace("http://", "ws://")

        async def scenario():
            sockets = {p: await connect(f"{ws_url}/ws/ticket/{t.token}/", origin=url, open_timeout=20,
                                        ping_interval=None) for p, t in watched.items()}
            try:
                painted = {}
                for p, ws in sockets.items():
                    assert shown(await asyncio.wait_for(ws.recv(), 20)) == (TicketStatus.WAITING, p)
                    painted[p] = time.monotonic()
                frames: dict[int, list[tuple[float, tuple]]] = {p: [] for p in sockets}

                async def read(p: int, ws) -> None:
                    async for frame in ws:
                        frames[p].append((time.monotonic(), shown(frame)))

                readers = [asyncio.create_task(read(p, ws)) for p, ws in sockets.items()]
                async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                    answers = await asyncio.gather(*(
                        http.post(f"/api/rooms/concert/visitors/{t.pk}/release", json={"outcome": "done"},
                                  headers={"Authorization": f"Bearer {key}"}) for t in inside))
                    released = time.monotonic()
                    assert [a.status_code for a in answers] == [200] * big
                await asyncio.sleep(far_every + 2 * every + 2)
                for reader in readers:
                    reader.cancel()
                return painted, released, frames
            finally:
                for ws in sockets.values():
                    await ws.close()

        painted, released, frames = asyncio.run(scenario())

    slack = 2.0  # a loaded machine's lateness
    # The admission of the page 10th in line (a cadence of 5 s there): at the next batch.
    admitted_at = next(at for at, s in frames[10] if s[0] == TicketStatus.CONFIRMED)
    assert frames[10][-1][1] == (TicketStatus.CONFIRMED, None), frames[10]
    assert admitted_at - released <= every + slack, admitted_at - released
    if released - painted[10] < every * 10 - every - slack:  # (a burst slower than its cadence proves nothing here)
        assert admitted_at - painted[10] < every * 10 - every, admitted_at - painted[10]
    # The page that reached the front: at the next batch, its place right.
    assert frames[11] and frames[11][-1][1] == (TicketStatus.WAITING, 1)
    assert frames[11][0][0] - released <= every + slack
    # The far pages: one frame, with their final place, not before their cadence
    # from the first paint and not later than cadence + a batch (+ the machine's lateness).
    for before, after in ((20, 10), (30, 20)):
        assert [s for _, s in frames[before]] == [(TicketStatus.WAITING, after)], (before, frames[before])
        at = frames[before][0][0]
        assert cadence_after[before] - 0.3 <= at - painted[before], (before, at - painted[before])
        assert at - max(released, painted[before] + cadence_after[before]) <= every + slack, (before, at - released)
    for place, ticket in watched.items():
        assert expected(ticket) == ((TicketStatus.CONFIRMED, None) if place == 10 else
                                    (TicketStatus.WAITING, {11: 1, 20: 10, 30: 20}[place]))
