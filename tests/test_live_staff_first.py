"""Staff first, over a real daphne socket (queueapp/live/precedence.py).

While an HTTP request (a staff click) runs, a phone's screen that connects
waits (its handshake answer, its batched lookup and its admission, each for
at most `MOST_HOLD`); then it connects and shows its right place. With `LIVE_STAFF_FIRST` off nothing waits. The server's own counter of
held time tells which happened (timings alone would be at the mercy of the
machine's load).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.http import JsonResponse
from django.urls import path
from websockets.asyncio.client import connect

from config.asgi_handler import ReusedThreadASGIHandler

from queueapp.live import precedence
from queueapp.services import do_join
from tests.asgi_client import asgi_request
from tests.browser_support import database_url_for, run_daphne
from tests.live_helpers import ticket_state

pytestmark = pytest.mark.django_db(transaction=True)

APP = "tests.staff_first_asgi:application"


def _get(server, path: str) -> str:
    with urllib.request.urlopen(server.url + path, timeout=30) as answer:
        return answer.read().decode()


async def _screen_during_busy_request(server, token: str) -> tuple[dict, float]:
    """Start a busy HTTP request, then connect a phone's screen while it runs:
    (the screen's first frame, seconds from its connect to that frame)."""
    busy = asyncio.get_running_loop().run_in_executor(None, _get, server, "/__test__/busy")
    await asyncio.sleep(0.3)  # the request is running (past its first hold and the unheld time after it)
    started = time.monotonic()
    async with connect(f"{server.ws_url}/ws/ticket/{token}/", origin=server.url, open_timeout=30,
                       ping_interval=None) as ws:
        frame = await asyncio.wait_for(ws.recv(), 30)
    took = time.monotonic() - started
    await busy
    return ticket_state(frame), took


def _run(queue, **env) -> tuple[dict, float, int]:
    do_join(queue)
    token = do_join(queue).token
    with run_daphne(database_url_for(connection.settings_dict), app=APP, **env) as server:
        _get(server, "/healthz")  # warm: the first request loads what every later one uses
        state, took = async_to_sync(_screen_during_busy_request)(server, token)
        held_ms = int(_get(server, "/__test__/held"))
    return state, took, held_ms


def test_a_screen_connecting_during_a_staff_request_waits_for_it_then_shows_its_place(queue):
    state, _took, held_ms = _run(queue)
    assert state["position"] == 2
    # It waited for the request (bounded: at most MOST_HOLD per step of its connect).
    assert 0 < held_ms <= 3 * precedence.MOST_HOLD * 1000 + 100, held_ms


def test_with_staff_first_off_nothing_waits(queue):
    state, _took, held_ms = _run(queue, LIVE_STAFF_FIRST="0")
    assert state["position"] == 2
    assert held_ms == 0


def running_now(request):
    return JsonResponse({"running": precedence.http_running()})


urlpatterns = [path("running", running_now)]


@pytest.mark.urls(__name__)
def test_the_apps_handler_counts_each_request_while_it_runs():
    status, body = asyncio.run(asgi_request(ReusedThreadASGIHandler(), "GET", "/running"))
    assert status == 200 and json.loads(body)["running"] == 1
    assert precedence.http_running() == 0
