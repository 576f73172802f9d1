"""What can hold a process during a fan-out round, recorded with wall-clock times
(bench only): every garbage collection (generation, duration, objects
collected) through `gc.callbacks`, and every stall of the event loop (a 5 ms
sleep that woke late by more than STALL_MS). bench/live_fanout.py installs it
in its own client process and, with BENCH_STALLS=1, the server under test does
too (bench/bench_asgi.py, `/bench/stalls`), so a slow round can be laid beside
what each side was doing in it.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import time

STALL_MS = 20.0  # a loop wake-up this much later than asked counts as a stall
TICK = 0.005

# (wall start, seconds, what) per event: what = "gc0".."gc2 collected=N" or "loop"
events: collections.deque = collections.deque(maxlen=20_000)
_gc_started: list[float] = [0.0, 0.0, 0.0]  # wall, perf_counter, thread CPU of the collection running now
_monitor: asyncio.Task | None = None


def _on_gc(phase: str, info: dict) -> None:
    if phase == "start":
        _gc_started[0], _gc_started[1], _gc_started[2] = time.time(), time.perf_counter(), time.thread_time()
    else:  # the CPU time tells the collection's own cost from the machine taking the core away
        events.append((_gc_started[0], time.perf_counter() - _gc_started[1],
                       f"gc{info['generation']} cpu={(time.thread_time() - _gc_started[2]) * 1000:.0f}ms "
                       f"collected={info['collected']}"))


async def _watch_loop() -> None:
    while True:
        asked = time.perf_counter()
        await asyncio.sleep(TICK)
        late = time.perf_counter() - asked - TICK
        if late * 1000 > STALL_MS:
            events.append((time.time() - late - TICK, late, "loop"))


def install() -> None:
    """Start recording (idempotent); call from inside the event loop to watch it."""
    global _monitor
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    if _monitor is None or _monitor.done():
        _monitor = loop.create_task(_watch_loop())


def between(start: float, end: float) -> list[tuple[float, float, str]]:
    """The events that overlap [start, end] (wall seconds)."""
    return [e for e in events if e[0] <= end and e[0] + e[1] >= start]


def describe(found: list[tuple[float, float, str]], origin: float, *, gc_ms: float = 5.0,
             loop_ms: float = 100.0) -> str:
    """One line: each collection of at least `gc_ms` (wall) as `gcN@start+wall(cpu N)`, each loop
    stall of at least `loop_ms` as `loop@start+wall` (ms from `origin`), then the count and total
    of the smaller ones of each kind (a busy loop stalls 20-50 ms at a time doing its own work)."""
    out, small = [], {}
    for start, dur, what in sorted(found):
        kind = "loop" if what == "loop" else "gc"
        if dur * 1000 >= (loop_ms if kind == "loop" else gc_ms):
            cpu = f"(cpu {what.split()[1][4:]})" if kind == "gc" else ""
            out.append(f"{what.split()[0]}@{(start - origin) * 1000:.0f}+{dur * 1000:.0f}{cpu}")
        else:
            count, total = small.get(kind, (0, 0.0))
            small[kind] = (count + 1, total + dur)
    out += [f"{count} smaller {kind} ({total * 1000:.0f} ms)" for kind, (count, total) in small.items()]
    return ", ".join(out) or "none"
