"""The real ASGI application plus bench-only HTTP endpoints.

`/bench/bare-healthz`: the project's `/healthz` view through a Django handler
with no middleware at all, in the same process: the "bare Django view"
baseline that `/healthz` (the whole middleware chain) is compared with.

The JSON API belongs to another area; until it is merged the benchmark needs
an HTTP way to make staff act inside the server process. These endpoints run
the same services the same way a Django view does (sync_to_async with
thread_sensitive=True inside the request's own ThreadSensitiveContext, on a
request thread of its own, reused as config/asgi_handler.py does), and
answer only with the BENCH_KEY header. Never deployed: daphne loads this
module only when bench/live_fanout.py starts it.
"""

import asyncio
import os
import time

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.exception import convert_exception_to_response
from django.db import close_old_connections

from bench import stalls
from config.asgi import application as real_application
from config.asgi_handler import RequestThread, ReusedThreadASGIHandler
from queueapp.live import precedence

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


def _run(action: str, counter_id: int) -> str:
    # Django's handler returns a request's connection to the pool when the
    # request finishes (request_finished -> close_old_connections); this
    # endpoint bypasses the handler, so it must do the same, or each call's
    # thread keeps a pooled connection and the pool runs dry after ~40 calls.
    try:
        return ACTIONS[action](counter_id)
    finally:
        close_old_connections()


class BareHandler(ReusedThreadASGIHandler):
    """Django's ASGI handler without middleware: URL resolution and the view only."""

    def load_middleware(self, is_async=False):
        self._view_middleware, self._template_response_middleware, self._exception_middleware = [], [], []
        self._middleware_chain = convert_exception_to_response(self._get_response_async)


bare_handler = BareHandler()
_idle_threads: list = []  # the staff endpoint's request threads, reused as the app's handler does


async def _memory(send) -> None:
    """What the process holds, for bench/live_memory.py: objects by type (gc),
    and, if tracemalloc runs (PYTHONTRACEMALLOC), bytes by where they were
    allocated, as JSON."""
    import gc
    import json
    import sys
    import tracemalloc
    from collections import Counter

    gc.unfreeze()  # (the hub freezes what lives, queueapp/live/collector.py: get_objects skips it)
    gc.collect()
    counts, sizes = Counter(), Counter()
    for obj in gc.get_objects():
        kind = type(obj)
        name = f"{getattr(kind, '__module__', '')}.{getattr(kind, '__qualname__', kind.__name__)}"
        counts[name] += 1
        sizes[name] += sys.getsizeof(obj)
    out = {"objects": counts.most_common(60), "object_bytes": sizes.most_common(60),
           "tasks": len(asyncio.all_tasks())}
    if tracemalloc.is_tracing():
        snapshot = tracemalloc.take_snapshot()
        depth = int(os.environ.get("PYTHONTRACEMALLOC", "1"))
        out["traced"] = [(str(stat.traceback.format(limit=depth)), stat.size, stat.count)
                         for stat in snapshot.statistics("traceback")[:80]]
        out["traced_total"] = sum(stat.size for stat in snapshot.statistics("filename"))
    body = json.dumps(out).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


STALLS = os.environ.get("BENCH_STALLS") == "1"


async def _stalls(send) -> None:
    """The garbage collections and event-loop stalls recorded so far (bench/stalls.py), as JSON."""
    import json

    body = json.dumps(list(stalls.events)).encode()
    stalls.events.clear()  # each answer: what happened since the last one
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _full_pass(send) -> None:
    """What the collector's automatic full pass costs in this process now: one
    `gc.collect()` (generation 2, as Python makes it; frozen objects are not
    walked, queueapp/live/collector.py), its wall and CPU ms and the objects it
    walked, as JSON."""
    import gc
    import json

    walked = sum(len(gc.get_objects(generation)) for generation in range(3))
    started, cpu = time.perf_counter(), time.thread_time()
    gc.collect()
    body = json.dumps({"wall_ms": (time.perf_counter() - started) * 1000, "cpu_ms": (time.thread_time() - cpu) * 1000,
                       "walked": walked, "frozen": gc.get_freeze_count()}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def application(scope, receive, send):
    if STALLS:
        stalls.install()  # (idempotent: the first request or socket starts the loop watcher)
    if scope["type"] != "http" or not scope["path"].startswith("/bench/"):
        return await real_application(scope, receive, send)
    if scope["path"] == "/bench/stalls" and dict(scope["headers"]).get(b"x-bench-key") == BENCH_KEY:
        return await _stalls(send)
    if scope["path"] == "/bench/full-pass" and dict(scope["headers"]).get(b"x-bench-key") == BENCH_KEY:
        return await _full_pass(send)
    if scope["path"] == "/bench/bare-healthz":
        return await bare_handler({**scope, "path": "/healthz", "raw_path": b"/healthz"}, receive, send)
    if scope["path"] == "/bench/memory" and dict(scope["headers"]).get(b"x-bench-key") == BENCH_KEY:
        return await _memory(send)
    message = await receive()
    while message["type"] == "http.request" and message.get("more_body"):
        message = await receive()
    parts = scope["path"].strip("/").split("/")  # bench/<action>/<counter_id>
    action, counter = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
    if dict(scope["headers"]).get(b"x-bench-key") != BENCH_KEY or action not in ACTIONS or not counter.isdigit():
        status, body = 403, b"forbidden"
    else:
        # As the app's handler runs a view (config/asgi_handler.py): on a
        # request thread of its own, not on the process-wide one the live
        # screens' reads use.
        app_started = time.perf_counter()
        thread = _idle_threads.pop() if _idle_threads else RequestThread()
        precedence.request_started()  # counted as the app's handler counts a request
        try:
            async with ThreadSensitiveContext(executor=thread):
                result = await sync_to_async(_run, thread_sensitive=True)(action, int(counter))
        finally:
            precedence.request_finished()
            if thread.idle:  # (a call left running by a cancelled request: that thread is dropped)
                _idle_threads.append(thread)
        # The time inside the app, after the server handed it the request:
        # the rest of what the client measures is the server's accept and parse.
        status, body = 200, f"{result} app_ms={(time.perf_counter() - app_started) * 1000:.0f}".encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
