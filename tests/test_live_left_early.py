"""A phone that leaves before its screen's first frame is an expected event,
not an error: over a real socket against daphne (see tests/late_send_asgi.py
for how the late send is arranged), the server logs no traceback for it,
while a real fault in the same send path still logs one."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from websockets.asyncio.client import connect

from queueapp.services import do_join
from tests.browser_support import database_url_for, run_daphne
from tests.late_send_asgi import HOLD_MARK
from tests.test_live_server import closed_with

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

APP = "tests.late_send_asgi:application"


async def wait_for_log_async(server, text: str, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while text not in server.log():
            await asyncio.sleep(0.05)


def test_a_phone_that_leaves_before_the_first_frame_logs_no_traceback(queue):
    token = do_join(queue).token

    async def scenario(server):
        ws = await connect(f"{server.ws_url}/ws/ticket/{token}/?hold=1", origin=server.url,
                           open_timeout=10, close_timeout=10, ping_interval=None)
        await wait_for_log_async(server, HOLD_MARK)  # the server is about to send the snapshot
        await ws.close()  # the phone gives up first

    with run_daphne(database_url_for(connection.settings_dict), app=APP, LOG_LEVEL="DEBUG") as server:
        async_to_sync(scenario)(server)
        async_to_sync(wait_for_log_async)(server, "left before its frame was sent")
        log = server.log()
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
    assert "closed with 4011" not in log, log[-3000:]  # not treated as a failed start
    assert token not in log


def test_a_real_fault_when_sending_still_logs_its_traceback(queue):
    token = do_join(queue).token

    async def scenario(server):
        async with connect(f"{server.ws_url}/ws/ticket/{token}/?fail=1", origin=server.url,
                           open_timeout=10, ping_interval=None) as ws:
            assert await closed_with(ws) == 4011

    with run_daphne(database_url_for(connection.settings_dict), app=APP, LOG_LEVEL="INFO") as server:
        async_to_sync(scenario)(server)
        log = server.log()
    assert "Traceback" in log and "a real fault in the send path" in log, log[-3000:]
    assert "live screen could not start" in log, log[-3000:]
