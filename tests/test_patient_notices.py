"""What the patient page says after a missed call, and why a position went up
(someone with a higher priority placed ahead), on the first paint and live. The
live side is checked against the first paint by tests/test_verify_action.py (the
no-show case: the same words from the same function, `models.missed_call_sentence`;
the urgent cases: `selectors.placed_ahead` and its live twin `selectors.overtakes`)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection
from django.utils import timezone, translation
from websockets.asyncio.client import connect

from queueapp.live import reads, render
from queueapp.models import Priority, Queue
from queueapp.services import do_call_next, do_complete, do_join, do_no_show, do_start_serving
from tests.browser_support import database_url_for, run_daphne

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def back_to_the_default_language():
    """A ticket page activates its holder's language in the test's thread (as
    each request does in production): do not leave German to the next test."""
    yield
    translation.deactivate()


def test_a_missed_call_is_told_with_its_time_and_the_last_chance(client, location, queue, counter, monkeypatch):
    Queue.objects.filter(pk=queue.pk).update(recall_limit=2)
    called_at = datetime(2030, 3, 4, 10, 42, tzinfo=ZoneInfo("Europe/Paris"))
    monkeypatch.setattr(timezone, "now", lambda: called_at)
    ticket = do_join(queue)
    do_call_next(counter=counter)
    do_no_show(ticket)

    page = client.get(f"/t/{ticket.token}/", follow=True).content.decode()
    assert "You missed your call at 10:42; you are back in line." in page
    live = render.ticket_status(reads.ticket_view(ticket.token))
    assert "You missed your call at 10:42; you are back in line." in live

    do_call_next(counter=counter)
    do_no_show(ticket)  # the second of two allowed: the next miss ends the ticket
    page = client.get(f"/t/{ticket.token}/", follow=True).content.decode()
    assert "You missed your call at 10:42; you are back in line, last chance." in page
    assert "last chance" in render.ticket_status(reads.ticket_view(ticket.token))


def test_a_ticket_that_never_missed_a_call_is_told_nothing_of_it(client, queue):
    ticket = do_join(queue)
    assert "missed your call" not in client.get(f"/t/{ticket.token}/", follow=True).content.decode()


# --- "why did my position go up?" ---------------------------------------------------------
PLACED_AHEAD = "Someone with a higher priority arrived after you and is now ahead of you."


def _page(client, ticket) -> str:
    return client.get(f"/t/{ticket.token}/", follow=True).content.decode()


def _serve_next(counter):
    ticket = do_call_next(counter=counter)
    do_complete(do_start_serving(ticket))
    return ticket


def _live(ticket) -> str:
    """The live fragment as a screen that (re)connects reads it from the database."""
    return render.ticket_status(reads.ticket_view(ticket.token))


def test_the_page_says_when_a_higher_priority_arrival_is_placed_ahead(client, queue, counter):
    early_urgent = do_join(queue, priority=Priority.URGENT)  # ahead from the start: no reason to explain
    mine = do_join(queue)
    assert PLACED_AHEAD not in _page(client, mine) and PLACED_AHEAD not in _live(mine)

    high = do_join(queue, priority=Priority.HIGH)
    later_normal = do_join(queue)  # joined after the high one: it was never passed
    page = _page(client, mine)
    assert PLACED_AHEAD in page and "Position <strong class=\"position-number\">3</strong>" in page
    assert PLACED_AHEAD in _live(mine)
    assert PLACED_AHEAD not in _page(client, later_normal) and PLACED_AHEAD not in _live(later_normal)
    assert PLACED_AHEAD not in _page(client, high)  # an urgent ticket joined before it, but earlier
    assert PLACED_AHEAD not in _page(client, early_urgent)

    assert _serve_next(counter).pk == early_urgent.pk
    assert PLACED_AHEAD in _page(client, mine)  # the high one is still ahead
    assert _serve_next(counter).pk == high.pk
    assert PLACED_AHEAD not in _page(client, mine) and PLACED_AHEAD not in _live(mine)  # no longer true


def test_placed_ahead_follows_the_ticket_back_into_line_and_speaks_its_language(client, location, queue, counter):
    location.languages = ["en", "de"]
    location.save()
    mine = do_join(queue, language="de")
    urgent = do_join(queue, priority=Priority.URGENT)
    german = "Jemand mit höherer Priorität ist nach Ihnen gekommen und steht jetzt vor Ihnen."
    assert german in _page(client, mine) and german in _live(mine)

    assert do_call_next(counter=counter).pk == urgent.pk
    do_no_show(urgent)  # back in line after its missed call: it took its place again after mine
    assert german in _page(client, mine) and german in _live(mine)

    assert _serve_next(counter).pk == urgent.pk
    assert do_call_next(counter=counter).pk == mine.pk
    do_join(queue, priority=Priority.URGENT)  # placed ahead while mine is at the counter...
    do_no_show(mine)  # ...mine goes back in line after it: it passed nobody since
    assert german not in _page(client, mine) and german not in _live(mine)


@pytest.mark.django_db(transaction=True)
def test_the_live_page_says_it_and_takes_it_back_over_a_real_socket(location, queue, counter):
    """Through daphne with a real client: an urgent arrival is announced on the
    open pages of those it passed, in each one's language, a page opened
    afterwards says it from its first frame, and the words go once it is called."""
    location.languages = ["en", "de"]
    location.save()
    mine = do_join(queue)
    mine_de = do_join(queue, language="de")
    german = "Jemand mit höherer Priorität ist nach Ihnen gekommen und steht jetzt vor Ihnen."

    async def frame_where(ws, predicate, timeout=30.0) -> str:
        async with asyncio.timeout(timeout):
            while True:
                frame = await ws.recv()
                if "ticket-status" in frame and predicate(frame):
                    return frame

    def at(place):
        return lambda frame: f'class="position-number">{place}</strong>' in frame

    def screen(server, ticket):
        return connect(server.ws_url + f"/ws/ticket/{ticket.token}/", origin=server.url, ping_interval=None)

    async def scenario(server):
        async with screen(server, mine) as ws, screen(server, mine_de) as ws_de:
            assert PLACED_AHEAD not in await frame_where(ws, lambda f: "You are <strong>next</strong>" in f)
            assert german not in await frame_where(ws_de, at(2))

            await sync_to_async(do_join)(queue, priority=Priority.URGENT)
            assert PLACED_AHEAD in await frame_where(ws, at(2))
            assert german in await frame_where(ws_de, at(3))
            async with screen(server, mine) as late:  # a page opened now: its first frame says it
                assert PLACED_AHEAD in await frame_where(late, at(2))

            await sync_to_async(do_call_next)(counter=counter)  # the urgent one is called
            assert PLACED_AHEAD not in await frame_where(ws, lambda f: "You are <strong>next</strong>" in f)
            assert german not in await frame_where(ws_de, at(2))

    with run_daphne(database_url_for(connection.settings_dict)) as server:
        async_to_sync(scenario)(server)
