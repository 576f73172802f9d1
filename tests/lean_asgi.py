"""The project's ASGI application plus one test-only route, for
tests/test_live_lean.py (daphne serves this module instead of config.asgi;
never served outside the tests): `GET /held/` answers, as JSON, what the
process holds for its open WebSocket connections (found with gc, as
bench/live_memory.py does), so a test can tell what one more screen costs."""

import asyncio
import gc
import json

from daphne.http_protocol import WebRequest
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol

from config.asgi import application as real_application
from queueapp.live import collector


def held() -> dict:
    frozen = gc.get_freeze_count()
    gc.unfreeze()  # (the hub freezes what lives, queueapp/live/collector.py: get_objects skips it)
    gc.collect()
    objects = gc.get_objects()
    servers = [o for o in objects if isinstance(o, Server)]
    sockets = [o for o in objects if isinstance(o, WebSocketProtocol) and o.state == o.STATE_OPEN]
    return {
        "frozen": frozen,
        "full_passes": collector.reclaims,
        "open": len(sockets),
        "tasks": len(asyncio.all_tasks()),
        "asyncio_input_queues": sum(1 for p in sockets if isinstance(getattr(p, "application_queue", None), asyncio.Queue)),
        # The requests that carried an upgrade (daphne then sets their
        # transport to None), beyond the second for which daphne's own
        # connection table keeps them (its checker drops them).
        "upgraded_http_requests": sum(1 for o in objects if isinstance(o, WebRequest) and o.transport is None
                                      and not any(o in s.connections for s in servers)),
        "with_handshake": sum(1 for p in sockets if {"http_headers", "http_request_data"} & p.__dict__.keys()),
        "with_options_copied": sum(1 for p in sockets if "openHandshakeTimeout" in p.__dict__),
    }


async def application(scope, receive, send):
    if scope["type"] == "http" and scope["path"] == "/held/":
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(held()).encode()})
        return
    await real_application(scope, receive, send)
