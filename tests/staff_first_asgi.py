"""The project's ASGI application plus two test-only endpoints, for
tests/test_live_staff_first.py (daphne serves this module instead of
config.asgi; never served outside the tests):

- `GET /__test__/busy`: an HTTP request that runs for 1.5 s, counted as the
  app's handler counts every request (`precedence.request_started`);
- `GET /__test__/held`: how long connecting screens' work has waited for HTTP
  so far in this process, in milliseconds.
"""

import asyncio

from config.asgi import application as real_application
from queueapp.live import precedence

BUSY_SECONDS = 1.5


async def _answer(send, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def application(scope, receive, send):
    if scope["type"] == "http" and scope["path"] == "/__test__/busy":
        precedence.request_started()
        try:
            await asyncio.sleep(BUSY_SECONDS)
        finally:
            precedence.request_finished()
        await _answer(send, b"done")
        return
    if scope["type"] == "http" and scope["path"] == "/__test__/held":
        await _answer(send, str(round(precedence.held_seconds * 1000)).encode())
        return
    await real_application(scope, receive, send)
