"""Benchmark: fan-out of one call to N patient screens, call-next latency, memory.

    .venv/bin/python bench/live_fanout.py                     # N = 1000, 5000; both Redis layers
    .venv/bin/python bench/live_fanout.py --sizes 200 --rounds 3 --samples 10 --waiting 500   # quick

Starts daphne (PostgreSQL `queueapp_bench`, Redis db 6) as a subprocess, opens
N WebSocket clients on patient screens of a queue with --waiting tickets, and
has staff call next over HTTP (bench-only endpoints in bench/bench_asgi.py, run
by the server exactly as a Django view would). Measures, per channel layer:
- time from the call-next request until every client shows its new, correct
  position (p50/p99/max over all clients and rounds), beside a bare
  `websockets` server sending the same frames to the same N clients;
- call-next latency (p50/p99) with 0 screens and a near-empty queue, with 0
  screens and --waiting tickets, and with N screens and --waiting tickets;
- server memory per idle connected screen: RSS delta / N, and the slope
  between N/2 and N screens in the same process (without its fixed costs);
- server CPU per screen per call (less sensitive to the machine's load than
  the latencies).
A/B in one run: `--variant NAME:ENV=VALUE` (twice or more) runs the server
once per variant; with `--together`, side by side, N screens each, all hearing
the same calls at the same moments.
Every wait is bounded in time; only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import secrets
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import stalls  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HOST = "127.0.0.1"
LAYERS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}
POSITION_RE = re.compile(rb'class="position-number">(\d+)<')
NEXT_MARK = b"You are <strong>next</strong>"


def bench_env(layer: str = "pubsub") -> dict:
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/queueapp_bench"),
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6"),
        "CHANNEL_PREFIX": os.environ.get("BENCH_CHANNEL_PREFIX", "bench"),  # Redis pub/sub ignores the db number
        "CHANNEL_LAYER_BACKEND": LAYERS[layer],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    })
    return env


def raise_file_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def summary_ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (f"p50 {pct(values, 50) * 1000:.0f} ms, p99 {pct(values, 99) * 1000:.0f} ms, "
            f"max {max(values) * 1000:.0f} ms")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far: a figure the
    machine's load changes far less than a rate does."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def wait_port(port: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answers on {HOST}:{port} after {seconds} s")


# --- setup (in this process, through the services) ------------------------------
def existing_ids(waiting: int) -> dict:
    """The seeded location of an earlier run (--reuse), topped up to --waiting."""
    from queueapp.models import Counter, Queue
    from queueapp.selectors import waiting_tickets
    from queueapp.services import do_join

    long_q, short_q = Queue.objects.get(slug="long"), Queue.objects.get(slug="short")
    missing = waiting - waiting_tickets(long_q).count()
    for _ in range(max(0, missing)):
        do_join(long_q.pk)
    print(f"reusing the seeded queue; {max(0, missing)} joins to top it up to {waiting}", flush=True)
    return {"long": long_q.pk, "short": short_q.pk, "big": Counter.objects.get(name="Counter 1").pk,
            "small": Counter.objects.get(name="Counter 2").pk}


def setup_django(env: dict, flush: bool = True) -> None:
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "CHANNEL_PREFIX",
                                           "CHANNEL_LAYER_BACKEND", "DJANGO_SETTINGS_MODULE", "LOG_LEVEL")})
    sys.path.insert(0, str(ROOT))
    import psycopg

    name = env["DATABASE_URL"].rsplit("/", 1)[1]
    admin_url = env["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    if flush:
        call_command("flush", verbosity=0, interactive=False)


def seed(waiting: int) -> dict:
    """A location with a long queue (served by counter `big`) and a near-empty one."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from queueapp.models import Counter, Location, Queue
    from queueapp.services import do_join

    location = Location.objects.create(name="Bench", slug="bench")
    long_q = Queue.objects.create(location=location, name="Long", slug="long", prefix="B")
    short_q = Queue.objects.create(location=location, name="Short", slug="short", prefix="S")
    big = Counter.objects.create(location=location, name="Counter 1")
    big.queues.set([long_q])
    small = Counter.objects.create(location=location, name="Counter 2")
    small.queues.set([short_q])

    def joins(count: int) -> list[str]:
        with connection.cursor() as cursor:  # setup only: the server's commits stay durable
            cursor.execute("SET synchronous_commit TO off")
        tokens = [do_join(long_q.pk).token for _ in range(count)]
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO on")
        connection.close()
        return tokens

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:  # joins serialise on the queue lock anyway
        parts = list(pool.map(joins, [waiting // 4] * 3 + [waiting - 3 * (waiting // 4)]))
    from queueapp.selectors import waiting_tickets

    tokens = list(waiting_tickets(long_q).values_list("token", flat=True))
    print(f"seeded {len(tokens)} waiting tickets in {time.monotonic() - started:.1f} s "
          f"({sum(map(len, parts))} joins)", flush=True)
    return {"long": long_q.pk, "short": short_q.pk, "big": big.pk, "small": small.pk, "tokens": tokens}


def join_short(queue_id: int) -> None:
    from queueapp.services import do_join

    do_join(queue_id)


# --- clients ---------------------------------------------------------------------
class Screen:
    """One patient's phone: remembers the position it shows and when it changed."""

    __slots__ = ("ws", "position", "expect", "reached", "task")

    def __init__(self):
        self.ws = None
        self.position = None
        self.expect = None
        self.reached = None
        self.task = None

    def on_frame(self, frame: bytes | str) -> None:
        if isinstance(frame, str):
            frame = frame.encode()
        m = POSITION_RE.search(frame)
        self.position = int(m.group(1)) if m else (1 if NEXT_MARK in frame else None)
        if self.expect is not None and self.position == self.expect and self.reached is None:
            self.reached = time.time()


async def open_screens(urls: list[str], origin: str, parallel: int = 100) -> list[Screen]:
    from websockets.asyncio.client import connect

    screens = [Screen() for _ in urls]
    gate = asyncio.Semaphore(parallel)

    async def run(screen: Screen, url: str) -> None:
        async with gate:
            screen.ws = await asyncio.wait_for(
                connect(url, origin=origin, compression=None, ping_interval=None, max_size=2**20,
                        open_timeout=60), 90)
            screen.on_frame(await asyncio.wait_for(screen.ws.recv(), 60))
        screen.task = asyncio.get_running_loop().create_task(listen(screen))

    async def listen(screen: Screen) -> None:
        try:
            async for frame in screen.ws:
                screen.on_frame(frame)
        except Exception:
            pass

    await asyncio.gather(*(run(s, u) for s, u in zip(screens, urls)))
    return screens


async def close_screens(screens: list[Screen]) -> None:
    async def close(screen: Screen) -> None:
        try:
            await asyncio.wait_for(screen.ws.close(), 5)
        except Exception:
            pass
        if screen.task:
            screen.task.cancel()

    for i in range(0, len(screens), 500):
        await asyncio.gather(*(close(s) for s in screens[i:i + 500]))


async def await_all(screens: list[Screen], started: float, seconds: float = 30.0) -> list[float]:
    """Seconds from `started` until each screen showed its expected position."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(s.reached is None for s in screens):
        await asyncio.sleep(0.005)
    missing = sum(1 for s in screens if s.reached is None)
    if missing:
        print(f"  !! {missing} screen(s) not right after {seconds} s", flush=True)
    return [s.reached - started for s in screens if s.reached is not None]


def arm(screens: list[Screen]) -> None:
    for s in screens:
        s.expect = s.position - 1
        s.reached = None


async def http_post(port: int, path: str, key: str) -> tuple[float, float, str]:
    """(start wall time, seconds taken, body) of one POST on a fresh connection."""
    started_wall, started = time.time(), time.perf_counter()
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 10)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nx-bench-key: {key}\r\n"
                 f"Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 30)
    elapsed = time.perf_counter() - started
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"{path}: {head[:80]!r}")
    return started_wall, elapsed, body.decode()


# --- the server under test ---------------------------------------------------------
class Server:
    """daphne on the bench app; `start()` again on the same port after a stop or kill."""

    def __init__(self, layer: str, *, extra_args: tuple[str, ...] = ("--websocket_connect_timeout", "60"),
                 extra_env: dict | None = None, name: str = "", kind: str = "daphne",
                 backlog: int | None = None):
        self.port = free_port()
        self.backlog = backlog  # daphne's listen backlog (Twisted's default: 50); None: `-b -p` as `make run`
        self.key = secrets.token_hex(8)
        self.layer, self.extra_args, self.name, self.kind = layer, extra_args, name or layer, kind
        self.env = {**bench_env(layer), "BENCH_KEY": self.key, **(extra_env or {})}
        self.start()

    def start(self, wait: bool = True) -> None:
        profile = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
        if self.kind == "uvicorn":  # the comparison (bench/asgi_servers.py); Channels has no lifespan
            command = [PY, *profile, "-m", "uvicorn", "--host", HOST, "--port", str(self.port),
                       "--lifespan", "off", "--ws", "websockets", *self.extra_args, "bench.bench_asgi:application"]
        else:
            where = (["-b", HOST, "-p", str(self.port)] if self.backlog is None else
                     ["-e", f"tcp:port={self.port}:interface={HOST}:backlog={self.backlog}"])
            command = [PY, *profile, str(Path(PY).parent / "daphne"), *where,
                       *self.extra_args, "bench.bench_asgi:application"]
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
            stderr=open(f"/tmp/bench_daphne_{self.name}_{self.port}.log", "a"))
        if wait:
            wait_port(self.port, 90.0)  # under load a daphne took more than 30 s to listen

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def call_latencies(server: Server, counter: int, samples: int, before=None) -> list[float]:
    out = []
    for _ in range(samples):
        if before:
            await asyncio.to_thread(before)
        await http_post(server.port, f"/bench/complete/{counter}", server.key)
        out.append((await http_post(server.port, f"/bench/call-next/{counter}", server.key))[1])
    return out


async def run_layer(layer: str, ids: dict, args, results: dict, variant: tuple[str, dict] = ("", {})) -> None:
    label, extra_env = variant
    name = (layer if args.servers == 1 else f"{layer} x{args.servers}") + (f" {label}" if label else "")
    while name in results:  # --repeat: the same set-up again
        name += "+"
    print(f"\n=== {args.servers} daphne process(es) + {layer} layer{f' ({label}: {extra_env})' if label else ''}",
          flush=True)
    servers = [Server(layer, extra_env=extra_env) for _ in range(args.servers)]
    server = servers[0]  # staff call here; screens are spread over all of them
    try:
        await http_post(server.port, f"/bench/complete/{ids['big']}", server.key)  # warm up
        lat_empty = await call_latencies(server, ids["small"], args.samples,
                                         before=lambda: join_short(ids["short"]))
        lat_long = await call_latencies(server, ids["big"], args.samples)
        results[name] = {"call_empty_0": lat_empty, "call_long_0": lat_long}
        print(f"call next, 0 screens, ~1 waiting:          {summary_ms(lat_empty)}", flush=True)
        print(f"call next, 0 screens, {args.waiting} waiting: {summary_ms(lat_long)}", flush=True)
        for n in args.sizes:
            from queueapp.selectors import waiting_tickets

            tokens = await asyncio.to_thread(
                lambda: list(waiting_tickets(ids["long"]).values_list("token", flat=True)[
                    args.rounds + 2:args.rounds + 2 + n]))
            base_rss = sum(rss_kb(s.proc.pid) for s in servers)
            # In two halves, RSS measured after each: the plain figure (RSS
            # delta / N) carries the process's first-use growth (caches,
            # allocator arenas, thread stacks), the slope between the halves
            # only what one more screen costs.
            half = n // 2
            screens, rss_at, connect_s = [], [], 0.0
            server_of: list[int] = []  # index of the server each screen is connected to
            for part in (tokens[:half], tokens[half:]):
                started = time.monotonic()
                for i, srv in enumerate(servers):
                    opened = await open_screens([f"ws://{HOST}:{srv.port}/ws/ticket/{t}/"
                                                 for t in part[i::len(servers)]], f"http://{HOST}:{srv.port}")
                    screens += opened
                    server_of += [i] * len(opened)
                connect_s += time.monotonic() - started
                await asyncio.sleep(3)
                rss_at.append(sum(rss_kb(s.proc.pid) for s in servers))
            per_screen = (rss_at[1] - base_rss) / n
            slope = (rss_at[1] - rss_at[0]) / (n - half)
            fan, lat, round_max, cpu = [], [], [], 0.0
            cpu_each = [0.0] * len(servers)  # per process: do they share the work evenly?
            first_each: list[list[float]] = [[] for _ in servers]  # ... and hear the call at the same time?
            last_each: list[list[float]] = [[] for _ in servers]
            for k in range(args.rounds):
                t0, took, (got,), cpu_round = await one_round(server, ids["big"], servers, [screens])
                await report_round(k, t0, got, servers, args)
                lat.append(took)
                for i in range(len(servers)):
                    cpu_each[i] += cpu_round[i]
                    mine = [s.reached - t0 for s, k in zip(screens, server_of) if k == i and s.reached is not None]
                    if mine:
                        first_each[i].append(min(mine))
                        last_each[i].append(max(mine))
                cpu = sum(cpu_each)
                fan.extend(got)
                round_max.append(round(max(got, default=float("nan")) * 1000))
            cpu_us = cpu / args.rounds / n * 1e6
            results[name][n] = {"fanout": fan, "call": lat, "kb_per_screen": per_screen, "last": round_max,
                                 "kb_per_more_screen": slope, "connect_s": connect_s, "cpu_us_per_screen": cpu_us}
            print(f"N={n}: connected in {connect_s:.1f} s; {per_screen:.1f} KB RSS per idle screen "
                  f"(RSS delta / N); {slope:.1f} KB per screen between {half} and {n} (the slope)", flush=True)
            print(f"N={n}: server CPU from the call until the last screen was right: {cpu_us:.1f} us per screen "
                  f"per call (all processes; the machine's load changes it far less than the latencies)"
                  + (f"; per process {', '.join(f'{c / args.rounds * 1000:.0f}' for c in cpu_each)} ms a call"
                     if len(servers) > 1 else ""), flush=True)
            print(f"N={n}: all screens right after call: {summary_ms(fan)}; last screen per round "
                  f"{round_max} ms", flush=True)
            if len(servers) > 1:
                for i in range(len(servers)):
                    print(f"N={n}: process {i + 1}: first screen right per round "
                          f"{[round(x * 1000) for x in first_each[i]]} ms, last {[round(x * 1000) for x in last_each[i]]} ms"
                          f"{' (staff call here)' if i == 0 else ''}", flush=True)
            print(f"N={n}: call next with {n} screens, {args.waiting} waiting: {summary_ms(lat)}", flush=True)
            if args.stalls:  # what a full pass of the collector would cost now, with the N screens open
                passes = [json.loads(await http_get(srv.port, "/bench/full-pass", srv.key))
                          for srv in servers for _ in range(3)]
                print(f"N={n}: a full garbage collection now (gc.collect(), 3 times per process): "
                      + ", ".join(f"{p['wall_ms']:.0f} ms (cpu {p['cpu_ms']:.0f}; {p['walked']} objects walked, "
                                  f"{p['frozen']} frozen)" for p in passes), flush=True)
            await close_screens(screens)
            await asyncio.sleep(1)
    finally:
        for srv in servers:
            srv.stop()


async def http_get(port: int, path: str, key: str, seconds: float = 30) -> bytes:
    """The body of one GET of a bench endpoint (bench/bench_asgi.py), answered within `seconds`."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 10)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nx-bench-key: {key}\r\n"
                 f"Connection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), seconds)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"{path}: {head[:80]!r}")
    return body


async def report_round(k: int, t0: float, got: list[float], servers, args, server_events=None) -> None:
    """With --stalls: one line per round, its last screen beside what held the
    server(s) and this client process in it (garbage collections of 5 ms or
    more and event-loop stalls, as what@start+duration ms from the call; the
    smaller collections summed), so a slow round shows its cause or shows none."""
    if not args.stalls:
        return
    end = t0 + max(got, default=0.0)
    parts = []
    if server_events is not None:
        parts.append(f"server {stalls.describe(server_events, t0)}")
    for i, srv in enumerate(servers):
        found = [tuple(e) for e in json.loads(await http_get(srv.port, "/bench/stalls", srv.key))]
        inside = [e for e in found if e[0] <= end and e[0] + e[1] >= t0]
        # full passes since the last round outside this one: how often they come, what they cost
        full = [f"{e[1] * 1000:.0f}(cpu {e[2].split()[1][4:]})" for e in found
                if e not in inside and e[2].startswith("gc2")]
        parts.append(f"server{'' if len(servers) == 1 else i + 1} {stalls.describe(inside, t0)}"
                     + (f" [full passes before the round: {', '.join(full)}]" if full else ""))
    parts.append(f"client {stalls.describe(stalls.between(t0, end), t0)}")
    print(f"  round {k + 1}: last screen {max(got, default=float('nan')) * 1000:.0f} ms; " + "; ".join(parts),
          flush=True)


async def one_round(server, queue_id, servers, groups: list[list], settle: float = 0.0):
    """One measured call, the same in every mode: staff complete the ticket in
    service, every screen is armed, staff call next on `server`, then every
    group's screens are awaited in turn. Returns (t0, call-next latency, the
    seconds until each screen was right per group, CPU seconds per server
    from just before the call until all were right plus `settle`)."""
    everyone = [s for group in groups for s in group]
    await http_post(server.port, f"/bench/complete/{queue_id}", server.key)
    await asyncio.sleep(0.3)
    arm(everyone)
    before = [cpu_seconds(s.proc.pid) for s in servers]
    t0, took, _ = await http_post(server.port, f"/bench/call-next/{queue_id}", server.key)
    got_each = [await await_all(group, t0) for group in groups]
    if settle:
        await asyncio.sleep(settle)
    cpu = [cpu_seconds(srv.proc.pid) - b for srv, b in zip(servers, before)]
    wrong = sum(1 for s in everyone if s.position != s.expect)
    if wrong:
        print(f"  !! {wrong} screen(s) show a wrong position", flush=True)
    return t0, took, got_each, cpu


async def run_together(layer: str, ids: dict, args, results: dict) -> None:
    """An A/B in which the variants share every moment: one daphne per variant,
    N screens each (alternate places in the same line), all hearing the same
    calls at the same time, so the machine's load falls on both alike."""
    print(f"\n=== together: one daphne + {layer} layer per variant, the same calls: "
          f"{', '.join(f'{name} {env}' for name, env in args.variant)}", flush=True)
    servers = [Server(layer, extra_env=env, name=f"{layer}-{name}") for name, env in args.variant]
    names = [name for name, _env in args.variant]
    server = servers[0]  # staff call here; every server hears the call through Redis
    try:
        await http_post(server.port, f"/bench/complete/{ids['big']}", server.key)  # warm up
        for n in args.sizes:
            from queueapp.selectors import waiting_tickets

            k = len(servers)
            tokens = await asyncio.to_thread(
                lambda: list(waiting_tickets(ids["long"]).values_list("token", flat=True)[
                    args.rounds + 2:args.rounds + 2 + n * k]))
            screens = {}
            for i, srv in enumerate(servers):
                screens[i] = await open_screens([f"ws://{HOST}:{srv.port}/ws/ticket/{t}/" for t in tokens[i::k]],
                                                f"http://{HOST}:{srv.port}")
            await asyncio.sleep(3)
            everyone = [s for group in screens.values() for s in group]
            fan = {i: [] for i in screens}
            last = {i: [] for i in screens}
            cpu = {i: 0.0 for i in screens}
            for _ in range(args.rounds):
                # settle: the slower server's last writes still count in its CPU
                t0, _took, got_each, cpu_round = await one_round(server, ids["big"], servers,
                                                                 list(screens.values()), settle=0.2)
                await report_round(_, t0, [x for got in got_each for x in got], servers, args)
                for i, got in enumerate(got_each):
                    fan[i].extend(got)
                    last[i].append(round(max(got, default=float("nan")) * 1000))
                    cpu[i] += cpu_round[i]
            for i, name in enumerate(names):
                cpu_us = cpu[i] / args.rounds / n * 1e6
                results.setdefault(f"together {name}", {})[n] = {"fanout": fan[i], "cpu_us_per_screen": cpu_us,
                                                                  "last": last[i]}
                print(f"N={n} {name}: all screens right after call: {summary_ms(fan[i])}; last screen per round "
                      f"{last[i]} ms; server CPU {cpu_us:.1f} us per screen per call", flush=True)
            await close_screens(everyone)
            await asyncio.sleep(1)
    finally:
        for srv in servers:
            srv.stop()


# --- the baseline: a bare websockets server sending the same frames ------------------
def frame_template() -> str:
    """A real ticket frame with the position left as {pos}/{ahead}."""
    from queueapp.live import reads, render
    from queueapp.models import Ticket

    token = Ticket.objects.filter(status="waiting").order_by("-seq").values_list("token", flat=True).first()
    view = reads.ticket_view(token)
    view.position = 4321
    frame = render.ticket_frame(view)
    return frame.replace("{", "{{").replace("}", "}}").replace("4321", "{pos}").replace("4320", "{ahead}")


def bare_server_main(port: int, template_file: str) -> None:
    from websockets.asyncio.server import broadcast, serve

    template = Path(template_file).read_text()
    screens: dict = {}

    async def handler(conn):
        path = conn.request.path
        if path == "/control":
            async for message in conn:
                if message == "stalls":  # what held this process since the last ask (bench/stalls.py)
                    await conn.send(json.dumps(list(stalls.events)))
                    stalls.events.clear()
                    continue
                step = int(message)
                for ws, start in list(screens.items()):
                    pos = start - step
                    broadcast([ws], template.format(pos=pos, ahead=pos - 1))
                await conn.send("sent")
            return
        start = int(path.rsplit("=", 1)[1])
        screens[conn] = start
        await conn.send(template.format(pos=start, ahead=start - 1))
        try:
            await conn.wait_closed()
        finally:
            screens.pop(conn, None)

    async def main():
        if os.environ.get("BENCH_STALLS") == "1":
            stalls.install()
        async with serve(handler, HOST, port, compression=None, ping_interval=None, backlog=4096):
            await asyncio.get_running_loop().create_future()

    asyncio.run(main())


async def run_bare(args, template_file: str, results: dict) -> None:
    from websockets.asyncio.client import connect

    print("\n=== bare websockets server, same frames", flush=True)
    port = free_port()
    proc = subprocess.Popen([PY, __file__, "--bare-server", str(port), template_file], cwd=ROOT,
                            env=bench_env())
    try:
        wait_port(port)
        for n in args.sizes:
            screens = await open_screens([f"ws://{HOST}:{port}/s?start={1000 + i}" for i in range(n)],
                                         f"http://{HOST}:{port}")
            control = await connect(f"ws://{HOST}:{port}/control", compression=None, ping_interval=None)
            fan, cpu, round_max = [], 0.0, []
            for step in range(1, args.rounds + 1):
                await asyncio.sleep(0.3)
                arm(screens)
                cpu_before = cpu_seconds(proc.pid)
                t0 = time.time()
                await control.send(str(step))
                await asyncio.wait_for(control.recv(), 60)
                got = await await_all(screens, t0)
                fan.extend(got)
                round_max.append(round(max(got, default=float("nan")) * 1000))
                cpu += cpu_seconds(proc.pid) - cpu_before
                if args.stalls:
                    await control.send("stalls")
                    found = [tuple(e) for e in json.loads(await asyncio.wait_for(control.recv(), 60))]
                    end = t0 + max(got, default=0.0)
                    await report_round(step - 1, t0, got, [], args,
                                       server_events=[e for e in found if e[0] <= end and e[0] + e[1] >= t0])
            await control.close()
            cpu_us = cpu / args.rounds / n * 1e6
            results.setdefault("bare", {})[n] = {"fanout": fan, "cpu_us_per_screen": cpu_us, "last": round_max}
            print(f"N={n}: all screens right after broadcast: {summary_ms(fan)}; last screen per round "
                  f"{round_max} ms", flush=True)
            print(f"N={n}: server CPU per screen per broadcast: {cpu_us:.1f} us", flush=True)
            await close_screens(screens)
            await asyncio.sleep(1)
    finally:
        proc.terminate()
        proc.wait(10)


async def main(args) -> None:
    limit = raise_file_limit()
    if args.stalls:
        os.environ["BENCH_STALLS"] = "1"  # the servers' and the bare server's environment (bench_env)
        stalls.install()
    print(f"open files limit {limit}; {os.cpu_count()} CPU(s); sizes {args.sizes}; "
          f"{args.rounds} rounds; {args.samples} latency samples; {args.waiting} waiting", flush=True)
    env = bench_env(args.layers[0])
    await asyncio.to_thread(setup_django, env, not args.reuse)
    ids = await asyncio.to_thread(existing_ids if args.reuse else seed, args.waiting)
    results: dict = {}
    template_file = "/tmp/bench_live_frame.txt"
    Path(template_file).write_text(await asyncio.to_thread(frame_template))
    if not args.skip_bare:
        await run_bare(args, template_file, results)
    for _repeat in range(args.repeat):
        for layer in args.layers:
            if args.together:
                await run_together(layer, ids, args, results)
                continue
            for variant in args.variant or [("", {})]:
                await run_layer(layer, ids, args, results, variant)
    print_ratios(results)
    print("\n=== summary (seconds)")
    print(json.dumps({layer: {str(k): ({m: (round(pct(v, 50), 4), round(pct(v, 99), 4), round(max(v), 4))
                                        if isinstance(v, list) and v else v for m, v in val.items() if m != "last"}
                                       if isinstance(val, dict) else (round(pct(val, 50), 4), round(pct(val, 99), 4)))
                              for k, val in res.items()}
                      for layer, res in results.items()}, indent=1))


def print_ratios(results: dict) -> None:
    """Ours against the bare broadcast at the same N, computed the same way for
    both: p99 over every screen of every round (what the target names; one slow
    round of five holds all of the top 1 %, so it alone decides it), and the
    median over rounds of the last screen (what a typical round gives)."""
    bare = results.get("bare", {})
    lines = []
    for name, res in results.items():
        if name == "bare" or not isinstance(res, dict):
            continue
        for n, got in res.items():
            if not isinstance(got, dict) or n not in bare or not got.get("fanout") or not bare[n]["fanout"]:
                continue
            ours_p99, bare_p99 = pct(got["fanout"], 99), pct(bare[n]["fanout"], 99)
            ours_last, bare_last = statistics.median(got["last"]), statistics.median(bare[n]["last"])
            lines.append(f"{name} N={n}: p99 {ours_p99 * 1000:.0f} / bare {bare_p99 * 1000:.0f} ms = "
                         f"{ours_p99 / bare_p99:.2f}x; last screen per round, median {ours_last:.0f} / bare "
                         f"{bare_last:.0f} ms = {ours_last / bare_last:.2f}x; slowest round {max(got['last'])} / "
                         f"bare {max(bare[n]['last'])} ms")
    if lines:
        print("\n=== against the bare broadcast (same run)")
        print("\n".join(lines), flush=True)


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, pairs = text.partition(":")
    env = dict(pair.split("=", 1) for pair in pairs.split(",") if pair)
    if not name or any(not key for key in env):
        raise argparse.ArgumentTypeError(f"--variant {text!r}: expected NAME:KEY=VALUE[,KEY=VALUE]")
    return name, env


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,5000", type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--rounds", default=5, type=int, help="calls measured per N")
    p.add_argument("--samples", default=30, type=int, help="call-next latency samples without screens")
    p.add_argument("--waiting", default=10_000, type=int, help="tickets waiting in the long queue")
    p.add_argument("--layers", default="pubsub,core", type=lambda s: s.split(","))
    p.add_argument("--servers", default=1, type=int, help="daphne processes sharing the Redis layer")
    p.add_argument("--reuse", action="store_true", help="keep the tickets seeded by an earlier run")
    p.add_argument("--skip-bare", action="store_true")
    p.add_argument("--variant", action="append", type=parse_variant, metavar="NAME:KEY=VALUE[,KEY=VALUE]",
                   help="an A/B in one run: the server(s) once per variant, with these environment variables "
                        "(e.g. --variant stock:LIVE_DIRECT_SEND=0 --variant direct:LIVE_DIRECT_SEND=1)")
    p.add_argument("--repeat", default=1, type=int, help="run the variants this many times, alternating")
    p.add_argument("--together", action="store_true",
                   help="the variants' servers side by side, N screens each, hearing the same calls")
    p.add_argument("--stalls", action="store_true",
                   help="per round, the garbage collections and event-loop stalls of the server(s), the bare "
                        "server and this client in it (bench/stalls.py; the watchers cost a little CPU)")
    p.add_argument("--bare-server", nargs=2, metavar=("PORT", "TEMPLATE"), help=argparse.SUPPRESS)
    return p.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.bare_server:
        bare_server_main(int(arguments.bare_server[0]), arguments.bare_server[1])
    else:
        if arguments.together and len(arguments.variant or []) < 2:
            sys.exit("--together needs two --variant or more")
        if max(arguments.sizes) * (len(arguments.variant) if arguments.together else 1) \
                + arguments.rounds + 2 > arguments.waiting:
            sys.exit("--waiting must exceed the largest size plus the rounds")
        asyncio.run(main(arguments))
