"""Benchmark: a waiting room with 10,000 visitors arriving over HTTP within a minute.

    .venv/bin/python bench/waiting_room.py [--visitors 10000] [--arrival-seconds 60] [--servers 2]

All on loopback, on PostgreSQL + Redis (its own database, WAITBENCH_DATABASE_URL,
default postgres://postgres@127.0.0.1:5432/queueapp_waitbench, recreated; Redis
WAITBENCH_REDIS_URL, default redis://127.0.0.1:6379/9, channel prefix WAITBENCH_CHANNEL_PREFIX,
default `waitbench`: Redis pub/sub is not per database, so benches run side by side need their own):

1. The crowd, in a process of its own (`bench/crowd.py`, standard library
   only, so its CPU is measured apart from the servers'): `--visitors`
   browsers arrive at `/wait/<room>/?return=/buy` spread evenly over
   `--arrival-seconds`, each with its own cookies and address
   (X-Forwarded-For), round-robin over `--servers` daphne processes, while the
   worker (`manage.py queue_worker`) admits at `--rate` a minute with at most
   `--max-inside` inside. Its process runs at nice `--client-nice` (-10, as
   root), as if on machines of its own: on cores the servers saturate it keeps
   its schedule (its lateness is printed). A 503 is followed as the busy page does (again after
   Retry-After, until a place or `GIVE_UP_SECONDS`). Each visitor with a page
   opens its `hx-ws:connect` WebSocket as the page does (again on our pages'
   reconnect schedule if refused or lost); when a frame shows the admission,
   it loads the room's URL again, as `wait.js` does, and follows the 302 to the
   protected site with its admission token. Prints, per `--cpu-every` seconds,
   the visitors offered, first tries sent and places given, beside the CPU
   seconds the client, the servers, the worker, this process and the whole
   machine used; then places, answers by status (403/500/503), sockets, the
   client's lateness against its own schedule, and the client's and the
   servers' CPU per visitor.
2. Live: for `--live-seconds` after the arrivals the worker keeps admitting.
   The protected site (in this process, on the port after the servers') checks
   each token offline as docs/waiting-room.md shows and reports everyone it let
   in done over the API (room key), all at once every `--stay` seconds; an
   admission nobody follows lapses after `--admission-seconds`. Prints
   admissions per worker cycle (from the events: mean and max per second
   against the rate's `rate/60`), how many admitted pages showed it live, on
   reopening their socket, or never, and what the site let in and reported.
3. Baseline of the same run: the arrivals a second the servers place alone
   (`--capacity-arrivals` browsers, `--capacity-concurrency` at a time, into a
   room of their own, after the crowd has closed its sockets), beside the
   `visitors / arrival-seconds` offered, with the servers' CPU per arrival;
   then the cores the crowd would keep busy at the offered rate at the costs
   measured (client + servers per visitor), beside the machine's cores.
4. Time to admit the next visitor with 10,000 waiting beside 10 waiting, in the
   same run: two rooms (max 1 inside, a rate that never holds anyone back), the
   big one with the arrivals' line length. `--samples` times each, interleaved:
   POST release over HTTP for the visitor inside, which admits the next before
   it answers (its own transaction after the release's); a new visitor joins
   to keep the line length. p50/p99 side by side, and the ratio.

Exits non-zero if a visitor's arrival failed, a page missed its admission, the
protected site refused a token, more than `--max-inside` were ever inside, or
integrity problems were found. Every wait is bounded; servers and worker are stopped on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter as Tally
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import join_throughput as jt  # noqa: E402  (its server and database helpers)

jt.DATABASE_URL = os.environ.get("WAITBENCH_DATABASE_URL",
                                 "postgres://postgres@127.0.0.1:5432/queueapp_waitbench")
jt.REDIS_URL = os.environ.get("WAITBENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
jt.ENV.update({"DATABASE_URL": jt.DATABASE_URL, "REDIS_URL": jt.REDIS_URL, "CHANNEL_PREFIX": os.environ.get("WAITBENCH_CHANNEL_PREFIX", "waitbench"),
               "RATE_LIMIT_CLIENT_HEADER": "HTTP_X_FORWARDED_FOR", "WAIT_RATE_LIMIT": "100000/60",
               "ALLOWED_HOSTS": "127.0.0.1,localhost"})
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=60)
# A 503's busy page reloads itself after Retry-After, as often as it takes:
# so does each simulated browser, until it has a place or this many seconds
# have passed since it first arrived.
GIVE_UP_SECONDS = 600
# Seconds the pages stay after the last admission (LIVE_ROOM_UPDATE_EVERY, 0.5 s,
# and delivery on a loaded machine) before they go.
END_WINDOW = 5.0


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def site_port(args) -> int:
    """The protected site's port: the one after the servers'."""
    return args.port + args.servers


def setup_rooms(args) -> dict:
    from queueapp.models import Location
    from queueapp.services.rooms import do_create_waiting_room, do_enter_line, do_issue_room_key

    location = Location.objects.create(name="Bench Arena", slug="arena")
    rooms = {}
    for slug, rate, inside, lasts in (("tickets", args.rate, args.max_inside, args.admission_seconds),
                                      ("next-big", 600_000, 1, 3600), ("next-small", 600_000, 1, 3600),
                                      ("capacity", 1, 1, 3600)):
        target = f"http://127.0.0.1:{site_port(args)}/" if slug == "tickets" else "http://127.0.0.1:9/"
        room = do_create_waiting_room(location=location, name=slug, slug=slug, prefix="W",
                                      target_url=target, admit_per_minute=rate,
                                      max_inside=inside, admission_seconds=lasts)
        rooms[slug] = (room, do_issue_room_key(room))
    # The line of the "time to admit the next" rooms: one inside, then W waiting.
    from queueapp.models import Ticket

    for slug, waiting in (("next-big", args.visitors), ("next-small", 10)):
        room = rooms[slug][0]
        do_enter_line(room)
        # Bulk-create the waiting line through the service would take minutes at 10,000;
        # the service is what is measured later, so the line is written with its events.
        _bulk_line(room, waiting)
        assert Ticket.objects.filter(queue_id=room.queue_id).count() == waiting + 1
    return rooms


def _bulk_line(room, count: int) -> None:
    """`count` waiting visitors behind the one inside, with their JOINED events."""
    from django.db import transaction
    from django.utils import timezone

    from queueapp.models import Queue, QueueEvent, Ticket
    from queueapp.services.rooms import Priority

    with transaction.atomic():
        queue = Queue.objects.select_for_update().select_related("location").get(pk=room.queue_id)
        now, day = timezone.now(), queue.location.business_day()
        tickets = [Ticket(queue=queue, business_day=day, number=queue.last_number + i + 1,
                          priority=Priority.NORMAL, seq=queue.last_seq + i + 1, created_at=now, queued_at=now)
                   for i in range(count)]
        Ticket.objects.bulk_create(tickets, batch_size=2000)
        events = [QueueEvent(queue=queue, version=queue.version + i + 1, kind=QueueEvent.Kind.JOINED, ticket=t,
                             status_after="waiting", created_at=now,
                             data={"entered": [t.priority, t.seq]}) for i, t in enumerate(tickets)]
        QueueEvent.objects.bulk_create(events, batch_size=2000)
        Queue.objects.filter(pk=queue.pk).update(last_number=queue.last_number + count,
                                                 last_seq=queue.last_seq + count, number_day=day,
                                                 version=queue.version + count)


def machine_busy_seconds() -> tuple[float, int]:
    """CPU seconds all processes on the machine have used (/proc/stat: all but
    idle and iowait), and the number of cores."""
    with open("/proc/stat") as f:
        lines = f.read().splitlines()
    ticks = [int(x) for x in lines[0].split()[1:]]
    cores = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK"), cores


class CpuClock:
    """CPU seconds used so far by the crowd's process, the servers, the worker,
    this process (the protected site and the bench) and the whole machine."""

    def __init__(self, crowd_pid: int, servers: jt.Servers, worker_pid: int):
        self.crowd_pid, self.servers, self.worker_pid = crowd_pid, servers, worker_pid
        self.started = time.monotonic()
        self.rows: list[dict] = []

    def read(self) -> dict:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        machine, cores = machine_busy_seconds()
        def of(name: str, pid: int) -> float:
            try:
                return jt.process_cpu_seconds([pid])
            except FileNotFoundError:  # it has stopped: its last reading stands
                return self.rows[-1][name] if self.rows else 0.0

        return {"at": time.monotonic() - self.started, "crowd": of("crowd", self.crowd_pid),
                "servers": self.servers.cpu_seconds(), "worker": of("worker", self.worker_pid),
                "bench": usage.ru_utime + usage.ru_stime, "machine": machine, "cores": cores}

    async def sample(self, every: float) -> None:
        """A reading every `every` seconds from the crowd's start (one timer, not per visitor)."""
        while True:
            self.rows.append(self.read())
            await asyncio.sleep(every - (time.monotonic() - self.started) % every)


class ProtectedSite:
    """The protected site, on its own port: a visitor's browser arrives with its
    admission token; the site checks it offline exactly as docs/waiting-room.md
    shows (PyJWT, the keys from /.well-known/jwks.json) and reports everyone it
    let in done over the API, all of them at once every `stay` seconds."""

    def __init__(self, base: str, room: str, key: str, stay: float):
        import jwt

        self.jwt, self.room, self.base, self.key, self.stay = jwt, room, base, key, stay
        self.keys = jwt.PyJWKClient(f"{base}/.well-known/jwks.json")
        self.used: set[str] = set()
        self.let_in: list[str] = []
        self.refused = 0
        self.why_refused = Tally()  # the check's reason for each refusal (no token, no claim: no personal data)
        self.reported = Tally()
        self.last_report_done = asyncio.Event()  # (set after the report that follows `stop_reports`)

    def admitted_visitor(self, token: str) -> str | None:
        """docs/waiting-room.md's check: the visitor's id if `token` lets its holder in now."""
        jwt = self.jwt
        try:
            key = self.keys.get_signing_key_from_jwt(token).key
            claims = jwt.decode(token, key, algorithms=["EdDSA"], audience=self.room, issuer="queueapp",
                                options={"require": ["exp", "iat", "sub", "jti"]})
        except jwt.ExpiredSignatureError:
            exp = jwt.decode(token, options={"verify_signature": False}).get("exp", 0)
            self.why_refused[f"expired ({time.time() - exp:.0f} s before it reached the site)"] += 1
            return None
        except jwt.PyJWTError as exc:
            self.why_refused[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
            return None
        if claims["jti"] in self.used:
            self.why_refused["replayed"] += 1
            return None
        self.used.add(claims["jti"])
        return claims["sub"]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from urllib.parse import parse_qs, urlsplit

        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
            target = head.split(b" ", 2)[1].decode()
            token = parse_qs(urlsplit(target).query).get("queue_token", [""])[0]
            visitor = await asyncio.to_thread(self.admitted_visitor, token)  # (the first fetches the keys)
            if visitor is None:
                self.refused += 1
            else:
                self.let_in.append(visitor)
            status = b"200 OK" if visitor else b"403 Forbidden"
            writer.write(b"HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % status)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            writer.close()

    async def report(self, session: aiohttp.ClientSession) -> None:
        """Everyone let in since the last report: done, all at once (a site's
        visitors finish in parallel; one after another, the reports would bound
        the admissions, not the rate)."""
        visitors, self.let_in = self.let_in, []

        async def one(visitor: str) -> None:
            try:
                async with session.post(f"{self.base}/api/rooms/{self.room}/visitors/{visitor}/release",
                                        json={"outcome": "done"},
                                        headers={"Authorization": f"Bearer {self.key}"}) as answer:
                    self.reported[answer.status] += 1
            except (aiohttp.ClientError, TimeoutError):
                self.reported["timeout or error"] += 1

        await asyncio.gather(*(one(v) for v in visitors))

    async def run(self, port: int, stop_reports: asyncio.Event, stop: asyncio.Event) -> None:
        server = await asyncio.start_server(self.handle, "127.0.0.1", port)
        async with server, aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as session:
            while not stop_reports.is_set():
                try:
                    await asyncio.wait_for(stop_reports.wait(), self.stay)
                except TimeoutError:
                    pass
                await self.report(session)
            self.last_report_done.set()
            await stop.wait()  # (visitors on their way in are still let in, not reported)


async def crowd(args, servers: jt.Servers, worker_pid: int, live_over) -> tuple[dict, CpuClock, dict]:
    """Run bench/crowd.py in a process of its own; returns its result, the CPU
    readings every `--cpu-every` seconds, and the readings at its phases.
    `live_over()` runs when its live phase ends, before it is told to leave."""
    plan = {"servers": [["127.0.0.1", port] for port in servers.ports], "room": "tickets", "return": "/buy", "visitors": args.visitors, "arrival_seconds": args.arrival_seconds,
            "live_seconds": args.live_seconds, "give_up_seconds": GIVE_UP_SECONDS,
            "request_timeout": REQUEST_TIMEOUT.total, "reconnect": list(page_reconnect())}
    def ahead() -> None:
        # Browsers run on machines of their own: a nice value below 0 lets the crowd's
        # process keep its schedule on cores the servers saturate (it is cheap: see its CPU).
        try:
            os.setpriority(os.PRIO_PROCESS, 0, args.client_nice)
        except PermissionError:  # (not root: it runs at the servers' priority, and says so)
            pass

    process = await asyncio.create_subprocess_exec(
        jt.PYTHON, str(ROOT / "bench" / "crowd.py"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        limit=1 << 28, preexec_fn=ahead)
    args.client_nice_used = os.getpriority(os.PRIO_PROCESS, process.pid)
    clock = CpuClock(process.pid, servers, worker_pid)
    phases: dict = {}
    sampler = None
    process.stdin.write(json.dumps(plan).encode() + b"\n")
    result = None
    try:
        async with asyncio.timeout(args.arrival_seconds + GIVE_UP_SECONDS + args.live_seconds + 300):
            while line := await process.stdout.readline():
                message = json.loads(line)
                phases[message["event"]] = clock.read()
                if message["event"] == "started":
                    clock.started = time.monotonic()
                    phases["started"] = clock.read()
                    sampler = asyncio.create_task(clock.sample(args.cpu_every))
                elif message["event"] == "live-over":
                    await live_over()
                    process.stdin.write(b"leave\n")
                    process.stdin.close()
                elif message["event"] == "result":
                    result = message
            await process.wait()
    finally:
        if sampler is not None:
            sampler.cancel()
        if process.returncode is None:
            process.kill()
            await process.wait()
    if result is None:
        raise RuntimeError(f"the crowd's process ended without a result (exit {process.returncode})")
    clock.rows.append(phases["result"])
    return result, clock, phases


def page_reconnect() -> tuple[float, float, float]:
    """The schedule our pages give htmx to reopen a socket (settings.LIVE_RECONNECT_*)."""
    from queueapp.templatetags.live_tags import reconnect_config

    c = reconnect_config()
    return c["reconnectDelay"] / 1000, c["reconnectMaxDelay"] / 1000, c["reconnectJitter"]


def report_crowd(args, result: dict, clock: CpuClock, phases: dict) -> dict:
    """Print what the crowd did and what it cost; returns the figures the verdict needs."""
    visitors = result["visitors"]  # [due, sent, placed, statuses, error, token, sockets, saw, entered]
    n, window = len(visitors), args.cpu_every
    answers = Tally({int(k): v for k, v in result["answers"].items()})
    reloads = {int(k): v for k, v in result["reloads"].items()}
    tally = Tally(result["tally"])
    placed = [v[2] - v[1] for v in visitors if v[2] is not None]
    lag = [v[1] - v[0] for v in visitors if v[1] is not None]
    errors = Tally(v[4] for v in visitors if v[4])
    last_placed = max((v[2] for v in visitors if v[2] is not None), default=float("nan"))
    print(f"crowd: {n} visitors offered over {args.arrival_seconds:.0f} s ({n / args.arrival_seconds:.0f}/s) by one "
          f"client process (bench/crowd.py, nice {args.client_nice_used}), {clock.rows[-1]['cores']} cores on this machine")
    print(f"  the client's own lateness (first try sent after its due time): p50 {percentile(lag, 0.5) * 1000:.0f} ms "
          f"p99 {percentile(lag, 0.99) * 1000:.0f} ms max {max(lag, default=float('nan')) * 1000:.0f} ms")
    print(f"  places: {len(placed)} of {n}; {sum(1 for v in visitors if v[2] is not None and v[2] <= args.arrival_seconds)}"
          f" placed within the {args.arrival_seconds:.0f} s, the last at {last_placed:.1f} s; time from arriving to a "
          f"place (503 back-offs included) p50 {percentile(placed, 0.5):.1f} s p99 {percentile(placed, 0.99):.1f} s; "
          f"tries per visitor max {max((len(v[3]) for v in visitors), default=0)}")
    print(f"  answers {dict(sorted(answers.items()))}: HTTP 500 {answers[500]}, 503 {answers[503]} (back-offs after "
          f"Retry-After; {errors['arrival answered 503']} still 503 after {GIVE_UP_SECONDS} s); arrival timeouts "
          f"{sum(c for e, c in errors.items() if 'timed out' in e)}; errors {dict(errors) or 'none'}; the reloads "
          f"after an admission answered {dict(sorted(reloads.items()))}")
    print(f"  sockets: {sum(1 for v in visitors if v[6])} pages opened one; refused 403 {tally['socket 403']}, "
          f"other refusals {sum(c for k, c in tally.items() if k.startswith('socket ') and k[7:].isdigit() and k != 'socket 403')}, "
          f"handshake timeouts {tally['socket handshake timeout']}, connect errors "
          f"{sum(c for k, c in tally.items() if k.startswith('socket connect'))}, reopened (htmx's schedule) "
          f"{tally['socket reopened']}; open at the end {result['open_pages_at_end']}; {dict(tally)}")
    # Offered against placed, per window of the run (the client's clock).
    rows = clock.rows
    print(f"  per {window:.0f} s: visitors offered, first tries sent and places given; CPU seconds used by the "
          f"client, the servers, the worker, this process and the whole machine (of {rows[-1]['cores']} x {window:.0f})")
    print(f"  {'seconds':>9} {'offered':>8} {'sent':>6} {'placed':>7} {'client':>7} {'servers':>8} {'worker':>7} "
          f"{'bench':>6} {'machine':>8}")
    for i in range(1, len(rows)):
        lo, hi = rows[i - 1]["at"], rows[i]["at"]
        if hi - lo < 0.5:
            continue
        within = lambda t: t is not None and lo <= t < hi  # noqa: E731
        d = {k: rows[i][k] - rows[i - 1][k] for k in ("crowd", "servers", "worker", "bench", "machine")}
        print(f"  {lo:4.0f}-{hi:<4.0f} {sum(1 for v in visitors if within(v[0])):>8} "
              f"{sum(1 for v in visitors if within(v[1])):>6} {sum(1 for v in visitors if within(v[2])):>7} "
              f"{d['crowd']:>7.1f} {d['servers']:>8.1f} {d['worker']:>7.1f} {d['bench']:>6.1f} {d['machine']:>8.1f}")
    arrived, end = phases["arrived"], phases["result"]
    start = phases["started"]
    cpu = result["cpu"]
    client_total = cpu["arrivals"] + cpu["live"]
    servers_arrivals = arrived["servers"] - start["servers"]
    servers_live = end["servers"] - arrived["servers"]
    requests = sum(len(v[3]) for v in visitors) + sum(reloads.values()) + sum(1 for v in visitors if v[8] is not None)
    frames = result["frames"]["arrivals"] + result["frames"]["live"]
    wall = end["at"] - start["at"]
    print(f"  CPU, client (bench/crowd.py): {cpu['arrivals']:.1f} s while arriving ({arrived['at'] - start['at']:.1f} s) "
          f"+ {cpu['live']:.1f} s live ({args.live_seconds:.0f} s) = {client_total / n * 1000:.2f} ms a visitor "
          f"({requests} requests, {sum(v[6] for v in visitors)} socket opens, {frames} frames)")
    print(f"  CPU, servers ({args.servers} daphne): {servers_arrivals:.1f} s + {servers_live:.1f} s = "
          f"{(servers_arrivals + servers_live) / n * 1000:.2f} ms a visitor; worker "
          f"{end['worker'] - start['worker']:.1f} s; this process (protected site, bench) {end['bench'] - start['bench']:.1f} s; "
          f"the machine {end['machine'] - start['machine']:.1f} s of {wall * end['cores']:.0f} s "
          f"({end['cores']} cores x {wall:.0f} s)")
    return {"client_ms": client_total / n * 1000, "servers_ms": (servers_arrivals + servers_live) / n * 1000,
            "errors": sum(errors.values()), "cores": end["cores"]}


def admissions_per_cycle(queue_id: int) -> tuple[float, int, int, int]:
    from django.db.models.functions import TruncSecond

    from queueapp.models import QueueEvent

    rows = (QueueEvent.objects.filter(queue_id=queue_id, kind=QueueEvent.Kind.CONFIRMED)
            .annotate(s=TruncSecond("created_at")).values_list("s", flat=True))
    per_second = Tally(rows)
    counts = list(per_second.values()) or [0]
    inside = [e["seats_taken"] for e in QueueEvent.objects.filter(queue_id=queue_id)
              .values_list("data", flat=True) if isinstance(e, dict) and "seats_taken" in e] or [0]
    return statistics.fmean(counts), max(counts), sum(counts), max(inside)


def explain_missed(queue_id: int, pages: list, left_at: float) -> None:
    """For every admitted page that never showed its admission live: what it last
    showed (status, place, when), which versions of the room gave that place,
    against the admission (its version, when it was made, when it ended) and
    the moment the pages left. A breakdown by cause, then one line per page."""
    from queueapp.models import QueueEvent, Ticket

    tickets = {t.token: t for t in Ticket.objects.filter(queue_id=queue_id, token__in=[v[5] for v in pages])}
    events = list(QueueEvent.objects.filter(queue_id=queue_id).order_by("version")
                  .values_list("version", "kind", "ticket_id", "created_at", "data"))
    causes, lines = Tally(), []
    for v in pages:
        ticket = tickets[v[5]]
        key = (-ticket.priority, ticket.seq)
        position, joined, admitted_at, admitted_version, ended = 1, None, None, None, None
        shown = v[9][2] if v[9] else None
        showing = []  # the versions at which the page's last place was the true one
        for version, kind, ticket_id, created, data in events:
            data = data or {}
            for name, step in (("entered", 1), ("left", -1)):
                other = data.get(name)
                if other and ticket_id != ticket.pk and (-other[0], other[1]) < key:
                    position += step
            if ticket_id == ticket.pk:
                if kind == QueueEvent.Kind.JOINED:
                    joined = version
                elif kind == QueueEvent.Kind.CONFIRMED:
                    admitted_version, admitted_at = version, created.timestamp()
                elif admitted_version is not None and ended is None:
                    ended = (kind, created.timestamp())
            if joined is not None and admitted_version is None and position == shown:
                showing.append(version)
        frame_at = v[9][0] if v[9] else None
        if v[9] is None:
            cause = "no frame ever"
        elif not v[10] and (v[12] or 0) > (v[11] or 0) and v[12] < (ended[1] if ended else left_at):
            cause = "socket lost before the admission ended and not open again"
        elif frame_at < admitted_at:
            if ended and ended[1] < left_at:
                cause = f"no frame after the admission, which ended ({ended[0]}) before the pages left"
            elif left_at - admitted_at < 5:
                cause = "no frame after the admission, made < 5 s before the pages left"
            else:
                cause = "no frame after the admission (page open, admission current)"
        else:
            cause = f"a frame after the admission showed {v[9][1]!r}"
        causes[cause] += 1
        lines.append(f"    ticket {ticket.pk} ({ticket.status}): last frame {v[9][1] if v[9] else None} place "
                     f"{shown} at {frame_at - admitted_at if frame_at else float('nan'):+.1f} s from the admission "
                     f"(v{admitted_version}), that place held at v{showing[0] if showing else None}-"
                     f"v{showing[-1] if showing else None}; admission ended "
                     f"{f'{ended[0]} {ended[1] - admitted_at:+.1f} s' if ended else 'no'}; pages left "
                     f"{left_at - admitted_at:+.1f} s; socket open at the end {v[10]}, sockets {v[6]}, last lost "
                     f"{f'{v[12] - admitted_at:+.1f} s' if v[12] else 'never'}; frames {v[9][3] if v[9] else 0}; last "
                     f"showed waiting {f'{v[13] - admitted_at:+.1f} s' if v[13] else 'never'}")
    print(f"  the {len(pages)} pages that never saw it, by cause: {dict(causes.most_common())}")
    for line in lines[:60]:
        print(line)


async def time_to_admit_next(args, base: str, rooms: dict) -> dict:
    """Release the one inside over HTTP (which admits the next), big and small room interleaved."""
    from asgiref.sync import sync_to_async

    from queueapp.models import Ticket, TicketStatus
    from queueapp.services.rooms import do_enter_line

    def inside(room) -> int:
        return Ticket.objects.filter(queue_id=room.queue_id, status=TicketStatus.CONFIRMED).values_list(
            "pk", flat=True).get()

    results = {"next-big": [], "next-small": []}
    async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as session:
        for _ in range(args.samples):
            for slug in ("next-big", "next-small"):
                room, key = rooms[slug]
                pk = await sync_to_async(inside)(room)
                started = time.perf_counter()
                async with session.post(f"{base}/api/rooms/{slug}/visitors/{pk}/release", json={"outcome": "done"},
                                        headers={"Authorization": f"Bearer {key}"}) as answer:
                    await answer.read()
                    assert answer.status == 200, answer.status
                results[slug].append((time.perf_counter() - started) * 1000)
                await sync_to_async(do_enter_line)(room)  # the line keeps its length
    return results


async def arrival_capacity(args, bases: list[str]) -> tuple[float, float]:
    """The baseline of the same run: how many arrivals a second the servers place
    when nothing else happens (after the crowd has left), `--capacity-arrivals`
    browsers at `--capacity-concurrency` at a time, round-robin over the
    servers, into a room of its own. Returns (arrivals a second, p50 ms)."""
    latencies: list[float] = []
    count = iter(range(args.capacity_arrivals))
    failed = Tally()

    async def browser() -> None:
        for n in count:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                             timeout=REQUEST_TIMEOUT) as session:
                started = time.perf_counter()
                async with session.get(f"{bases[n % len(bases)]}/wait/capacity/?return=/buy",
                                       allow_redirects=False,
                                       headers={"X-Forwarded-For": f"11.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"}
                                       ) as answer:
                    await answer.read()
                    if answer.status not in (200, 302):  # (the first is let in at once)
                        failed[answer.status] += 1
                latencies.append((time.perf_counter() - started) * 1000)

    started = time.monotonic()
    await asyncio.gather(*(browser() for _ in range(args.capacity_concurrency)))
    took = time.monotonic() - started
    if failed:
        print(f"  (capacity baseline answers other than 200/302: {dict(failed)})")
    return args.capacity_arrivals / took, percentile(latencies, 0.5)


async def run(args, servers: jt.Servers, rooms: dict) -> int:
    from asgiref.sync import sync_to_async

    from queueapp.integrity import validate_queue_integrity
    from queueapp.models import Ticket, TicketStatus

    await servers.wait_ready()
    bases = [f"http://127.0.0.1:{port}" for port in servers.ports]
    worker = subprocess.Popen([jt.PYTHON, "manage.py", "queue_worker"], cwd=jt.ROOT, env=jt.ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    site = ProtectedSite(bases[0], "tickets", rooms["tickets"][1], args.stay)

    def stop_worker() -> None:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:  # a worker slow to stop at load 15 lost the run's figures
            worker.kill()
            worker.wait()

    async def live_over() -> None:
        """No admissions after this (no worker, no reports whose release admits
        the next); the pages get the last batch of frames before they go. The
        site's last report (its releases admit the next) is waited for before the
        worker stops: it used to run on while the 2 s window passed, and admissions
        it made a moment before the pages left counted as pages that never saw
        theirs (session 9, `missed2`)."""
        stop_reports.set()
        try:
            await asyncio.wait_for(site.last_report_done.wait(), 120)
        except TimeoutError:
            print("protected site: its last report did not finish within 120 s")
        await asyncio.to_thread(stop_worker)
        await asyncio.sleep(END_WINDOW)

    stop_reports, stop = asyncio.Event(), asyncio.Event()
    site_task = asyncio.create_task(site.run(site_port(args), stop_reports, stop))
    try:
        result, clock, phases = await crowd(args, servers, worker.pid, live_over)
    finally:
        stop_reports.set()
        stop.set()
        stop_worker()
    try:
        await asyncio.wait_for(site_task, timeout=120)
    except TimeoutError:  # a saturated server: report what was measured, not a traceback
        print("protected site: its reports did not finish within 120 s")

    costs = report_crowd(args, result, clock, phases)
    room = rooms["tickets"][0]
    mean, most, admitted, max_inside = await sync_to_async(admissions_per_cycle)(room.queue_id)
    admitted_tokens = set(await sync_to_async(lambda: list(Ticket.objects.filter(
        queue_id=room.queue_id, confirmed_at__isnull=False).values_list("token", flat=True)))())
    expired = await sync_to_async(Ticket.objects.filter(queue_id=room.queue_id, status=TicketStatus.EXPIRED).count)()
    # [due, sent, placed, statuses, error, token, sockets, saw, entered, last frame, open when the pages
    #  left, last socket opened, last lost, last frame showing "waiting"] (bench/crowd.py)
    visitors = result["visitors"]
    at_once = [v for v in visitors if v[2] is not None and v[5] is None]
    with_page = [v for v in visitors if v[5] in admitted_tokens]
    saw = Tally(v[7] for v in with_page)
    missed = saw[None]
    entered = Tally(str(v[8]) for v in at_once + with_page)
    print(f"live: {args.live_seconds:.0f} s after the arrivals; admitted {admitted} (rate {args.rate}/min, at most "
          f"{args.max_inside} inside, admissions last {args.admission_seconds} s); admissions per second (worker "
          f"cycle) mean {mean:.2f} max {most} against rate/60 = {args.rate / 60:.2f}; most inside {max_inside}")
    print(f"live pages: of the {len(with_page)} admitted after their page came, {saw['live']} saw it on their open "
          f"page, {saw['reconnect']} on reopening its socket, {missed} never ({len(at_once)} more were admitted on "
          f"arriving); went on to the protected site: {dict(sorted(entered.items()))}; the site let in "
          f"{len(site.used)}, refused {site.refused} {dict(site.why_refused)}; reported done: {dict(site.reported)}; admissions that "
          f"lapsed unreported: {expired}")
    if missed:
        await sync_to_async(explain_missed)(room.queue_id, [v for v in with_page if v[7] is None], result["left_at"])
    if args.capacity_arrivals:
        before = servers.cpu_seconds()
        rate, p50 = await arrival_capacity(args, bases)
        alone_ms = (servers.cpu_seconds() - before) / args.capacity_arrivals * 1000
        costs["alone_ms"] = alone_ms
        print(f"baseline, same run, after the crowd: the servers place {rate:.0f} arrivals a second "
              f"({args.capacity_arrivals} browsers, {args.capacity_concurrency} at a time; p50 {p50:.0f} ms; "
              f"servers' CPU {alone_ms:.2f} ms an arrival) against the "
              f"{args.visitors / args.arrival_seconds:.0f} a second offered")
    offered = args.visitors / args.arrival_seconds
    print(f"the crowd's CPU at the offered {offered:.0f}/s: client {costs['client_ms']:.2f} + servers "
          f"{costs['servers_ms']:.2f} ms a visitor (as measured in this run, back-offs and sockets included) x "
          f"{offered:.0f}/s = {(costs['client_ms'] + costs['servers_ms']) * offered / 1000:.2f} cores busy, "
          f"of the {costs['cores']} this machine has (client alone {costs['client_ms'] * offered / 1000:.2f})")
    if "alone_ms" in costs:
        print(f"  at the servers' cost of an arrival alone (the baseline, no socket, no frames) plus the client's: "
              f"({costs['alone_ms']:.2f} + {costs['client_ms']:.2f}) ms x {offered:.0f}/s = "
              f"{(costs['alone_ms'] + costs['client_ms']) * offered / 1000:.2f} cores")
    samples = await time_to_admit_next(args, bases[0], rooms)
    big, small = samples["next-big"], samples["next-small"]
    print(f"time to admit the next (POST release over HTTP, which admits the next before it answers), "
          f"{args.samples} samples each:")
    print(f"  {args.visitors:>6} waiting: p50 {percentile(big, 0.5):6.1f} ms  p99 {percentile(big, 0.99):6.1f} ms")
    print(f"  {10:>6} waiting: p50 {percentile(small, 0.5):6.1f} ms  p99 {percentile(small, 0.99):6.1f} ms")
    print(f"  ratio p50 {percentile(big, 0.5) / percentile(small, 0.5):.2f}, "
          f"p99 {percentile(big, 0.99) / percentile(small, 0.99):.2f}")
    problems = []
    for slug in rooms:
        problems += await sync_to_async(validate_queue_integrity)(rooms[slug][0].queue_id)
    print(f"integrity problems: {len(problems)}")
    for problem in problems[:10]:
        print("  ", problem)
    ok = (not costs["errors"] and max_inside <= args.max_inside and not missed and not problems
          and not site.refused)
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=10_000)
    parser.add_argument("--arrival-seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=int, default=600, help="admissions per minute")
    parser.add_argument("--max-inside", type=int, default=50)
    parser.add_argument("--stay", type=float, default=2.0, help="seconds before the site reports a visitor done")
    parser.add_argument("--live-seconds", type=float, default=20.0)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--capacity-arrivals", type=int, default=500,
                        help="arrivals of the same-run baseline (0: none)")
    parser.add_argument("--capacity-concurrency", type=int, default=32)
    parser.add_argument("--port", type=int, default=8740)
    parser.add_argument("--pool-max", type=int, default=20)
    parser.add_argument("--admission-seconds", type=int, default=60,
                        help="how long an admission lasts unless the site reports it (an unfollowed one lapses)")
    parser.add_argument("--cpu-every", type=float, default=10.0, help="seconds between CPU readings")
    parser.add_argument("--client-nice", type=int, default=-10,
                        help="the crowd process's nice value (below 0, root only: ahead of the servers for the CPU)")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the protected site's visitors
    jt.recreate_database()
    jt.manage("migrate", "--noinput", "-v", "0")
    jt.setup_django()
    rooms = setup_rooms(args)
    servers = jt.Servers(args.servers, args.port, args.pool_max)
    try:
        code = asyncio.run(run(args, servers, rooms))
    finally:
        servers.stop()
    sys.exit(code)


if __name__ == "__main__":
    main()
