"""Benchmark: where a burst of connecting screens spends its time (issue 9, connect).

    .venv/bin/python bench/connect_phases.py --screens 3000 --at-once 3000 \\
        --variants "bare,daphne/1024+20:GC_YOUNG_THRESHOLD=0,daphne/1024+20" [--spy /tmp/phases_]

For each variant (`bare`: the bare `websockets` server of bench/restart.py, or
a server as bench/cold_connect.py names them): a fresh server; two phones one
after the other (what the first screen of a cold process costs against the
second: server CPU, time to open and to the first frame); then N phones with
at most --at-once connecting at a time, each kept open until all have their
first frame (as bench/cold_connect.py's phones stay), without back-off or
open timeout (60 s), so the figure is the work, not the retries: the server's
CPU per screen and when the phones opened, from the burst's start (min, p10,
p50, p90, max). With --spy, py-spy records the server (--idle --threads,
speedscope) during the burst and a timeline per half second says what its
event-loop thread and its database thread did: waiting in `select` (nothing
to do), HTTP/WebSocket handshakes, our consumers, the batched ticket reads.
On the seeded queue of an earlier bench run (BENCH_DATABASE_URL, BENCH_REDIS_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cold_connect import start  # noqa: E402
from bench.live_fanout import (  # noqa: E402
    HOST, PY, ROOT, bench_env, cpu_seconds, existing_ids, frame_template, free_port, raise_file_limit, setup_django,
    wait_port,
)
from bench.restart import expected_positions  # noqa: E402


class Burst:
    """Phones that stay open until every one of them has its first frame."""

    def __init__(self, n: int):
        self.n, self.got, self.all_in = n, 0, asyncio.Event()

    async def phone(self, url: str, origin: str, hold: bool = True) -> tuple[float, float]:
        from websockets.asyncio.client import connect

        started = time.perf_counter()
        async with connect(url, origin=origin, open_timeout=60, ping_interval=None, compression=None) as ws:
            opened = time.perf_counter() - started
            await ws.recv()
            took = opened, time.perf_counter() - started
            if hold:
                self.got += 1
                if self.got == self.n:
                    self.all_in.set()
                await self.all_in.wait()
            return took


def spread(values: list[float]) -> str:
    values = sorted(values)
    return " ".join(f"{values[int(q * (len(values) - 1))]:.2f}" for q in (0, .1, .5, .9, 1))


def timeline(path: str) -> list[str]:
    """What the loop thread and the database thread did, per half second."""
    data = json.loads(Path(path).read_text())
    frames, out = data["shared"]["frames"], []
    for profile in data["profiles"]:
        if "MainThread" not in profile["name"] and "ThreadPoolExecutor" not in profile["name"]:
            continue
        out.append(f"  {profile['name']}")
        buckets, t = collections.defaultdict(collections.Counter), 0.0
        for sample, weight in zip(profile["samples"], profile["weights"]):
            names = [frames[i]["name"] for i in sample]
            text = ";".join(names)
            if not names or ("select" in names[-1] and "Selector" in names[-1]):
                kind = "idle"
            elif "ticket_row_views" in text or "waiting_line" in text:
                kind = "ticket/line reads"
            elif "thread_handler" in text:
                kind = "other database work"
            elif "ThreadPoolExecutor" in profile["name"]:
                kind = "idle"
            elif "processHandshake" in text or "HTTPChannel" in text or "Port.doRead" in text:
                kind = "handshakes"
            elif "Consumer" in text or "Batch" in text or "Admission" in text:
                kind = "consumers"
            else:
                kind = "other"
            buckets[int(t * 2)][kind] += 1
            t += weight
        for b in sorted(buckets):
            out.append(f"    {b / 2:5.1f} s " + ", ".join(f"{k} {v}" for k, v in buckets[b].most_common()))
    return out


async def one(variant: str, tokens: list[str], args) -> list[str]:
    bare = variant == "bare"
    if bare:
        Path("/tmp/bench_phases_frame.txt").write_text(await asyncio.to_thread(frame_template))
        port = free_port()
        proc = subprocess.Popen([PY, str(ROOT / "bench" / "live_fanout.py"), "--bare-server", str(port),
                                 "/tmp/bench_phases_frame.txt"], cwd=ROOT, env=bench_env())
        wait_port(port)
        pid, url, stop = proc.pid, f"ws://{HOST}:{port}/s?start={{}}", proc.terminate
        names = [str(1000 + i) for i in range(args.screens + 2)]
    else:
        server = start(variant)
        pid, port, stop = server.proc.pid, server.port, server.stop
        url, names = f"ws://{HOST}:{port}/ws/ticket/{{}}/", tokens
    origin, out = f"http://{HOST}:{port}", [variant]
    try:
        for i in range(2):
            cpu = cpu_seconds(pid)
            opened, took = await Burst(1).phone(url.format(names[i]), origin, hold=False)
            out.append(f"  phone {i + 1} alone: open {opened * 1000:.0f} ms, first frame {took * 1000:.0f} ms, "
                       f"server CPU {(cpu_seconds(pid) - cpu) * 1000:.0f} ms")
        spy = None
        if args.spy:
            spy = subprocess.Popen([str(Path(PY).with_name("py-spy")), "record", "-p", str(pid), "-r", "250", "-o",
                                    args.spy + variant.replace("/", "_").replace(":", "_"), "-f", "speedscope",
                                    "--threads", "--idle", "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            await asyncio.sleep(1)
        burst, gate = Burst(args.screens), asyncio.Semaphore(args.at_once)

        async def limited(name: str) -> tuple[float, float]:
            async with gate:
                return await burst.phone(url.format(name), origin)

        load, cpu, t0 = os.getloadavg()[0], cpu_seconds(pid), time.monotonic()
        results = await asyncio.gather(*(limited(name) for name in names[2:2 + args.screens]))
        cpu, wall = cpu_seconds(pid) - cpu, time.monotonic() - t0
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        out.append(f"  {args.screens} screens, at most {args.at_once} connecting: {args.screens / wall:.0f}/s, "
                   f"server CPU {cpu / args.screens * 1000:.3f} ms per screen; opened at (s, min p10 p50 p90 max) "
                   f"{spread([r[0] for r in results])}; first frame at {spread([r[1] for r in results])}; "
                   f"load {load:.1f} -> {os.getloadavg()[0]:.1f}")
        if spy is not None:
            out += timeline(args.spy + variant.replace("/", "_").replace(":", "_"))
    finally:
        stop()
    return out


async def main(args) -> None:
    raise_file_limit()
    await asyncio.to_thread(setup_django, bench_env("pubsub"), False)
    ids = await asyncio.to_thread(existing_ids, args.screens + 200)
    tokens = list(await asyncio.to_thread(expected_positions, ids["long"]))
    for variant in args.variants:
        print("\n".join(await one(variant, tokens, args)), flush=True)
        await asyncio.sleep(1)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--screens", type=int, default=2000)
    p.add_argument("--at-once", type=int, default=300, help="phones connecting at a time, at most")
    p.add_argument("--variants", type=lambda s: s.split(","), default=["bare", "daphne/1024+20"])
    p.add_argument("--spy", default="", metavar="PREFIX", help="py-spy each server's burst into PREFIX<variant>")
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
