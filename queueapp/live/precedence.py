"""Staff first: HTTP requests go before connecting public screens.

During a reconnect storm (thousands of phones coming back after a restart)
the process's event loop, its one database thread and the GIL are shared by
the screens' handshakes, their batched lookups and snapshots, and by staff
clicking "call next". A screen can wait a little without anybody noticing
(its socket is open, its frame comes a few hundred milliseconds later); a
staff click cannot. So while any HTTP request of this process is running
(`config/asgi_handler.py` counts them: staff actions, pages, the API), the
screens' connect work that this process controls waits:

- the admission of connecting screens (`hub.Admission`) lets none in;
- a batched lookup (`hub.Batch`: tickets, displays, consoles) does not start;
- a public screen's handshake is not answered yet (`LiveConsumer.connect`).

What this cannot reach (docs/benchmarks.md, issue 9 fourth pass): in a storm
most of daphne's loop is Twisted's and autobahn's handshake parsing, before
any of our code runs, and the first staff click after a restart queues in
the kernel behind the phones' connections (daphne's listen backlog is 50).

And while an HTTP request runs, the interpreter switches threads every
`SWITCH_WHILE_HTTP` seconds instead of Python's 5 ms: a request's thread
wants the GIL back after every database round trip, and with the loop
thread busy with handshakes it waited up to 5 ms each time (a call-next makes
about 15 of them).

Never for long: a wait ends after `MOST_HOLD` seconds however busy HTTP is,
and after a wait that ran out, screens go unheld for as long again; so under
steady staff traffic screens still get at least half of the time. Staff
consoles (sockets) skip the admission queue.
"""

from __future__ import annotations

import asyncio
import sys
import time

MOST_HOLD = 0.1  # seconds one wait for HTTP to finish may last, at most; then as long unheld
POLL = 0.002  # seconds between looks while holding
SWITCH_WHILE_HTTP = 0.0005  # the interpreter's thread switch interval while HTTP runs (Python's: 0.005)

_running = 0  # HTTP requests of this process being handled now
_unheld_until = 0.0  # after a hold that ran out: screens go first until then
_switch_before: float | None = None
held_seconds = 0.0  # total time screens' work waited for HTTP (metrics, tests)


def _enabled() -> bool:
    global _on
    if _on is None:
        from django.conf import settings

        _on = settings.LIVE_STAFF_FIRST
    return _on


_on: bool | None = None


def request_started() -> None:
    global _running, _switch_before
    if not _enabled():
        return
    _running += 1
    if _running == 1 and _switch_before is None:
        _switch_before = sys.getswitchinterval()
        sys.setswitchinterval(min(_switch_before, SWITCH_WHILE_HTTP))


def request_finished() -> None:
    global _running, _switch_before
    _running = max(0, _running - 1)
    if _running == 0 and _switch_before is not None:
        sys.setswitchinterval(_switch_before)
        _switch_before = None


def http_running() -> int:
    return _running


async def after_http() -> None:
    """Return once no HTTP request runs, or after MOST_HOLD seconds."""
    global held_seconds, _unheld_until
    if not _running:
        return
    started = time.monotonic()
    if started < _unheld_until:
        return
    deadline = started + MOST_HOLD
    while _running and time.monotonic() < deadline:
        await asyncio.sleep(POLL)
    now = time.monotonic()
    held_seconds += now - started
    if _running:  # ran out: the screens' turn
        _unheld_until = now + MOST_HOLD
