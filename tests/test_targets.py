"""Service targets: tickets waiting past their queue's target are flagged on the
console and the lobby display, on the first paint and live (one rule,
`queueapp.targets`, behind both reads); the live part over a real socket."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from websockets.asyncio.client import connect

from queueapp.models import Ticket
from queueapp.services import do_join
from queueapp.targets import past_target, passes_at
from tests.browser_support import database_url_for, run_daphne


@pytest.fixture(autouse=True)
def plain_static_files(settings):
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


def waited(ticket, minutes):
    """As if `ticket` had been in line for `minutes` (no event: time passing writes nothing)."""
    Ticket.objects.filter(pk=ticket.pk).update(queued_at=timezone.now() - timedelta(minutes=minutes))


def test_the_rule_at_its_edge(queue):
    now = timezone.now()
    assert not past_target(queue, now - timedelta(hours=5), now)  # no target: never past it
    queue.target_wait_minutes = 20
    assert not past_target(queue, now - timedelta(minutes=20) + timedelta(seconds=1), now)
    assert past_target(queue, now - timedelta(minutes=20), now)
    assert passes_at(queue, now) == now + timedelta(minutes=20)


@pytest.mark.django_db
def test_console_and_display_flag_tickets_past_the_target_on_the_first_paint(client, location, queue, counter,
                                                                             staff):
    queue.target_wait_minutes = 20
    queue.save()
    late, early = do_join(queue), do_join(queue)
    waited(late, 25)
    client.force_login(staff)
    console = client.get(reverse("console", args=[counter.pk])).content.decode()
    assert f'data-ticket="{late.pk}" class="priority-0 past-target"' in console
    assert f'data-ticket="{early.pk}" class="priority-0"' in console  # ... flagged by live.js at its instant:
    assert f'data-passes-at="{int(passes_at(queue, Ticket.objects.get(pk=early.pk).queued_at).timestamp())}"' in console
    assert "target 20 min" in console
    display = client.get(reverse("display", args=[location.slug])).content.decode()
    assert f'<li data-queue="{queue.pk}" class="past-target"' in display
    assert "waiting longer than 20 min" in display


@pytest.mark.django_db
def test_nothing_is_flagged_within_the_target_or_without_one(client, location, queue, counter, staff):
    ticket = do_join(queue)
    waited(ticket, 300)
    client.force_login(staff)
    console = client.get(reverse("console", args=[counter.pk])).content.decode()
    display = client.get(reverse("display", args=[location.slug])).content.decode()
    assert "past-target\"" not in console and 'class="past-target"' not in display  # no target
    queue.target_wait_minutes = 600
    queue.save()
    console = client.get(reverse("console", args=[counter.pk])).content.decode()
    assert f'data-ticket="{ticket.pk}" class="priority-0"' in console


@pytest.mark.django_db(transaction=True)
def test_the_live_console_and_display_flag_a_ticket_once_it_is_past_the_target(client, location, queue, counter,
                                                                               staff):
    queue.target_wait_minutes = 20
    queue.save()
    ticket = do_join(queue)
    client.force_login(staff)
    cookie = f"sessionid={client.cookies['sessionid'].value}"

    async def frames_until(ws, text, timeout=15.0):
        async with asyncio.timeout(timeout):
            while True:
                frame = await ws.recv()
                if text in frame:
                    return frame

    async def scenario(server):
        async with connect(server.ws_url + f"/ws/display/{location.slug}/", origin=server.url,
                           ping_interval=None) as display, \
                connect(server.ws_url + f"/ws/console/{counter.pk}/", origin=server.url, ping_interval=None,
                        additional_headers={"Cookie": cookie}) as console:
            board = await frames_until(display, 'id="display-board"')
            feed = await frames_until(console, 'id="console-feed"')
            assert "past-target\"" not in board and "past-target\"" not in feed
            await sync_to_async(waited)(ticket, 21)
            await sync_to_async(do_join)(queue)  # any event: both screens re-render
            board = await frames_until(display, 'id="display-board"')
            feed = await frames_until(console, 'id="console-feed"')
            assert f'<li data-queue="{queue.pk}" class="past-target"' in board
            assert f'data-ticket="{ticket.pk}" class="priority-0 past-target"' in feed

    with run_daphne(database_url_for(connection.settings_dict)) as server:
        async_to_sync(scenario)(server)
