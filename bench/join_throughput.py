"""Benchmark: joins per second over HTTP on PostgreSQL + Redis, with zero duplicate numbers.

    .venv/bin/python bench/join_throughput.py [--joins 5000] [--concurrency 64] [--servers 2]

What it does, all on loopback:
1. Recreates its own database (JOINBENCH_DATABASE_URL, default
   postgres://postgres@127.0.0.1:5432/queueapp_joinbench) and migrates it; Redis is
   JOINBENCH_REDIS_URL (default redis://127.0.0.1:6379/8), channel prefix `joinbench`.
2. Creates a location with one counter queue and a kiosk token (`manage.py create_api_token`).
3. Starts `--servers` daphne processes on consecutive ports from `--port` (the design's
   "several daphne processes behind a proxy"; the client spreads requests round-robin over
   them instead of a proxy, so no proxy cost is measured).
4. Baseline: `--joins` GET /healthz with the same client, concurrency and servers.
5. `--joins` POST /api/queues/<id>/tickets with the kiosk token.
6. Checks the database: as many tickets as 201 answers, numbers exactly 1..N (no
   duplicate, none missing), and `validate_queue_integrity` finds nothing.

Prints requests/s, latency p50/p99 and the daphne processes' CPU time per request
for both, the load average before and after, and exits non-zero if any join failed
or any number is duplicated or missing. Every wait is bounded in time; the servers
are stopped on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DAPHNE = str(Path(PYTHON).with_name("daphne"))
DATABASE_URL = os.environ.get("JOINBENCH_DATABASE_URL",
                              "postgres://postgres@127.0.0.1:5432/queueapp_joinbench")
REDIS_URL = os.environ.get("JOINBENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
SERVER_START_TIMEOUT = 60.0  # seconds for every daphne process to answer /healthz
REQUEST_TIMEOUT = 30.0  # seconds for one request
RUN_TIMEOUT = 600.0  # seconds for one whole phase (baseline or joins)

ENV = {
    **os.environ,
    "DATABASE_URL": DATABASE_URL,
    "REDIS_URL": REDIS_URL,
    "CHANNEL_PREFIX": "joinbench",
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "STATIC_MANIFEST": "false",
    "LOG_LEVEL": "WARNING",
    "PYTHONPATH": str(ROOT),
}


def recreate_database() -> None:
    import psycopg

    parts = urlsplit(DATABASE_URL)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def manage(*args: str) -> str:
    done = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def setup_django():
    os.environ.update({k: ENV[k] for k in ("DATABASE_URL", "REDIS_URL", "CHANNEL_PREFIX",
                                           "DJANGO_SETTINGS_MODULE", "STATIC_MANIFEST", "LOG_LEVEL")})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def make_queue() -> int:
    from queueapp.models import Counter, Location, Queue

    location = Location.objects.create(name="Bench Clinic", slug="bench")
    queue = Queue.objects.create(location=location, name="Bench", slug="bench", prefix="A")
    Counter.objects.create(location=location, name="Counter 1").queues.add(queue)
    return queue.pk


class Servers:
    """daphne processes on consecutive loopback ports, stopped on exit."""

    def __init__(self, count: int, first_port: int, pool_max: int):
        self.ports = [first_port + i for i in range(count)]
        self.procs: list[subprocess.Popen] = []
        env = {**ENV, "DB_POOL_MAX": str(pool_max)}
        for port in self.ports:
            self.procs.append(subprocess.Popen(
                [DAPHNE, "-b", "127.0.0.1", "-p", str(port), "--verbosity", "0",
                 "config.asgi:application"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, start_new_session=True))

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the servers have used so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        async with aiohttp.ClientSession() as session:
            for port in self.ports:
                while True:
                    if any(p.poll() is not None for p in self.procs):
                        raise RuntimeError("a daphne process exited while starting")
                    try:
                        async with session.get(f"http://127.0.0.1:{port}/healthz") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"daphne on port {port} did not answer in time")
                    await asyncio.sleep(0.2)


async def fire(urls: list[str], total: int, concurrency: int, method: str, *,
               headers: dict | None = None, json: dict | None = None) -> dict:
    """`total` requests, at most `concurrency` in flight, round-robin over `urls`."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    next_index = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_index
        while next_index < total:
            i, next_index = next_index, next_index + 1
            started = time.perf_counter()
            try:
                async with session.request(method, urls[i % len(urls)], headers=headers,
                                           json=json) as r:
                    await r.read()
                    status = r.status
            except (aiohttp.ClientError, asyncio.TimeoutError):
                status = "error"  # counted, never retried: a timed-out join may still commit
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1

    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker(session) for _ in range(concurrency))),
                               timeout=RUN_TIMEOUT)
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rate": total / elapsed,
        "elapsed": elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "statuses": statuses,
    }


def check_numbers(queue_id: int) -> tuple[int, int, int, list]:
    from django.db.models import Count

    from queueapp.integrity import validate_queue_integrity
    from queueapp.models import Queue, Ticket

    numbers = list(Ticket.objects.filter(queue_id=queue_id).values_list("number", flat=True))
    duplicates = sum(c - 1 for c in Ticket.objects.filter(queue_id=queue_id).values("business_day", "number")
                     .annotate(c=Count("id")).values_list("c", flat=True) if c > 1)
    missing = len(set(range(1, max(numbers, default=0) + 1)) - set(numbers))
    problems = validate_queue_integrity(Queue.objects.get(pk=queue_id))
    return len(numbers), duplicates, missing, problems


def line(name: str, result: dict) -> str:
    codes = ", ".join(f"{k}: {v}" for k, v in sorted(result["statuses"].items(), key=str))
    return (f"{name:<22} {result['rate']:>8.0f}/s   p50 {result['p50']:>7.1f} ms   "
            f"p99 {result['p99']:>7.1f} ms   server CPU {result['cpu_ms']:>5.1f} ms/request   "
            f"({codes}; {result['elapsed']:.1f} s)")


async def run(args, queue_id: int, key: str, servers: Servers) -> int:
    await servers.wait_ready()
    bases = [f"http://127.0.0.1:{port}" for port in servers.ports]
    headers = {"Authorization": f"Bearer {key}"}
    join_urls = [f"{b}/api/queues/{queue_id}/tickets" for b in bases]
    # Warm-up: imports, URL resolver, pool connections of every process.
    await fire([f"{b}/healthz" for b in bases], 200, args.concurrency, "GET")
    warm = await fire(join_urls, args.warmup, min(args.concurrency, args.warmup), "POST",
                      headers=headers, json={})
    load_before = os.getloadavg()
    cpu_start = servers.cpu_seconds()
    baseline = await fire([f"{b}/healthz" for b in bases], args.joins, args.concurrency, "GET")
    cpu_mid = servers.cpu_seconds()
    joins = await fire(join_urls, args.joins, args.concurrency, "POST", headers=headers, json={})
    cpu_end = servers.cpu_seconds()
    load_after = os.getloadavg()
    baseline["cpu_ms"] = (cpu_mid - cpu_start) / args.joins * 1000
    joins["cpu_ms"] = (cpu_end - cpu_mid) / args.joins * 1000

    answered = warm["statuses"].get(201, 0) + joins["statuses"].get(201, 0)
    tickets, duplicates, missing, problems = await asyncio.to_thread(check_numbers, queue_id)
    print(f"{args.servers} daphne process(es), ports {servers.ports}; client concurrency "
          f"{args.concurrency}; {args.joins} requests per phase (+{args.warmup} warm-up joins)")
    print(f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} ({os.cpu_count()} CPUs)")
    print(line("baseline GET /healthz", baseline))
    print(line("POST join", joins))
    print(f"joins / baseline: {joins['rate'] / baseline['rate']:.2f}")
    print(f"tickets in DB {tickets} (201 answers {answered}); duplicate numbers {duplicates}; "
          f"missing numbers {missing}; integrity problems {len(problems)}")
    for problem in problems[:10]:
        print("  ", problem)
    # A join that timed out on the client may still have committed: then tickets > answered.
    all_answered = set(warm["statuses"]) | set(joins["statuses"]) == {201}
    ok = all_answered and tickets >= answered and duplicates == 0 and missing == 0 and not problems
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--servers", type=int, default=2, help="daphne processes (one per core)")
    parser.add_argument("--port", type=int, default=8710)
    parser.add_argument("--pool-max", type=int, default=20, help="psycopg pool size per process")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--profile", metavar="FILE",
                        help="record the first server with py-spy into FILE (py-spy collapsed stacks, per thread, on-CPU samples)")
    args = parser.parse_args()

    recreate_database()
    manage("migrate", "--noinput", "-v", "0")
    setup_django()
    queue_id = make_queue()
    key = manage("create_api_token", "--location", "bench", "--kind", "kiosk",
                 "--name", "Bench kiosk").strip()

    servers = Servers(args.servers, args.port, args.pool_max)
    spy = None
    try:
        if args.profile:
            spy = subprocess.Popen([str(Path(PYTHON).with_name("py-spy")), "record", "-o", args.profile, "-f", "raw", "--threads",
                                    "-p", str(servers.pids[0])],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        code = asyncio.run(run(args, queue_id, key, servers))
    finally:
        if spy is not None and spy.poll() is None:
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
        servers.stop()
    sys.exit(code)


if __name__ == "__main__":
    main()
