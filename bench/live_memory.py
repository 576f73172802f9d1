"""Benchmark: what one idle patient screen holds in a daphne process (issue 9).

    .venv/bin/python bench/live_memory.py --screens 2000 --variant stock:LIVE_LEAN_SCREENS=0 \\
        --variant lean:LIVE_LEAN_SCREENS=1
    .venv/bin/python bench/live_memory.py --screens 1000 --trace 8   # where the bytes were allocated

On the seeded queue of an earlier bench/live_fanout.py run (BENCH_DATABASE_URL,
BENCH_REDIS_URL; `--reuse` there). Per variant, one daphne: one screen first
(the first-use costs of the path: imports, caches, the queue's line), then N/2
and N screens, RSS after each; prints the RSS slope per screen between N/2 and N
(bench/live_fanout.py's "slope") and the plain RSS delta / N from one screen,
and the Python objects per screen by type between the two (gc); with --trace,
the process runs under tracemalloc with that many frames and the top
allocation sites per screen are printed too (tracemalloc slows the server and
adds its own memory: use it to find, RSS without it to measure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.live_fanout import (  # noqa: E402
    HOST, Server, bench_env, close_screens, existing_ids, http_get, open_screens, parse_variant,
    raise_file_limit, rss_kb, setup_django,
)


async def probe(server: Server) -> dict:
    """The server's /bench/memory answer (slow under tracemalloc: a 600 s bound, not 30)."""
    return json.loads(await http_get(server.port, "/bench/memory", server.key, 600))


async def one(name: str, env: dict, tokens: list[str], args) -> None:
    if args.trace:
        env = {**env, "PYTHONTRACEMALLOC": str(args.trace)}
    server = Server("pubsub", extra_env=env, name=f"memory-{name}")
    url, origin = f"ws://{HOST}:{server.port}/ws/ticket/{{}}/", f"http://{HOST}:{server.port}"
    screens = []
    try:
        screens += await open_screens([url.format(tokens[0])], origin)
        await asyncio.sleep(1)
        rss0 = rss_kb(server.proc.pid)
        half = len(tokens) // 2
        screens += await open_screens([url.format(t) for t in tokens[1:half]], origin)
        await asyncio.sleep(2)
        rss_half, mid = rss_kb(server.proc.pid), await probe(server)
        started = time.monotonic()
        screens += await open_screens([url.format(t) for t in tokens[half:]], origin)
        connect_s = time.monotonic() - started
        await asyncio.sleep(2)
        rss_all, end = rss_kb(server.proc.pid), await probe(server)
        more = len(tokens) - half
        print(f"{name}: {(rss_all - rss_half) / more:.1f} KB RSS per screen between {half} and {len(tokens)} "
              f"(slope); {(rss_all - rss0) / (len(tokens) - 1):.1f} KB per screen from 1 screen; "
              f"RSS {rss0 / 1024:.0f} -> {rss_all / 1024:.0f} MB; tasks {mid['tasks']} -> {end['tasks']}; "
              f"second half connected in {connect_s:.1f} s; load {os.getloadavg()[0]:.1f}", flush=True)
        for key, unit in (("objects", ""), ("object_bytes", " B")):
            before, after = dict(mid[key]), dict(end[key])
            per = sorted(((after.get(k, 0) - before.get(k, 0)) / more, k) for k in after)
            shown = [f"{k.rsplit('.', 1)[-1] if len(k) > 40 else k} {v:.2f}{unit}" for v, k in reversed(per) if v >= 0.5]
            print(f"  {key} per screen: {', '.join(shown[:args.top])}", flush=True)
        if "traced" in end:
            before = {tb: size for tb, size, _ in mid["traced"]}
            print(f"  traced per screen: {(end['traced_total'] - mid['traced_total']) / more:.0f} B", flush=True)
            for tb, size, count in end["traced"][:args.top]:
                grown = (size - before.get(tb, 0)) / more
                if grown >= 50:
                    print(f"  {grown:7.0f} B  {count / len(tokens):5.1f} blocks  "
                          f"{' <- '.join(reversed([line.strip() for line in eval(tb) if line.strip() and not line.startswith('    ')]))[:500]}",  # noqa: S307
                          flush=True)
    finally:
        await close_screens(screens)
        server.stop()


async def main(args) -> None:
    raise_file_limit()
    await asyncio.to_thread(setup_django, bench_env("pubsub"), False)
    ids = await asyncio.to_thread(existing_ids, args.screens + 200)
    from queueapp.selectors import waiting_tickets

    tokens = await asyncio.to_thread(lambda: list(waiting_tickets(ids["long"]).values_list("token", flat=True)[
        100:100 + args.screens]))
    for _ in range(args.repeat):
        for name, env in args.variant or [("as is", {})]:
            await one(name, env, tokens, args)
            await asyncio.sleep(1)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--screens", type=int, default=2000)
    p.add_argument("--trace", type=int, default=0, help="frames per tracemalloc traceback (0: off)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--variant", action="append", type=parse_variant, metavar="NAME:KEY=VALUE[,KEY=VALUE]")
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
