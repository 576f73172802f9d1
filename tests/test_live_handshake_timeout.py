"""A screen daphne could not serve in time is told to try again, never refused:
over a real socket against daphne, a handshake the application accepts after
daphne's `--websocket_connect_timeout` is answered 503 with Retry-After (daphne
says 403 "Access denied" for both), while a real refusal still answers 403
(queueapp/live/server_tuning.py, `retryable_handshake_timeout`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from websockets.exceptions import InvalidStatus

from queueapp.live.server_tuning import HANDSHAKE_RETRY_AFTER
from queueapp.services import do_join
from tests.browser_support import database_url_for, run_daphne
from tests.test_live_server import open_screen

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

DAPHNE = str(Path(sys.executable).with_name("daphne"))
APP = "tests.slow_accept_asgi:application"  # accepts 3 s late on ?slow=1, stalls its loop 3 s on ?stall=1


def test_a_handshake_not_accepted_in_time_is_answered_retryable_not_403(queue):
    token = do_join(queue).token

    async def scenario(server):
        # Accepted late (autobahn's timer), or after a stalled loop (whichever
        # of daphne's two timers runs first): daphne dropped the first without
        # an answer and answered the second 403 or dropped it.
        for late in ("slow=1", "stall=1"):
            with pytest.raises(InvalidStatus) as answer:
                async with open_screen(server, f"/ws/ticket/{token}/?{late}"):
                    pass
            assert answer.value.response.status_code == 503, late
            assert answer.value.response.headers["Retry-After"] == str(HANDSHAKE_RETRY_AFTER)
        # A real refusal (a path we do not serve) is still a 403...
        with pytest.raises(InvalidStatus) as refused:
            async with open_screen(server, "/ws/nowhere/"):
                pass
        assert refused.value.response.status_code == 403
        # ...and a screen accepted in time opens and shows its ticket.
        async with open_screen(server, f"/ws/ticket/{token}/") as ws:
            assert await ws.recv()

    def argv(port: int) -> list[str]:  # a connect timeout of 1 s (daphne's default: 5)
        return [DAPHNE, "-b", "127.0.0.1", "-p", str(port), "--websocket_connect_timeout", "1", APP]

    with run_daphne(database_url_for(connection.settings_dict), app=APP, argv=argv) as server:
        async_to_sync(scenario)(server)
        log = server.log()
    assert "Traceback" not in log, log[-3000:]
