"""Benchmark: a fresh server process's first requests against its next ones.

    .venv/bin/python bench/first_request.py --servers 3 --settle 1.5

After a deploy or a crash the first request to a new process is often a staff
click. For each of --servers fresh daphne processes (bench/live_fanout.py's
`Server`, on the bench database), --settle seconds after it listens (its
warm-up after listening has run by then), each path in --paths is fetched
--repeat times in turn; printed: the wall time of each fetch in order, so the
first fetch of a path stands beside the same path's later ones (the baseline,
same process, same run). The first path is the process's first request.
Each process is started twice, alternately: with config/warm.py's warm start
(WARM_START=1, the default) and without it (WARM_START=0).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.live_fanout import HOST, Server, bench_env, setup_django  # noqa: E402


def fetch(port: int, path: str) -> float:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=30) as answer:
            answer.read()
    except urllib.error.HTTPError as exc:  # (a redirect to log in, a 404: still a whole request)
        exc.read()
    return (time.perf_counter() - started) * 1000


async def main(args) -> None:
    await asyncio.to_thread(setup_django, bench_env("pubsub"), False)
    firsts = {(w, p): [] for w in ("1", "0") for p in args.paths}
    laters = {(w, p): [] for w in ("1", "0") for p in args.paths}
    for n in range(args.servers):
        for warm in ("1", "0"):
            server = Server("pubsub", extra_args=(), name=f"first-request-{n}", extra_env={"WARM_START": warm})
            try:
                await asyncio.sleep(args.settle)
                for path in args.paths:
                    times = [await asyncio.to_thread(fetch, server.port, path) for _ in range(args.repeat)]
                    firsts[warm, path].append(times[0])
                    laters[warm, path].extend(times[1:])
                    print(f"process {n + 1}, WARM_START={warm}, {path}: "
                          + ", ".join(f"{t:.0f}" for t in times) + " ms", flush=True)
            finally:
                server.stop()
    for warm in ("1", "0"):
        for path in args.paths:
            print(f"WARM_START={warm} {path}: first fetch in a process median "
                  f"{statistics.median(firsts[warm, path]):.0f} ms (each: "
                  f"{', '.join(f'{t:.0f}' for t in firsts[warm, path])}); the later ones median "
                  f"{statistics.median(laters[warm, path]):.0f} ms", flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", type=int, default=3)
    p.add_argument("--settle", type=float, default=1.5, help="seconds between listening and the first request")
    p.add_argument("--repeat", type=int, default=4, help="fetches of each path per process")
    p.add_argument("--paths", type=lambda s: s.split(","), default=["/login/", "/healthz", "/"])
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
