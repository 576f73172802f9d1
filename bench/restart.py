"""Benchmark: a server restart that thousands of patient screens must survive.

    .venv/bin/python bench/restart.py                           # 5,000 screens, 1 then 2 processes
    .venv/bin/python bench/restart.py --screens 500 --servers 1 --signals term --scopes all   # quick check
    .venv/bin/python bench/restart.py --reuse ...                # keep the tickets seeded by an earlier run
    .venv/bin/python bench/restart.py --screens 2000 --servers 1 --variants off,on,off,on ...  # A/B in one run
    .venv/bin/python bench/restart.py --servers 1 --variants on/1024+20/ours/same,on/1024+20/ours/proxy
        # production's arrangement (nginx in front of a daphne for /ws/ and one for HTTP) beside one process

Uses PostgreSQL `queueapp_bench` and Redis db 6 (BENCH_DATABASE_URL, BENCH_REDIS_URL),
the same seeded queue as bench/live_fanout.py, the pub/sub Redis layer, and
daphne with default timeouts (`-b -p`, Twisted's listen queue of 50, unless a variant names a backlog; `make run` is `on/1024+20`) on bench/bench_asgi.py.

N clients behave like htmx 4's `hx-ws` on a patient's phone: connect, show
the position in each frame, and after any close or failed attempt reconnect
with the schedule our pages give htmx (settings.LIVE_RECONNECT_*: 0.5 s
doubling to 5 s, ±50 %), or htmx's own defaults (0.5 s doubling to 60 s,
±30 %; `--variants on//htmx`), reset once a socket opens. With
two processes the client stands in for a proxy: a refused connection goes to
the other process at once.

For each number of processes (--servers, e.g. "1,2"):
1. Cold connect: all N phones at once against the started servers; screens
   per second until every one shows its right position, beside a bare
   `websockets` server sending the same frame to the same client (baseline).
2. Staff call-next latency on a quiet server (another queue, over HTTP).
3. For each signal (--signals term,kill) and scope (--scopes one,all: one
   process or every process): the signal, two calls (done while the screens
   are away, so every position changes), the processes started again on the
   same ports (the background worker runs throughout, as in production: its
   tick repairs missed messages); then the time from "listening again" until every screen is
   connected and shows its right position (the target: all within 30 s),
   how many were right at 30 s, failed attempts by kind (HTTP status,
   dropped handshake, open timeout, refused), close codes received, and
   staff call-next latency during the storm beside the quiet one.
Every wait is bounded; only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.live_fanout import (  # noqa: E402
    HOST, NEXT_MARK, POSITION_RE, PY, ROOT, Server, bench_env, cpu_seconds, existing_ids, free_port,
    frame_template,
    http_post, join_short, pct, raise_file_limit, seed, setup_django, wait_port,
)
from tests.proxy_support import admission, run_proxy  # noqa: E402

OPEN_TIMEOUT = 10.0  # seconds a phone waits for a handshake before counting it failed
HTMX_BACKOFF = (0.5, 60.0, 0.3)  # htmx 4's hx-ws defaults: first, most (s), ± jitter


def our_backoff() -> tuple[float, float, float]:
    """The schedule our pages give htmx (`{% live_client_config %}`, settings.LIVE_RECONNECT_*)."""
    from queueapp.templatetags.live_tags import reconnect_config

    c = reconnect_config()
    return c["reconnectDelay"] / 1000, c["reconnectMaxDelay"] / 1000, c["reconnectJitter"]
TARGET = 30.0


class Stats:
    def __init__(self):
        self.failures: collections.Counter = collections.Counter()
        self.closes: collections.Counter = collections.Counter()
        self.opens = 0

    def reset(self):
        self.__init__()


class Phone:
    __slots__ = ("token", "home", "position", "open", "task")

    def __init__(self, token: str, home: int):
        self.token, self.home = token, home
        self.position = None
        self.open = False
        self.task = None

    def on_frame(self, frame) -> None:
        if isinstance(frame, str):
            frame = frame.encode()
        m = POSITION_RE.search(frame)
        # No place in line on the frame (called, serving, done): no position.
        self.position = int(m.group(1)) if m else (1 if NEXT_MARK in frame else None)


async def run_phone(phone: Phone, urls: list[str], origin: str, stats: Stats,
                    backoff: tuple[float, float, float] = HTMX_BACKOFF) -> None:
    """One phone, forever: connect, read frames, reconnect with htmx 4's back-off
    (its defaults, or the schedule our pages configure: `our_backoff()`)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus

    attempt = 0
    order = [urls[(phone.home + i) % len(urls)] for i in range(len(urls))]
    while True:
        for url in order:  # the "proxy": a refused connection goes to the next process
            try:
                async with connect(url.format(token=phone.token), origin=origin, open_timeout=OPEN_TIMEOUT,
                                   ping_interval=None, compression=None, max_size=2**20,
                                   close_timeout=2) as ws:
                    phone.open, attempt = True, 0
                    stats.opens += 1
                    try:
                        async for frame in ws:
                            phone.on_frame(frame)
                    except ConnectionClosed:
                        pass
                    rcvd = ws.protocol.close_rcvd
                    stats.closes[rcvd.code if rcvd is not None else "dropped (1006)"] += 1
                break
            except InvalidStatus as exc:
                stats.failures[f"HTTP {exc.response.status_code}"] += 1
                break
            except InvalidMessage:
                stats.failures["handshake dropped"] += 1
                break
            except TimeoutError:
                stats.failures["open timeout"] += 1
                break
            except ConnectionRefusedError:
                stats.failures["refused"] += 1
                continue
            except Exception as exc:  # anything else a real client could meet
                stats.failures[type(exc).__name__] += 1
                break
        phone.open = False
        phone.position = None
        attempt += 1
        await asyncio.sleep(next_delay(attempt, backoff))


def next_delay(attempt: int, backoff: tuple[float, float, float]) -> float:
    """Seconds before the `attempt`th retry: htmx's doubling back-off with its jitter."""
    first, most, jitter = backoff
    delay = min(first * 2 ** (attempt - 1), most)
    return max(0.0, delay + random.uniform(-jitter, jitter) * delay)


def phone_runner(client: str, phone: Phone, host: str, port: int, path: str, stats: Stats,
                 backoff: tuple[float, float, float] = HTMX_BACKOFF):
    """One phone on one server with the chosen client: `websockets` (run_phone) or `lean` (bench/lean_client.py)."""
    origin = f"http://{host}:{port}"
    if client == "lean":
        from bench.lean_client import run_lean_phone

        return run_lean_phone(phone, host, port, path, origin, stats, backoff)
    return run_phone(phone, [f"ws://{host}:{port}{path}"], origin, stats, backoff)


def expected_positions(queue_id: int) -> dict[str, int]:
    from queueapp.selectors import waiting_tickets

    return {t: i + 1 for i, t in enumerate(waiting_tickets(queue_id).values_list("token", flat=True))}


async def until_right(phones: list[Phone], expected: dict[str, int], seconds: float,
                      started: float, marks=(TARGET,)) -> tuple[float | None, dict]:
    """Seconds from `started` until every phone is open and right; right counts at `marks`."""
    at_marks: dict = {}
    deadline = started + seconds
    while True:
        now = time.monotonic()
        right = sum(1 for p in phones if p.open and p.position == expected.get(p.token))
        for mark in marks:
            if mark not in at_marks and now - started >= mark:
                at_marks[mark] = right
        if right == len(phones):
            for mark in marks:
                at_marks.setdefault(mark, right)
            return now - started, at_marks
        if now > deadline:
            at_marks["end"] = right
            return None, at_marks
        await asyncio.sleep(0.05)


async def staff_calls(server: Server, ids: dict, stop: asyncio.Event, out: list[float],
                      app_ms: list[float] | None = None) -> None:
    """Call next on the short queue (its own counter) over HTTP until `stop`: staff at
    work while the long queue's screens reconnect. The long line does not move."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(join_short, ids["short"])
            await http_post(server.port, f"/bench/complete/{ids['small']}", server.key)
            _wall, took, body = await http_post(server.port, f"/bench/call-next/{ids['small']}", server.key)
            out.append(took)
            if app_ms is not None:
                app_ms.append(float(body.rsplit("app_ms=", 1)[1]) if "app_ms=" in body else float("nan"))
        except Exception as exc:  # counted as a very slow call: staff saw it fail
            print(f"  !! staff call failed: {type(exc).__name__}: {exc}", flush=True)
            out.append(30.0)
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.1)


def call_long_twice(ids: dict) -> None:
    """Two patients leave the long line (through the services, as staff would)."""
    from queueapp.models import AT_COUNTER, Ticket
    from queueapp.services import do_call_next, do_complete

    for _ in range(2):
        active = Ticket.objects.filter(counter_id=ids["big"], status__in=AT_COUNTER).first()
        if active:
            do_complete(active)
        do_call_next(counter=ids["big"])


def ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"p50 {pct(values, 50) * 1000:.0f} ms, p99 {pct(values, 99) * 1000:.0f} ms ({len(values)} calls)"


async def bare_connect_rate(n: int, client: str = "websockets") -> float:
    """Screens per second for a bare `websockets` server and the same client
    (`websockets`: run_phone's; `lean`: bench/lean_client.py's)."""
    template_file = "/tmp/bench_restart_frame.txt"
    Path(template_file).write_text(await asyncio.to_thread(frame_template))
    port = free_port()
    proc = subprocess.Popen([PY, str(ROOT / "bench" / "live_fanout.py"), "--bare-server", str(port), template_file],
                            cwd=ROOT, env=bench_env())
    try:
        wait_port(port)
        phones = [Phone(str(1000 + i), 0) for i in range(n)]
        expected = {p.token: int(p.token) for p in phones}
        stats = Stats()
        started = time.monotonic()
        for p in phones:
            p.task = asyncio.get_running_loop().create_task(
                phone_runner(client, p, HOST, port, "/s?start={token}", stats))
        took, _ = await until_right(phones, expected, 120, started)
        for p in phones:
            p.task.cancel()
        await asyncio.gather(*(p.task for p in phones), return_exceptions=True)
        return n / took if took else float("nan")
    finally:
        proc.terminate()
        proc.wait(10)


class StaffDoor:
    """Where staff's HTTP requests go (`--staff-via`): `port` and `key` as a Server's."""

    def __init__(self, port: int, key: str):
        self.port, self.key = port, key


async def run_servers(count: int, ids: dict, args, report: list[str], staff_first: str = "on",
                      backlog: int | None = None, accepts: int = 0, client: str = "ours",
                      staff_via: str = "same") -> None:
    backoff = our_backoff() if client == "ours" else HTMX_BACKOFF
    print(f"\n=== {count} daphne process(es), {args.screens} screens, staff first {staff_first}, "
          f"listen backlog {backlog or 'default (50)'}, accepts per turn {accepts or 'unbounded'}, "
          f"phones' back-off {client} {backoff}, staff HTTP via {staff_via}", flush=True)
    env = {"LIVE_STAFF_FIRST": "1" if staff_first == "on" else "0", "LIVE_ACCEPTS_PER_TURN": str(accepts)}
    # staff_via "listener": the first process also listens on a port of its own
    # for staff (a proxy sends non-/ws/ requests there), so staff's connections
    # never queue in the kernel among the phones'. "process": HTTP served by a
    # daphne process of its own (the same app; no screen connects to it).
    # "proxy": production's arrangement (docker-compose.yml): nginx with
    # deploy/nginx.conf in front, /ws/ to the phones' process, the rest to a
    # daphne of its own; phones and staff both go through nginx.
    # "proxy@<n>": the same with nginx admitting n WebSocket opens a second
    # (burst n); plain "proxy" has no admission, as compose without
    # WS_ADMIT_RATE.
    staff_via, _, admit_rate = staff_via.partition("@")
    admit = {"WS_ADMIT_RATE": f"{admit_rate}r/s", "WS_ADMIT_BURST": admit_rate} if admit_rate else {}
    if staff_via == "proxy" and count != 1:
        raise SystemExit("staff via proxy: one phones' process (deploy/nginx.conf has one live upstream)")
    staff_port = free_port() if staff_via == "listener" else None
    servers = [Server("pubsub", name=f"restart{i}", backlog=backlog, extra_env=env,
                      extra_args=("-e", f"tcp:port={staff_port}:interface={HOST}") if staff_port and i == 0 else ())
               for i in range(count)]
    http_server = (Server("pubsub", extra_args=(), name="restart-http", extra_env=env,
                          backlog=backlog if staff_via == "proxy" else None)
                   if staff_via in ("process", "proxy") else None)
    exits = contextlib.ExitStack()
    proxy = (exits.enter_context(run_proxy(http_server.port, servers[0].port, **admit))
             if staff_via == "proxy" else None)
    if proxy:
        print(f"nginx /ws/ admission: {admission(**admit)}", flush=True)
    # The background worker, as in production: its tick (every 3 s) is what
    # repairs a screen that missed a message (the pub/sub layer drops what is
    # published while a process (re)subscribes).
    worker = subprocess.Popen([PY, "manage.py", "queue_worker"], cwd=ROOT, env=bench_env("pubsub"),
                              stdout=subprocess.DEVNULL, stderr=open("/tmp/bench_restart_worker.log", "a"))
    staff = (StaffDoor(staff_port, servers[0].key) if staff_port else
             StaffDoor(proxy.port, http_server.key) if proxy else
             http_server if http_server else servers[0])
    stats = Stats()
    tokens = await asyncio.to_thread(lambda: list(expected_positions(ids["long"]))[:args.screens])
    phones = [Phone(t, i % count) for i, t in enumerate(tokens)]
    doors = [proxy] if proxy else servers
    urls = [f"ws://{HOST}:{s.port}/ws/ticket/{{token}}/" for s in doors]
    origin = f"http://{HOST}:{doors[0].port}"
    try:
        await http_post(staff.port, f"/bench/complete/{ids['small']}", staff.key)  # warm up
        expected = await asyncio.to_thread(expected_positions, ids["long"])
        cpu_before = sum(cpu_seconds(s.proc.pid) for s in servers)
        started = time.monotonic()
        for p in phones:
            p.task = asyncio.get_running_loop().create_task(run_phone(p, urls, origin, stats, backoff))
        took, _ = await until_right(phones, expected, 180, started)
        cpu_ms = (sum(cpu_seconds(s.proc.pid) for s in servers) - cpu_before) / args.screens * 1000
        rate = args.screens / took if took else float("nan")
        line = (f"cold connect: {args.screens} screens right in {took or float('nan'):.1f} s = "
                f"{rate:.0f}/s ({rate / count:.0f}/s per process); server CPU {cpu_ms:.2f} ms per screen "
                f"(at most {1000 / cpu_ms:.0f}/s per process with a core to itself); "
                f"failed attempts {dict(stats.failures)}")
        print(line, flush=True)
        report.append(f"{count} proc: {line}")
        await asyncio.sleep(2)
        quiet: list[float] = []
        stop = asyncio.Event()
        calls = asyncio.get_running_loop().create_task(staff_calls(staff, ids, stop, quiet))
        await asyncio.sleep(args.quiet_seconds)
        stop.set()
        await calls
        print(f"staff call next, quiet, {args.screens} screens idle: {ms(quiet)}", flush=True)
        report.append(f"{count} proc: staff call next quiet: {ms(quiet)}")

        for sig_name in args.signals:
            for scope in args.scopes:
                if scope == "one" and count == 1:
                    continue
                await one_restart(servers, staff, phones, ids, stats, sig_name, scope, args, report, count,
                                  http_server)
    finally:
        for p in phones:
            if p.task:
                p.task.cancel()
        await asyncio.gather(*(p.task for p in phones if p.task), return_exceptions=True)
        exits.close()
        for s in servers + ([http_server] if http_server else []):
            s.stop()
        worker.terminate()
        worker.wait(10)


async def one_restart(servers, staff, phones, ids, stats, sig_name, scope, args, report, count,
                      http_server=None) -> None:
    sig = {"term": signal.SIGTERM, "kill": signal.SIGKILL}[sig_name]
    # "all" is a deploy: every process restarts, staff's HTTP process too.
    victims = (servers + ([http_server] if http_server else [])) if scope == "all" else servers[-1:]
    expected = await asyncio.to_thread(expected_positions, ids["long"])
    ok, _ = await until_right(phones, expected, 60, time.monotonic())
    if ok is None:
        print("  !! not every screen right before the restart", flush=True)
    stats.reset()
    load = os.getloadavg()
    signalled = time.monotonic()
    for s in victims:
        s.proc.send_signal(sig)
    for s in victims:
        try:
            await asyncio.to_thread(s.proc.wait, 30)
        except subprocess.TimeoutExpired:
            s.proc.kill()
            await asyncio.to_thread(s.proc.wait, 10)
    print(f"  stopped after {time.monotonic() - signalled:.1f} s; closes received {dict(stats.closes)}",
          flush=True)
    await asyncio.to_thread(call_long_twice, ids)  # every position changes while they are away
    expected = await asyncio.to_thread(expected_positions, ids["long"])
    for s in victims:
        s.start(wait=False)
    for s in victims:
        await asyncio.to_thread(wait_port, s.port, 60)
    listening = time.monotonic()
    storm: list[float] = []
    storm_app_ms: list[float] = []
    stop = asyncio.Event()
    calls = asyncio.get_running_loop().create_task(staff_calls(staff, ids, stop, storm, storm_app_ms))
    took, marks = await until_right(phones, expected, args.max_seconds, listening, marks=(10.0, TARGET))
    if took is None:
        states = collections.Counter((p.open, p.position == expected.get(p.token), p.task.done()) for p in phones)
        print(f"  (open, right, task done): {dict(states)}", flush=True)
    stop.set()
    await calls
    verdict = f"all right in {took:.1f} s" if took is not None else f"NOT all right after {args.max_seconds:.0f} s"
    line = (f"SIG{sig_name.upper()} {scope} ({len(victims)} of {count}): {verdict} of listening again; "
            f"right at 10 s {marks.get(10.0)}, at 30 s {marks.get(TARGET)} of {len(phones)}; "
            f"load {load[0]:.2f}")
    print(line, flush=True)
    print(f"  failed attempts {dict(stats.failures)}; closes received {dict(stats.closes)}", flush=True)
    print(f"  staff call next during the storm: {ms(storm)}; each, in order (ms): "
          f"{[round(v * 1000) for v in storm]}; of which inside the app: {[round(v) for v in storm_app_ms]}",
          flush=True)
    report.append(f"{count} proc: {line}; failed {dict(stats.failures)}; closes {dict(stats.closes)}; "
                  f"staff during storm {ms(storm)}")


async def main(args) -> None:
    limit = raise_file_limit()
    print(f"open files limit {limit}; {os.cpu_count()} CPU(s); {args.screens} screens; "
          f"servers {args.servers}; signals {args.signals}; scopes {args.scopes}; "
          f"load {os.getloadavg()}", flush=True)
    env = bench_env("pubsub")
    await asyncio.to_thread(setup_django, env, not args.reuse)
    waiting = args.screens + 200
    ids = await asyncio.to_thread(existing_ids if args.reuse else seed, waiting)
    report: list[str] = []
    if not args.skip_bare:
        rate = await bare_connect_rate(args.screens)
        print(f"\nbaseline: bare websockets server, same client: {rate:.0f} screens/s", flush=True)
        report.append(f"baseline bare websockets connect: {rate:.0f} screens/s")
    for count in args.servers:
        for variant in args.variants:
            staff_first, _, rest = variant.partition("/")
            backlog, _, rest = rest.partition("/")
            backlog, _, accepts = backlog.partition("+")
            client, _, staff_via = rest.partition("/")
            client, staff_via = client or "ours", staff_via or "same"
            report.append(f"--- staff first {staff_first}, backlog {backlog or 'default'}, "
                          f"accepts per turn {accepts or 'unbounded'}, phones {client}, staff via {staff_via} "
                          f"(load {os.getloadavg()[0]:.2f})")
            await run_servers(count, ids, args, report, staff_first, int(backlog) if backlog else None,
                              int(accepts or 0), client, staff_via)
    print("\n=== summary (load average now %.2f %.2f %.2f)" % os.getloadavg())
    for line in report:
        print(line)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--screens", default=5000, type=int)
    p.add_argument("--servers", default="1,2", type=lambda s: [int(x) for x in s.split(",")],
                   help="numbers of daphne processes to test, e.g. 1,2")
    p.add_argument("--signals", default="term,kill", type=lambda s: s.split(","))
    p.add_argument("--scopes", default="one,all", type=lambda s: s.split(","),
                   help="restart one process or all of them (one is skipped with a single process)")
    p.add_argument("--max-seconds", default=90.0, type=float, help="give up on a restart after this")
    p.add_argument("--quiet-seconds", default=5.0, type=float, help="staff calls measured on a quiet server")
    p.add_argument("--reuse", action="store_true", help="keep the tickets seeded by an earlier run")
    p.add_argument("--skip-bare", action="store_true")
    p.add_argument("--variants", default="on", type=lambda s: s.split(","),
                   help="servers to compare in one run, in turn: LIVE_STAFF_FIRST on/off, optionally "
                        "/<listen backlog>, optionally +<accepts per loop turn> (LIVE_ACCEPTS_PER_TURN), "
                        "optionally /<phones' back-off: ours (default: as our pages configure htmx) or htmx "
                        "(its defaults)>, optionally /<where staff's HTTP goes: same (default), listener (a "
                        "second port of the first process), process (a daphne of its own) or proxy (as docker-compose: "
                        "nginx with deploy/nginx.conf in front of the phones' daphne and a daphne for HTTP; "
                        "phones and staff through nginx; --servers 1; proxy@<n>: nginx admits n WebSocket opens "
                        "a second, burst n; plain proxy: none, as compose)>, e.g. "
                        "'off/50,on/4096,on/1024+20', 'on//htmx,on//ours', 'on//ours/same,on//ours/process', "
                        "'on/1024+20/ours/same,on/1024+20/ours/proxy', 'on/1024+20/ours/proxy@1000' "
                        "(no backlog: daphne -b -p, Twisted's 50; make run: on/1024+20)")
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
