"""The live screens through daphne, with a real WebSocket client (`websockets`).

Channels' test communicator skips daphne and autobahn, where close codes,
handshake refusals and shutdown behave differently: daphne refuses to send
1003/1008/1009 from an application (the close raised, the socket stayed
open, a traceback per message), and an unknown path answered HTTP 500. These
tests run the server as production does, on the test database.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from queueapp.services import do_join
from tests.browser_support import database_url_for, free_port, run_daphne

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def open_screen(server, path: str):
    return connect(server.ws_url + path, origin=server.url, open_timeout=10, ping_interval=None)


async def open_then_stop(server, tokens: list[str]) -> list:
    """Ticket screens open and showing, then SIGTERM to the server."""
    screens = [await open_screen(server, f"/ws/ticket/{t}/") for t in tokens]
    for ws in screens:
        await ws.recv()
    server.proc.send_signal(signal.SIGTERM)
    return screens


async def closed_with(ws, timeout: float = 10.0) -> int:
    """Read until the server closes; the close code it sent."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "the connection dropped without a close frame"
        return closed.rcvd.code


def wait_for_log(server, text: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = server.log()
        if text in log:
            return log
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never logged; log:\n{server.log()[-3000:]}")


def test_abuse_closes_the_socket_with_a_4xxx_code_and_one_log_line(queue):
    token = do_join(queue).token

    async def scenario(server):
        async with open_screen(server, f"/ws/ticket/{token}/") as ws:
            assert "ticket-status" in await ws.recv()
            await ws.send("x" * 10_000)
            assert await closed_with(ws) == 4009
        async with open_screen(server, f"/ws/ticket/{token}/") as ws:
            await ws.recv()
            await ws.send(b"\x00\x01")
            assert await closed_with(ws) == 4003
        async with open_screen(server, f"/ws/ticket/{token}/") as ws:
            await ws.recv()
            for _ in range(60):  # far past the limit: still one close, one log line
                await ws.send("{}")
            assert await closed_with(ws) == 4008

    with run_daphne(database_url_for(connection.settings_dict), LOG_LEVEL="INFO") as server:
        async_to_sync(scenario)(server)
        log = wait_for_log(server, "closed with 4008")
    for code in (4009, 4003, 4008):
        assert log.count(f"ticket screen closed with {code}") == 1, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert token not in log  # the patient's secret URL is not logged


def test_unknown_websocket_path_is_refused_at_the_handshake_not_500(db):
    async def scenario(server):
        for path in ("/", "/ws/nowhere/", "/ws/ticket/", "/ws/ticket/%00/", "/ws/ticket/short/",
                     "/ws/console/abc/", "/ws/console/0/", "/admin/"):
            with pytest.raises(InvalidStatus) as refused:
                async with open_screen(server, path):
                    pass
            assert refused.value.response.status_code in (403, 404), path

    with run_daphne(database_url_for(connection.settings_dict)) as server:
        async_to_sync(scenario)(server)
        log = server.log()
    assert "No route found" not in log and "Traceback" not in log, log[-3000:]


@pytest.mark.parametrize("database_url", [
    "postgres://postgres@127.0.0.1:{port}/gone",  # nothing listens there
    "sqlite:////nonexistent-directory/gone.sqlite3",
], ids=["postgresql", "sqlite"])
def test_screen_connecting_while_the_database_is_down_gets_a_retryable_close_code(database_url):
    """Not a 403 (which tells the phone it may not watch this ticket): 4013, try again.
    The staff console too, with a session cookie whose user cannot be looked up."""
    async def scenario(server):
        for path, headers in (("/ws/ticket/AAAAAAAAAAAAAAAAAAAAAA/", None),
                              ("/ws/display/lobby/", None),
                              ("/ws/console/1/", {"Cookie": "sessionid=abcdefghijklmnopqrstuvwxyz012345"})):
            async with connect(server.ws_url + path, origin=server.url, open_timeout=10, ping_interval=None,
                               additional_headers=headers) as ws:  # accepted, not refused
                assert await closed_with(ws) == 4013, path

    url = database_url.format(port=free_port())
    with run_daphne(url, DB_POOL_TIMEOUT="1", REDIS_URL="") as server:
        async_to_sync(scenario)(server)


def test_stopping_the_server_closes_every_screen_with_the_restart_code(queue):
    tokens = [do_join(queue).token for _ in range(3)]

    async def scenario(server):
        screens = await open_then_stop(server, tokens)
        codes = await asyncio.gather(*(closed_with(ws) for ws in screens))
        assert codes == [4012, 4012, 4012]

    with run_daphne(database_url_for(connection.settings_dict), LIVE_SHUTDOWN_SPREAD="0.5") as server:
        async_to_sync(scenario)(server)
        server.proc.wait(15)


def test_a_stopping_server_refuses_new_connections_while_it_closes_its_screens(queue):
    """From the SIGTERM on, nothing new is accepted: a phone coming back while the
    others are still being closed is refused at once (a proxy sends it to another
    process), not left hanging on a process about to exit."""
    tokens = [do_join(queue).token for _ in range(20)]

    async def scenario(server):
        screens = await open_then_stop(server, tokens)
        closes = [asyncio.ensure_future(closed_with(ws)) for ws in screens]
        done, _ = await asyncio.wait(closes, return_when=asyncio.FIRST_COMPLETED)
        assert done.pop().result() == 4012
        still_open = sum(1 for ws in screens if ws.protocol.close_rcvd is None)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", server.port)
        assert still_open > 0  # it refused while it was still closing screens
        assert set(await asyncio.gather(*closes)) == {4012}

    with run_daphne(database_url_for(connection.settings_dict), LIVE_SHUTDOWN_SPREAD="4") as server:
        async_to_sync(scenario)(server)
        server.proc.wait(15)


@pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server")
def test_redis_outage_is_logged_once_when_it_starts_and_once_when_it_ends(queue):
    token = do_join(queue).token
    port = free_port()

    async def scenario(server):
        async with open_screen(server, f"/ws/ticket/{token}/") as ws:
            assert "ticket-status" in await ws.recv()  # the screen works without Redis
            await asyncio.sleep(6)  # several retries while Redis is away

    with run_daphne(database_url_for(connection.settings_dict), REDIS_URL=f"redis://127.0.0.1:{port}/0",
                    CHANNEL_LAYER_BACKEND="channels_redis.pubsub.RedisPubSubChannelLayer") as server:
        async_to_sync(scenario)(server)
        redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        try:
            async_to_sync(scenario)(server)  # a screen again, so the hub has a group to re-subscribe
            log = wait_for_log(server, "channel layer (Redis) back after")
        finally:
            redis.terminate()
            redis.wait(10)
    assert log.count("channel layer (Redis) unreachable") == 1, log[-3000:]
    assert log.count("channel layer (Redis) back after") == 1, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
