"""The project's ASGI application whose screens accept late on request, for
tests/test_live_handshake_timeout.py (daphne serves this module instead of
config.asgi; never served outside the tests).

`?slow=1`: the screen's `websocket.accept` reaches daphne SLOW_SECONDS late
(the event loop stays free meanwhile), as when a process under load runs the
application after daphne's `--websocket_connect_timeout` has passed.
`?stall=1`: the event loop is blocked for SLOW_SECONDS before the application
starts (a loop stalled by a storm), so daphne's timers are all late at once.
"""

import asyncio
import time

from config.asgi import application as real_application

SLOW_SECONDS = 3.0


def _late_accept(send):
    async def late_accept(message):
        if message["type"] == "websocket.accept":
            await asyncio.sleep(SLOW_SECONDS)
        await send(message)

    return late_accept


async def application(scope, receive, send):
    query = scope.get("query_string", b"")
    if scope["type"] == "websocket" and b"slow=1" in query:
        send = _late_accept(send)
    if scope["type"] == "websocket" and b"stall=1" in query:
        time.sleep(SLOW_SECONDS)  # blocks the loop on purpose (see above)
    await real_application(scope, receive, send)
