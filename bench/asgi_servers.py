"""Benchmark: the same app under daphne and under uvicorn, side by side in one run.

    .venv/bin/python bench/asgi_servers.py                          # 5,000 screens, 3,000 requests, 2 rounds
    .venv/bin/python bench/asgi_servers.py --screens 500 --requests 500 --rounds 1   # quick check

PostgreSQL `queueapp_bench` and Redis db 6 (BENCH_DATABASE_URL, BENCH_REDIS_URL), the
queue seeded by bench/live_fanout.py or bench/restart.py (topped up here), the pub/sub
layer, one server process per measurement on bench/bench_asgi.py: daphne as `make run`
starts it (default options), uvicorn 0.54 (`--ws websockets --lifespan off`, its
default access log like daphne's). For each round, each server in turn:

1. HTTP, --requests each, --concurrency in flight from one aiohttp client:
   the bare Django view (`/bench/bare-healthz`, no middleware) and `/healthz` (the
   whole chain): requests/s, p50/p99, server CPU per request;
2. staff call-next on a quiet server (another queue, over HTTP), ~5 s;
3. a cold connect of --screens patient screens at once (the restart bench's phones,
   htmx 4's back-off), with staff calling next meanwhile: screens/s until every one
   shows its right position, server CPU per screen, failed attempts, and staff
   call-next p50/p99 during the storm beside the quiet figure.
Only loopback addresses; every wait bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.live_fanout import (  # noqa: E402
    HOST, Server, bench_env, cpu_seconds, existing_ids, http_post, pct, raise_file_limit, setup_django,
)
from bench.restart import Phone, Stats, expected_positions, ms, run_phone, staff_calls, until_right  # noqa: E402


async def http_phase(server: Server, path: str, requests: int, concurrency: int) -> str:
    import aiohttp

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    todo = iter(range(requests))

    async def worker(session) -> None:
        for _ in todo:
            started = time.perf_counter()
            async with session.get(f"http://{HOST}:{server.port}{path}") as answer:
                await answer.read()
                statuses[answer.status] = statuses.get(answer.status, 0) + 1
            latencies.append(time.perf_counter() - started)

    async with aiohttp.ClientSession() as session:
        for _ in range(50):  # warm-up
            async with session.get(f"http://{HOST}:{server.port}{path}") as answer:
                await answer.read()
        cpu_before, started = cpu_seconds(server.proc.pid), time.monotonic()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        took, cpu = time.monotonic() - started, cpu_seconds(server.proc.pid) - cpu_before
    return (f"{path}: {requests / took:.0f} req/s, p50 {pct(latencies, 50) * 1000:.1f} ms, "
            f"p99 {pct(latencies, 99) * 1000:.1f} ms, server CPU {cpu / requests * 1000:.2f} ms per request, "
            f"statuses {statuses}")


async def storm_phase(server: Server, ids: dict, screens: int, quiet_seconds: float) -> list[str]:
    lines = []
    quiet: list[float] = []
    stop = asyncio.Event()
    calls = asyncio.get_running_loop().create_task(staff_calls(server, ids, stop, quiet))
    await asyncio.sleep(quiet_seconds)
    stop.set()
    await calls
    lines.append(f"staff call next, quiet: {ms(quiet)}")

    expected = await asyncio.to_thread(expected_positions, ids["long"])
    tokens = list(expected)[:screens]
    phones = [Phone(t, 0) for t in tokens]
    stats = Stats()
    storm: list[float] = []
    stop = asyncio.Event()
    calls = asyncio.get_running_loop().create_task(staff_calls(server, ids, stop, storm))
    cpu_before, started = cpu_seconds(server.proc.pid), time.monotonic()
    url, origin = f"ws://{HOST}:{server.port}/ws/ticket/{{token}}/", f"http://{HOST}:{server.port}"
    for p in phones:
        p.task = asyncio.get_running_loop().create_task(run_phone(p, [url], origin, stats))
    took, _ = await until_right(phones, {t: expected[t] for t in tokens}, 120, started)
    cpu = cpu_seconds(server.proc.pid) - cpu_before
    stop.set()
    await calls
    rate = f"{screens / took:.0f}/s ({took:.1f} s)" if took else "NOT all right after 120 s"
    lines.append(f"cold connect of {screens}: {rate}, server CPU {cpu / screens * 1000:.2f} ms per screen, "
                 f"failed attempts {dict(stats.failures)}")
    lines.append(f"staff call next during the connect storm: {ms(storm)}")
    for p in phones:
        p.task.cancel()
    await asyncio.gather(*(p.task for p in phones), return_exceptions=True)
    return lines


async def main(args) -> None:
    raise_file_limit()
    print(f"{os.cpu_count()} CPU(s); servers {args.servers}; {args.screens} screens; "
          f"{args.requests} requests x {args.concurrency} in flight; load {os.getloadavg()}", flush=True)
    await asyncio.to_thread(setup_django, bench_env("pubsub"), False)
    ids = await asyncio.to_thread(existing_ids, args.screens + 200)
    report: list[str] = []
    for round_ in range(1, args.rounds + 1):
        for kind in args.servers:
            print(f"\n=== round {round_}: {kind}", flush=True)
            server = Server("pubsub", extra_args=(), name=f"servers-{kind}", kind=kind)
            try:
                await http_post(server.port, f"/bench/complete/{ids['small']}", server.key)  # warm up
                lines = [await http_phase(server, path, args.requests, args.concurrency)
                         for path in ("/bench/bare-healthz", "/healthz")]
                lines += await storm_phase(server, ids, args.screens, args.quiet_seconds)
            finally:
                server.stop()
            for line in lines:
                print(f"  {line}", flush=True)
                report.append(f"round {round_} {kind}: {line}")
    print("\n=== summary (load average now %.2f %.2f %.2f)" % os.getloadavg())
    for line in report:
        print(line)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", default="daphne,uvicorn", type=lambda s: s.split(","))
    p.add_argument("--screens", default=5000, type=int)
    p.add_argument("--requests", default=3000, type=int)
    p.add_argument("--concurrency", default=32, type=int)
    p.add_argument("--rounds", default=2, type=int)
    p.add_argument("--quiet-seconds", default=5.0, type=float)
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
