"""Garbage collection that stays out of a fan-out's way (a server process with live screens).

Python's cyclic collector makes its full pass (generation 2) when the objects
that survived into the old generation since the last full pass reach a quarter
of those already there. That is driven by allocation, so it falls in the
busiest moment, a fan-out to thousands of screens, and it walks every tracked
object of the process, the open screens' connections included. At 5,000
screens `bench/live_fanout.py --stalls` caught such a pass inside a measured
round, holding the event loop for most of the round's extra time
(docs/benchmarks.md, "Development, session 9 (`fanout`)").

So every maintenance tick of a hub (a few seconds) moves what is alive into
the permanent generation (`gc.freeze()`: a list splice, no walk): the
automatic passes then walk only what is younger than the last tick, a few
milliseconds' worth. What a freeze hides from the collector (a connection that
closes later, its objects held in reference cycles) is reclaimed by a full
pass over everything (`gc.unfreeze()`, `gc.collect()`, `gc.freeze()`), made at
a moment of our choosing, QUIET seconds after the last fan-out with no HTTP
request running (or, OVERDUE seconds late, at a tick without a fan-out): once
the frozen objects have grown by half since the last full pass (counted every
COUNT_EVERY seconds), or RECLAIM_EVERY seconds after it. A call can still meet that pass, but only by
chance (one pass of a few hundred ms every few minutes), not because the call
itself allocated the pass into being.

A fresh process's first full pass was due at once, and ran in the middle of
a cold connect of 5,000 screens: about 0.3 s of its event loop (py-spy,
bench/connect_phases.py, session 13). Now the warm-up freezes what the process holds when it starts,
without that pass (`freeze_at_start`: a full pass over a fresh daphne's
~130,000 objects costs ~80 ms on the loop, the freeze microseconds), and the
first full pass comes when due like any other.

Between ticks, while screens connect and no HTTP request runs, a young or
middle pass that freed nothing is followed by a freeze. In a burst each connection's objects live for a while (the handshake
in flight, then the open screen): the young passes found nothing to free, and
the middle one walked all they had kept (~500,000 objects, 319 ms of the event
loop in a cold connect of 5,000 screens, gc callbacks, session 13). Frozen,
they are walked once, by the young pass.

Only under daphne (the Twisted reactor running): in-process tests and
management commands keep Python's own collector.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time

from . import precedence

log = logging.getLogger(__name__)

RECLAIM_GROWTH = 1.5  # a full pass once the frozen objects reach this many times those after the last
RECLAIM_AT_LEAST = 100_000  # ... and at least this many more (a small process would pass too often)
RECLAIM_EVERY = 600.0  # seconds: a full pass at least this often (garbage that does not grow the count)
# A due pass waits for this many seconds without a fan-out (and no HTTP request running): "not
# fanning at this instant" was not enough, a call heard a moment later waited behind the pass
# (a 292 ms pass inside a measured round, docs/benchmarks.md, session 9 `fanout`).
QUIET = 3.0
OVERDUE = 600.0  # seconds past due after which the pass runs at the next tick without a fan-out, requests or not
# seconds between counts of the frozen objects: counting walks them all (~7 ms for 500,000), too much for every tick
COUNT_EVERY = 30.0

_fanning = 0  # fan-outs running now in this process (their loop may be between slices)
_last_fan_out = 0.0  # monotonic time the last fan-out ended
_last_connect = 0.0  # monotonic time a screen last connected
_loop = None  # the event loop a freeze is asked on (freeze_at_start)
_freeze_asked = False
_due_since: float | None = None  # when the pending full pass came due
_last_reclaim: float | None = None  # monotonic time of the last full pass; None: never frozen yet
_frozen_after_reclaim = 0
_counted_at = 0.0  # monotonic time of the last count of the frozen objects
reclaims = 0  # full passes made (tests, metrics)


def enabled() -> bool:
    from django.conf import settings

    if not settings.LIVE_GC_FREEZE:
        return False
    reactor = sys.modules.get("twisted.internet.reactor")
    return reactor is not None and getattr(reactor, "running", False)


def fan_out_started() -> None:
    global _fanning
    _fanning += 1


def fan_out_finished() -> None:
    global _fanning, _last_fan_out
    _fanning = max(0, _fanning - 1)
    _last_fan_out = time.monotonic()


def screen_connected() -> None:
    """A screen connected: for QUIET s, a young pass that frees nothing is followed by a freeze."""
    global _last_connect
    _last_connect = time.monotonic()


def _after_collection(phase: str, info: dict) -> None:
    """gc callback: a young or middle pass that freed nothing while screens connect walked objects
    that all live on (a burst's connections in flight): a freeze, soon, on the loop (callbacks run
    in any thread). Only while screens connect and no HTTP request runs: a freeze keeps what
    dies later in a reference cycle (a request's objects can) until the next full pass, and under
    HTTP traffic that pass is far off and then long. (The waiting room's servers' CPU an arrival,
    measured after its crowd, rose with this session's changes, 6.0 -> 11-19 ms; this limit was
    added for that reason, but it did not bring the figure back: docs/benchmarks.md, session 13.)"""
    global _freeze_asked
    if (phase == "stop" and info["generation"] < 2 and not info["collected"] and not _freeze_asked
            and not precedence.http_running() and time.monotonic() - _last_connect < QUIET):
        _freeze_asked = True
        try:
            _loop.call_soon_threadsafe(_freeze_now)
        except RuntimeError:  # the loop has closed (the process is exiting)
            pass


def _freeze_now() -> None:
    global _freeze_asked
    _freeze_asked = False
    gc.freeze()


def freeze_at_start() -> None:
    """What the process holds once started (modules, templates, settings) frozen without a pass over
    it, and counted as if after one: the next full pass comes when due (growth, RECLAIM_EVERY).
    From then on a young pass that frees nothing is followed by a freeze (`_after_collection`).
    On the process's event loop."""
    global _last_reclaim, _frozen_after_reclaim, _counted_at, _loop
    if enabled() and _last_reclaim is None:
        gc.freeze()
        _last_reclaim = _counted_at = time.monotonic()
        _frozen_after_reclaim = gc.get_freeze_count()
        _loop = asyncio.get_running_loop()
        gc.callbacks.append(_after_collection)


def _full_pass(now: float) -> None:
    global _last_reclaim, _frozen_after_reclaim, _counted_at, _due_since, reclaims
    started = time.perf_counter()
    gc.unfreeze()
    found = gc.collect()
    gc.freeze()
    _last_reclaim, _frozen_after_reclaim, _counted_at, _due_since = now, gc.get_freeze_count(), now, None
    reclaims += 1
    log.debug("full collection: %d unreachable, %d objects frozen, %.0f ms",
              found, _frozen_after_reclaim, (time.perf_counter() - started) * 1000)


def tick(now: float | None = None) -> None:
    """Freeze what survived since the last tick; a full pass instead if one is due and nothing runs."""
    global _counted_at, _due_since
    now = time.monotonic() if now is None else now
    busy = _fanning or precedence.http_running()
    quiet = not busy and now - _last_fan_out >= QUIET
    if _due_since is None:
        if _last_reclaim is None or now - _last_reclaim >= RECLAIM_EVERY:
            _due_since = now
        elif not busy and now - _counted_at >= COUNT_EVERY:
            _counted_at = now
            frozen = gc.get_freeze_count()
            if frozen >= max(_frozen_after_reclaim * RECLAIM_GROWTH, _frozen_after_reclaim + RECLAIM_AT_LEAST):
                _due_since = now
    # (overdue, requests do not hold it: a request counted and never finished must not stop every pass)
    if _due_since is not None and (quiet or (not _fanning and now - _due_since >= OVERDUE)):
        _full_pass(now)
        return
    if _last_reclaim is not None:  # (before the first full pass nothing is frozen)
        gc.freeze()
