"""Concurrent joins through the real ASGI application (`config.asgi.application`).

The thread-based test in test_api_tickets.py goes through Django's WSGI test
client; this one drives the ASGI app daphne serves, where each request runs its
sync view in its own thread-sensitive context, so the joins really overlap.
"""

import asyncio
import json

import pytest

from config.asgi import application
from queueapp.integrity import validate_queue_integrity
from queueapp.models import Ticket
from queueapp.services._join_async import close_loop_pool
from tests.api_support import fast_password_hashing, kiosk_key  # noqa: F401 (fixtures)
from tests.asgi_client import asgi_request


async def asgi_post(path: str, body: dict, *, key: str) -> tuple[int, dict]:
    payload = json.dumps(body).encode()
    status, answer = await asgi_request(application, "POST", path, body=payload, headers=[
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
        (b"authorization", f"Bearer {key}".encode())])
    return status, json.loads(answer)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("loop_join", [False, True], ids=["thread", "loop"])
def test_concurrent_joins_through_the_asgi_app_get_gapless_numbers(queue, kiosk_key, settings, loop_join):
    settings.API_ASYNC_JOIN = loop_join  # the kiosk's join in the event loop (PostgreSQL) or on threads
    async def join_all():
        try:
            return await asyncio.gather(*(asgi_post(f"/api/queues/{queue.pk}/tickets", {}, key=kiosk_key)
                                          for _ in range(40)))
        finally:
            await close_loop_pool()

    answers = asyncio.run(join_all())

    assert [status for status, _ in answers] == [201] * 40
    assert sorted(body["number"] for _, body in answers) == [f"A-{n:03d}" for n in range(1, 41)]
    assert sorted(body["position"] for _, body in answers)[0] == 1
    assert Ticket.objects.filter(queue=queue).count() == 40
    assert validate_queue_integrity(queue) == []
