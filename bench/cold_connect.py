"""Benchmark: only the cold connect, several server set-ups in turn (issue 9).

    .venv/bin/python bench/cold_connect.py --screens 3000 --rounds 2 --bare \\
        --variants daphne,daphne/1024+20,daphne/1024,uvicorn/50,uvicorn

N patient screens at once (bench/restart.py's phones: htmx 4's back-off, 10 s
open timeout) against one server after another, on the seeded queue of an
earlier bench/restart.py or bench/live_fanout.py run (BENCH_DATABASE_URL,
BENCH_REDIS_URL). A variant is `daphne` or `uvicorn`, optionally
`/<listen backlog>` (daphne: Twisted's 50; uvicorn: 2048) and, for daphne,
`+<connections taken from the listen queue per loop turn>`
(LIVE_ACCEPTS_PER_TURN), and optionally `:KEY=VALUE[;KEY=VALUE]` for the
server's environment (an A/B of a setting: `daphne/1024+20:LIVE_LEAN_CONNECTIONS=0`). Per run: screens per second until every one shows
its right position; server CPU per screen; where the server's event-loop
thread spent the wall time (on a CPU, runnable but waiting for one, asleep:
from /proc/<pid>/task/<pid>/schedstat, so a loaded machine shows as waiting,
not asleep); failed attempts; how many phones first opened in each second (a
SYN dropped by a full listen queue is retried by TCP after 1, 3, 7 s). --bare
measures a bare `websockets` server with the same client first, each round.
--clients websockets,lean runs each set-up with bench/restart.py's phones
(the `websockets` library) and with bench/lean_client.py's, whose client
costs less than the server it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.live_fanout import (  # noqa: E402
    HOST, Server, bench_env, cpu_seconds, existing_ids, http_post, raise_file_limit, setup_django,
)
from bench.restart import Phone, Stats, bare_connect_rate, expected_positions, phone_runner, until_right  # noqa: E402


def start(variant: str) -> Server:
    variant, _, settings = variant.partition(":")
    env = dict(pair.split("=", 1) for pair in settings.split(";") if pair)
    variant, _, accepts = variant.partition("+")
    kind, _, backlog = variant.partition("/")
    name = f"cold-{kind}-{backlog or 'default'}-{accepts or 'unbounded'}"
    if kind == "daphne":
        return Server("pubsub", extra_args=(), name=name, backlog=int(backlog) if backlog else None,
                      extra_env={"LIVE_ACCEPTS_PER_TURN": accepts or "0", **env})
    return Server("pubsub", extra_args=("--backlog", backlog) if backlog else (), name=name, kind=kind,
                  extra_env=env)


def loop_thread(pid: int) -> tuple[float, float]:
    """Seconds the process's main thread has run, and waited runnable."""
    with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
        run, wait, _ = f.read().split()
    return int(run) / 1e9, int(wait) / 1e9


async def one(variant: str, ids: dict, n: int, profile: str = "", client: str = "websockets") -> str:
    server = start(variant)
    spy = None
    try:
        await http_post(server.port, f"/bench/complete/{ids['small']}", server.key)  # warm up
        expected = await asyncio.to_thread(expected_positions, ids["long"])
        tokens = list(expected)[:n]
        phones = [Phone(t, 0) for t in tokens]
        stats = Stats()
        load = os.getloadavg()[0]
        if profile:  # the server's event loop during the burst (collapsed stacks, GIL holder only)
            spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(server.proc.pid),
                                    "-o", profile, "-f", "raw", "--gil", "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            await asyncio.sleep(1)
        sched0, cpu0, t0 = loop_thread(server.proc.pid), cpu_seconds(server.proc.pid), time.monotonic()
        for p in phones:
            p.task = asyncio.get_running_loop().create_task(
                phone_runner(client, p, HOST, server.port, "/ws/ticket/{token}/", stats))
        first: dict[str, float] = {}

        async def watch() -> None:
            while True:
                now = time.monotonic() - t0
                for p in phones:
                    if p.open and p.token not in first:
                        first[p.token] = now
                await asyncio.sleep(0.05)

        watcher = asyncio.get_running_loop().create_task(watch())
        took, _ = await until_right(phones, {t: expected[t] for t in tokens}, 120, t0)
        wall, cpu = time.monotonic() - t0, cpu_seconds(server.proc.pid) - cpu0
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        run, wait = (b - a for a, b in zip(sched0, loop_thread(server.proc.pid)))
        watcher.cancel()
        for p in phones:
            p.task.cancel()
        await asyncio.gather(watcher, *(p.task for p in phones), return_exceptions=True)
        opens = list(first.values())
        per_second = [sum(1 for x in opens if s <= x < s + 1) for s in range(int(max(opens, default=0)) + 1)]
        rate = f"{n / took:.0f}/s ({took:.1f} s)" if took else "NOT all right after 120 s"
        return (f"{variant} ({client} client): {rate}; server CPU {cpu / n * 1000:.2f} ms per screen; loop thread on CPU "
                f"{run / wall:.0%}, runnable waiting {wait / wall:.0%}, asleep {(wall - run - wait) / wall:.0%}; "
                f"load {load:.1f} -> {os.getloadavg()[0]:.1f}; failed attempts {dict(stats.failures)}; "
                f"first opens per second {per_second}")
    finally:
        server.stop()


async def main(args) -> None:
    raise_file_limit()
    await asyncio.to_thread(setup_django, bench_env("pubsub"), False)
    ids = await asyncio.to_thread(existing_ids, args.screens + 200)
    for _ in range(args.rounds):
        for client in args.clients:
            if args.bare:
                print(f"bare websockets server, {client} client: {await bare_connect_rate(args.screens, client):.0f}/s",
                      flush=True)
            for variant in args.variants:
                print(await one(variant, ids, args.screens, args.profile, client), flush=True)
                await asyncio.sleep(1)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--screens", type=int, default=3000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--bare", action="store_true", help="a bare websockets server first, each round")
    p.add_argument("--variants", type=lambda s: s.split(","), default=["daphne", "daphne/1024+20", "daphne/1024"])
    p.add_argument("--clients", type=lambda s: s.split(","), default=["websockets"],
                   help="the phones' client, each in turn: websockets (bench/restart.py's) and/or lean "
                        "(bench/lean_client.py: light, so the client is not what a burst waits on)")
    p.add_argument("--profile", default="", metavar="FILE",
                   help="record each server's burst with py-spy into FILE (collapsed stacks; the last variant's stays)")
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
