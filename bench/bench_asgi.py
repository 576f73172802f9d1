"""The real ASGI application plus two bench-only HTTP endpoints.

The JSON API belongs to another area; until it is merged the benchmark needs
an HTTP way to make staff act inside the server process. These endpoints run
the same services the same way a Django view does (sync_to_async with
thread_sensitive=True, i.e. on the thread the consumers' queries share), and
answer only with the BENCH_KEY header. Never deployed: daphne loads this
module only when bench/live_fanout.py starts it.
"""

import os

from asgiref.sync import sync_to_async

from config.asgi import application as real_application

BENCH_KEY = os.environ["BENCH_KEY"].encode()


def _call_next(counter_id: int) -> str:
    from queueapp.services import do_call_next

    ticket = do_call_next(counter=counter_id)
    return ticket.display_number if ticket else "-"


def _complete(counter_id: int) -> str:
    from queueapp.models import AT_COUNTER, Ticket
    from queueapp.services import do_complete

    active = Ticket.objects.filter(counter_id=counter_id, status__in=AT_COUNTER).first()
    return do_complete(active).display_number if active else "-"


ACTIONS = {"call-next": _call_next, "complete": _complete}


async def application(scope, receive, send):
    if scope["type"] != "http" or not scope["path"].startswith("/bench/"):
        return await real_application(scope, receive, send)
    message = await receive()
    while message["type"] == "http.request" and message.get("more_body"):
        message = await receive()
    parts = scope["path"].strip("/").split("/")  # bench/<action>/<counter_id>
    action, counter = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
    if dict(scope["headers"]).get(b"x-bench-key") != BENCH_KEY or action not in ACTIONS or not counter.isdigit():
        status, body = 403, b"forbidden"
    else:
        status, body = 200, (await sync_to_async(ACTIONS[action], thread_sensitive=True)(int(counter))).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
