"""The project's ASGI application with a WebSocket `send` that can be made
late or faulty, for tests/test_live_left_early.py (daphne serves this module
instead of config.asgi; never served outside the tests).

- `?hold=1`: before the screen's first frame, log HOLD_MARK and block the
  event loop for HOLD_SECONDS (as a storm's backlog does), then let two loop
  turns pass before sending. A close frame the phone sent meanwhile is then
  read in the first turn (autobahn answers it and drops the TCP: the
  protocol is closed), while daphne hears of the lost connection only in the
  second: the frame goes out in between, where daphne raises autobahn's
  `Disconnected` ("Attempt to send on a closed protocol").
- `?fail=1`: the first frame's send raises a `RuntimeError` (a real fault).
"""

import asyncio
import logging
import time

from config.asgi import application as real_application

HOLD_SECONDS = 2.0
HOLD_MARK = "late-send test: holding the loop"

log = logging.getLogger("queueapp")


def _late_send(send, query: bytes):
    first = True

    async def late_send(message):
        nonlocal first
        if message["type"] == "websocket.send" and first:
            first = False
            if b"fail=1" in query:
                raise RuntimeError("late-send test: a real fault in the send path")
            if b"hold=1" in query:
                log.warning(HOLD_MARK)
                time.sleep(HOLD_SECONDS)  # blocks the loop on purpose (see above)
                await asyncio.sleep(0)
                await asyncio.sleep(0)
        await send(message)

    return late_send


async def application(scope, receive, send):
    if scope["type"] == "websocket":
        send = _late_send(send, scope.get("query_string", b""))
    await real_application(scope, receive, send)
