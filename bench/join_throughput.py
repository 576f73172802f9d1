"""Benchmark: joins per second over HTTP on PostgreSQL + Redis, with zero duplicate numbers.

    .venv/bin/python bench/join_throughput.py [--joins 5000] [--concurrency 64] [--servers 2] [--queues 8]

What it does, all on loopback:
1. Recreates its own database (JOINBENCH_DATABASE_URL, default
   postgres://postgres@127.0.0.1:5432/queueapp_joinbench) and migrates it; Redis is
   JOINBENCH_REDIS_URL (default redis://127.0.0.1:6379/8), channel prefix `joinbench`.
2. Creates a location with one counter queue and a kiosk token (`manage.py create_api_token`).
3. Starts `--servers` daphne processes on consecutive ports from `--port` (the design's
   "several daphne processes behind a proxy"; the client spreads requests round-robin over
   them instead of a proxy, so no proxy cost is measured).
4. Baselines, `--joins` requests each, same client, concurrency and servers:
   GET /bench/bare-healthz (the same view through Django without middleware:
   a bare Django view, bench/bench_asgi.py) and GET /healthz (the whole chain).
5. `--joins` POST /api/queues/<id>/tickets with the kiosk token, on one queue.
6. The database's own ceiling for the same transaction on one queue: raw SQL
   clients (psycopg, `--raw-connections` connections) running the
   statements a join runs between BEGIN and COMMIT (lock the queue row, number
   and place, insert the ticket, bump the version, insert the event), on
   queues of their own; once as one statement per round trip (what Django
   does) and once as one round trip (a single multi-statement call).
7. The same joins over HTTP and raw SQL spread over `--queues` queues
   (round-robin): joins/s should scale with the queues (each has its own lock).
8. Checks the database: per HTTP queue, as many tickets as 201 answers, numbers
   exactly 1..N (no duplicate, none missing), `validate_queue_integrity` clean.

Prints requests/s, latency p50/p99 and the daphne processes' CPU time per request
for each phase (and how much of it their main threads, the event loops, used), the ratios the targets are stated in (/healthz vs the bare view,
join CPU vs /healthz CPU, joins vs the raw-SQL ceiling, 8 queues vs 1), the load
average before and after, and exits non-zero if any join failed or any number is
duplicated or missing. Every wait is bounded in time; the servers are stopped on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
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


def make_queues(count: int) -> dict[str, list[int]]:
    """One queue for the single-queue joins, `count` for the spread joins, and as
    many again for the raw SQL clients (their rows are not the services' own)."""
    from queueapp.models import Counter, Location, Queue

    location = Location.objects.create(name="Bench Clinic", slug="bench")
    counter = Counter.objects.create(location=location, name="Counter 1")
    made: dict[str, list[int]] = {}
    for group, n in (("one", 1), ("many", count), ("raw_one", 1), ("raw_many", count)):
        made[group] = []
        for i in range(n):
            queue = Queue.objects.create(location=location, name=f"Bench {group} {i}", slug=f"bench-{group}-{i}",
                                         prefix="A")
            counter.queues.add(queue)
            made[group].append(queue.pk)
    return made


# The statements of a join between BEGIN and COMMIT (see the services' do_join),
# with the values the service computes computed in SQL.
RAW_JOIN = [
    "SELECT id, version, number_day, last_number, last_seq FROM queueapp_queue WHERE id = %(q)s FOR UPDATE",
    "UPDATE queueapp_queue SET number_day = CURRENT_DATE, last_number = last_number + 1, "
    "last_seq = last_seq + 1 WHERE id = %(q)s RETURNING last_number, last_seq",
    "INSERT INTO queueapp_ticket (queue_id, business_day, number, token, priority, seq, status, party_size, "
    "call_count, no_show_count, note, created_at, queued_at) SELECT %(q)s, CURRENT_DATE, last_number, %(t)s, 0, "
    "last_seq, 'waiting', 1, 0, 0, '', now(), now() FROM queueapp_queue WHERE id = %(q)s RETURNING id",
    "UPDATE queueapp_queue SET version = version + 1 WHERE id = %(q)s RETURNING version",
    "INSERT INTO queueapp_queueevent (queue_id, version, kind, ticket_id, status_after, created_at, data) "
    "SELECT %(q)s, version, 'joined', lastval(), "
    "'waiting', now(), '{}'::jsonb FROM queueapp_queue WHERE id = %(q)s RETURNING id",
]


async def raw_sql(queue_ids: list[int], total: int, connections: int, *, one_round_trip: bool) -> dict:
    """`total` join transactions from `connections` psycopg connections, round-robin over queues."""
    import psycopg

    print(f"phase started: raw SQL on {len(queue_ids)} queue(s), one round trip {one_round_trip}",
          file=sys.stderr, flush=True)

    latencies: list[float] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        async with await psycopg.AsyncConnection.connect(DATABASE_URL, autocommit=True) as conn:
            while next_index < total:
                i, next_index = next_index, next_index + 1
                params = {"q": queue_ids[i % len(queue_ids)], "t": secrets.token_urlsafe(16)}
                started = time.perf_counter()
                if one_round_trip:  # client-side binding, one simple-query call
                    async with conn.cursor() as cur:
                        body = ";".join(["BEGIN", *RAW_JOIN, "COMMIT"])
                        await cur.execute(psycopg.ClientCursor(conn).mogrify(body, params))
                else:
                    async with conn.transaction():
                        for sql in RAW_JOIN:
                            await conn.execute(sql, params)
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(connections))), timeout=RUN_TIMEOUT)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"rate": total / elapsed, "elapsed": elapsed, "p50": statistics.median(latencies) * 1000,
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
            "statuses": {"committed": total}, "cpu_ms": 0.0}


async def sample_waits(conn) -> dict:
    """Until cancelled: what the servers' database sessions are doing, sampled every
    5 ms from pg_stat_activity (state, and wait event while active). `active
    Lock/transactionid` is a join waiting for the queue row; `idle in transaction`
    is a session holding its transaction (and the row, once locked) while the
    server's Python runs between two statements. The loop join's own sessions
    (services/_join_async.py) are named; Django's have no name."""
    counts: dict[str, int] = {"samples": 0}
    query = ("SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
             "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
             "AND application_name IN ('', 'queueapp loop join')")
    try:
        while True:
            rows = await (await conn.execute(query)).fetchall()
            counts["samples"] += 1
            for state, kind, event in rows:
                if state == "idle":
                    continue
                key = f"{state} {kind}/{event}" if state == "active" and kind else state
                counts[key] = counts.get(key, 0) + 1
            await asyncio.sleep(0.005)
    except asyncio.CancelledError:
        return counts


def process_cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system, all threads) the processes have used so far."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


class Servers:
    """daphne processes on consecutive loopback ports, stopped on exit (the app is
    bench/bench_asgi.py: the real one plus the bare-view baseline)."""

    def __init__(self, count: int, first_port: int, pool_max: int):
        self.ports = [first_port + i for i in range(count)]
        self.procs: list[subprocess.Popen] = []
        env = {**ENV, "DB_POOL_MAX": str(pool_max), "BENCH_KEY": secrets.token_hex(8)}
        for port in self.ports:
            self.procs.append(subprocess.Popen(
                [DAPHNE, "-b", "127.0.0.1", "-p", str(port), "--verbosity", "0",
                 "bench.bench_asgi:application"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, start_new_session=True))

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the servers have used so far."""
        return process_cpu_seconds(self.pids)

    def loop_cpu_seconds(self) -> float:
        """CPU time of the servers' main threads so far: daphne's event loop
        (and what runs on it: Twisted's HTTP parsing, the ASGI handler, our
        inline middleware, the live publisher's sends). The rest of
        `cpu_seconds` is the request threads' (the views) and helper threads'."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids:
            with open(f"/proc/{pid}/task/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
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
            f"p99 {result['p99']:>7.1f} ms   server CPU {result['cpu_ms']:>5.1f} ms/request"
            + (f" (event loop {result['loop_cpu_ms']:.1f}, other threads "
               f"{result['cpu_ms'] - result['loop_cpu_ms']:.1f})" if "loop_cpu_ms" in result else "")
            + f"   ({codes}; {result['elapsed']:.1f} s)")


async def run(args, queues: dict[str, list[int]], key: str, servers: Servers) -> int:
    await servers.wait_ready()
    bases = [f"http://127.0.0.1:{port}" for port in servers.ports]
    headers = {"Authorization": f"Bearer {key}"}

    def join_urls(queue_ids: list[int]) -> list[str]:
        # Round-robin over servers and queues alike (lcm-free: every pair occurs).
        return [f"{b}/api/queues/{q}/tickets" for q in queue_ids for b in bases]

    one, many = join_urls(queues["one"]), join_urls(queues["many"])
    # Warm-up: imports, URL resolver, pool connections of every process.
    await fire([f"{b}/healthz" for b in bases], 200, args.concurrency, "GET")
    await fire([f"{b}/bench/bare-healthz" for b in bases], 200, args.concurrency, "GET")
    warm = await fire(one, args.warmup, min(args.concurrency, args.warmup), "POST", headers=headers, json={})
    raw_connections = args.raw_connections
    load_before = os.getloadavg()
    results: dict[str, dict] = {}

    waits: dict[str, dict] = {}
    sampler = None
    if args.waits:  # connected now: the servers' pools may take every free connection later
        import psycopg

        sampler = await psycopg.AsyncConnection.connect(DATABASE_URL, autocommit=True,
                                                        application_name="bench-sampler")

    async def http_phase(name: str, urls: list[str], method: str, **kw) -> None:
        print(f"phase started: {name}", file=sys.stderr, flush=True)  # for a profiler or sampler alongside
        cpu, loop_cpu = servers.cpu_seconds(), servers.loop_cpu_seconds()
        sampling = asyncio.create_task(sample_waits(sampler)) if sampler and method == "POST" else None
        results[name] = await fire(urls, args.joins, args.concurrency, method, **kw)
        results[name]["cpu_ms"] = (servers.cpu_seconds() - cpu) / args.joins * 1000
        results[name]["loop_cpu_ms"] = (servers.loop_cpu_seconds() - loop_cpu) / args.joins * 1000
        if sampling is not None:
            sampling.cancel()
            waits[name] = await sampling

    await http_phase("bare Django view", [f"{b}/bench/bare-healthz" for b in bases], "GET")
    await http_phase("GET /healthz", [f"{b}/healthz" for b in bases], "GET")
    await http_phase("POST join, 1 queue", one, "POST", headers=headers, json={})
    results["raw SQL, 1 queue"] = await raw_sql(queues["raw_one"], args.joins, raw_connections,
                                                one_round_trip=False)
    results["raw SQL 1 trip, 1 queue"] = await raw_sql(queues["raw_one"], args.joins, raw_connections,
                                                       one_round_trip=True)
    n = len(queues["many"])
    await http_phase(f"POST join, {n} queues", many, "POST", headers=headers, json={})
    results[f"raw SQL, {n} queues"] = await raw_sql(queues["raw_many"], args.joins, raw_connections,
                                                   one_round_trip=False)
    load_after = os.getloadavg()
    if sampler is not None:
        await sampler.close()

    print(f"{args.servers} daphne process(es), ports {servers.ports}; client concurrency "
          f"{args.concurrency}; raw SQL connections {raw_connections}; {args.joins} requests per phase "
          f"(+{args.warmup} warm-up joins)")
    print(f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} ({os.cpu_count()} CPUs)")
    for name, result in results.items():
        print(line(name, result))
    bare, health = results["bare Django view"], results["GET /healthz"]
    join1, raw1 = results["POST join, 1 queue"], results["raw SQL, 1 queue"]
    joinn = results[f"POST join, {n} queues"]
    print(f"/healthz vs bare view: CPU {health['cpu_ms'] / bare['cpu_ms']:.2f}x, "
          f"rate {bare['rate'] / health['rate']:.2f}x   (target <= 1.5x)")
    print(f"join CPU vs /healthz CPU: {join1['cpu_ms'] / health['cpu_ms']:.2f}x   (target <= 3x)")
    print(f"joins vs raw SQL ceiling, 1 queue: {join1['rate'] / raw1['rate']:.0%} "
          f"(one-round-trip ceiling {results['raw SQL 1 trip, 1 queue']['rate']:.0f}/s)   (target >= 50%)")
    print(f"{n} queues vs 1: joins {joinn['rate'] / join1['rate']:.2f}x, "
          f"raw SQL {results[f'raw SQL, {n} queues']['rate'] / raw1['rate']:.2f}x")

    for name, counts in waits.items():
        samples = counts.pop("samples") or 1
        print(f"{name}: server sessions by state/wait, mean per sample over {samples} samples: "
              + ", ".join(f"{k} {v / samples:.2f}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])))

    ok = True
    answered = {q: 0 for q in queues["one"] + queues["many"]}
    all_answered = all(set(r["statuses"]) == {201} for k, r in results.items() if k.startswith("POST"))
    all_answered = all_answered and set(warm["statuses"]) == {201}
    for queue_id in answered:
        tickets, duplicates, missing, problems = await asyncio.to_thread(check_numbers, queue_id)
        print(f"queue {queue_id}: tickets {tickets}; duplicate numbers {duplicates}; missing numbers {missing}; "
              f"integrity problems {len(problems)}")
        for problem in problems[:10]:
            print("  ", problem)
        ok = ok and duplicates == 0 and missing == 0 and not problems
    # A join that timed out on the client may still have committed: tickets >= answers.
    return 0 if ok and all_answered else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--servers", type=int, default=2, help="daphne processes (one per core)")
    parser.add_argument("--port", type=int, default=8710)
    parser.add_argument("--pool-max", type=int, default=20, help="psycopg pool size per process")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--queues", type=int, default=8, help="queues the spread phase joins")
    parser.add_argument("--raw-connections", type=int, default=16,
                        help="raw SQL client connections (one queue's lock serialises them anyway)")
    parser.add_argument("--waits", action="store_true",
                        help="sample the servers' database sessions (pg_stat_activity) during the join phases")
    parser.add_argument("--profile", metavar="FILE",
                        help="record the first server with py-spy into FILE (collapsed stacks per thread; only samples "
                             "holding the GIL: without --gil py-spy counts idle executor threads as busy)")
    args = parser.parse_args()

    recreate_database()
    manage("migrate", "--noinput", "-v", "0")
    setup_django()
    queues = make_queues(args.queues)
    key = manage("create_api_token", "--location", "bench", "--kind", "kiosk",
                 "--name", "Bench kiosk").strip()

    servers = Servers(args.servers, args.port, args.pool_max)
    spy = None
    try:
        if args.profile:
            spy = subprocess.Popen([str(Path(PYTHON).with_name("py-spy")), "record", "-o", args.profile, "-f", "raw", "--threads", "--gil",
                                    "-p", str(servers.pids[0])],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        code = asyncio.run(run(args, queues, key, servers))
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
