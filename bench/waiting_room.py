"""Benchmark: a waiting room with 10,000 visitors arriving over HTTP within a minute.

    .venv/bin/python bench/waiting_room.py [--visitors 10000] [--arrival-seconds 60] [--servers 2]

All on loopback, on PostgreSQL + Redis (its own database, WAITBENCH_DATABASE_URL,
default postgres://postgres@127.0.0.1:5432/queueapp_waitbench, recreated; Redis
WAITBENCH_REDIS_URL, default redis://127.0.0.1:6379/9, channel prefix `waitbench`):

1. Arrivals: `--visitors` browsers arrive at `/wait/<room>/?return=/buy` spread
   evenly over `--arrival-seconds`, each with its own cookie jar and address
   (X-Forwarded-For), round-robin over `--servers` daphne processes, while the
   worker (`manage.py queue_worker`) admits at `--rate` a minute with at most
   `--max-inside` inside. Each visitor then opens its live page's WebSocket (the
   `hx-ws:connect` of the page) and keeps it. A 503 is followed as the busy page
   does (again after Retry-After, until a place or `GIVE_UP_SECONDS`). Prints the
   arrival rate reached, how many got a place and how long it took them (back-offs
   included), the latency of the answer that counted (p50/p99), sockets connected,
   and frames received.
2. Live: for `--live-seconds` the worker keeps admitting and a "protected site"
   reports each admitted visitor done over the API (room key), all of those inside
   at once every `--stay` seconds. At the end every
   admitted visitor's socket must have shown "It is your turn", and the waiting
   ones their new place. Prints admissions per worker cycle (from the events:
   mean and max per second against the rate's `rate/60`) and how many live pages
   showed their admission.
3. Baseline of the same run: the arrivals a second the servers place alone
   (`--capacity-arrivals` browsers, `--capacity-concurrency` at a time, into a
   room of their own, after the crowd has closed its sockets), beside the
   `visitors / arrival-seconds` offered.
4. Time to admit the next visitor with 10,000 waiting beside 10 waiting, in the
   same run: two rooms (max 1 inside, a rate that never holds anyone back), the
   big one with the arrivals' line length. `--samples` times each, interleaved:
   POST release over HTTP for the visitor inside, which admits the next before
   it answers (its own transaction after the release's); a new visitor joins
   to keep the line length. p50/p99 side by side, and the ratio.

Exits non-zero if a request failed, a socket did not connect, a live page missed
its admission, more than `--max-inside` were ever inside, or integrity problems
were found. Every wait is bounded; servers and worker are stopped on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
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
jt.ENV.update({"DATABASE_URL": jt.DATABASE_URL, "REDIS_URL": jt.REDIS_URL, "CHANNEL_PREFIX": "waitbench",
               "RATE_LIMIT_CLIENT_HEADER": "HTTP_X_FORWARDED_FOR", "WAIT_RATE_LIMIT": "100000/60",
               "ALLOWED_HOSTS": "127.0.0.1,localhost"})
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=60)
# A 503's busy page reloads itself after Retry-After, as often as it takes:
# so does each simulated browser, until it has a place or this many seconds
# have passed since it first arrived.
GIVE_UP_SECONDS = 600
TOKEN = re.compile(r'hx-ws:connect="(/ws/ticket/[^"]+/)"')


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def setup_rooms(args) -> dict:
    from queueapp.models import Location
    from queueapp.services.rooms import do_create_waiting_room, do_enter_line, do_issue_room_key

    location = Location.objects.create(name="Bench Arena", slug="arena")
    rooms = {}
    for slug, rate, inside in (("tickets", args.rate, args.max_inside),
                               ("next-big", 600_000, 1), ("next-small", 600_000, 1), ("capacity", 1, 1)):
        room = do_create_waiting_room(location=location, name=slug, slug=slug, prefix="W",
                                      target_url="http://127.0.0.1:9/", admit_per_minute=rate,
                                      max_inside=inside, admission_seconds=3600)
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


class Visitor:
    def __init__(self, n: int, base: str):
        self.n, self.base = n, base
        self.session: aiohttp.ClientSession | None = None
        self.ws = None
        self.frames = 0
        self.last = ""
        self.admitted_seen = False
        self.arrival_ms = None
        self.error = None
        self.token = None
        self.statuses: list[int] = []  # every answer to an arrival (503s are retried)
        self.placed_ms = None  # from the first try to the answer that gave a place

    async def arrive(self, room: str) -> None:
        jar = aiohttp.CookieJar(unsafe=True)
        self.session = aiohttp.ClientSession(cookie_jar=jar, timeout=REQUEST_TIMEOUT)
        headers = {"X-Forwarded-For": f"10.{self.n >> 16 & 255}.{self.n >> 8 & 255}.{self.n & 255}"}
        started = time.perf_counter()
        step = "arrival"
        try:
            while True:
                tried = time.perf_counter()
                async with self.session.get(f"{self.base}/wait/{room}/?return=/buy", allow_redirects=False,
                                            headers=headers) as answer:
                    body = await answer.text()
                    self.statuses.append(answer.status)
                    self.arrival_ms = (time.perf_counter() - tried) * 1000  # the answer that counted
                    if answer.status != 503:
                        break
                    retry = int(answer.headers.get("Retry-After", "5"))
                    if time.perf_counter() + retry - started > GIVE_UP_SECONDS:
                        break
                    # The busy page reloads itself after Retry-After: so does this browser.
                    await asyncio.sleep(retry)
            if answer.status in (200, 302):
                self.placed_ms = (time.perf_counter() - started) * 1000
            if answer.status == 302:
                self.admitted_seen = True
                return
            if answer.status != 200:
                self.error = f"arrival answered {answer.status}"
                return
            path = TOKEN.search(body).group(1)
            self.token = path.rstrip("/").rsplit("/", 1)[1]
            step = "socket"
            self.ws = await self.session.ws_connect(f"{self.base.replace('http', 'ws')}{path}",
                                                   headers={"Origin": self.base}, heartbeat=None)
            asyncio.get_running_loop().create_task(self.read())
        except aiohttp.WSServerHandshakeError as exc:
            self.error = f"socket refused {exc.status}"
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            self.error = f"{step} timed out"
        except Exception as exc:  # counted and reported, never retried
            self.error = f"{step}: {type(exc).__name__}: {exc}"

    async def read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            self.frames += 1
            self.last = message.data
            if 'data-status="confirmed"' in message.data:
                self.admitted_seen = True

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()


async def arrivals(args, bases: list[str]) -> list[Visitor]:
    visitors = [Visitor(n, bases[n % len(bases)]) for n in range(args.visitors)]
    started = time.monotonic()
    tasks = []
    for i, visitor in enumerate(visitors):
        due = started + i * args.arrival_seconds / args.visitors
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(visitor.arrive("tickets")))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=args.arrival_seconds + GIVE_UP_SECONDS + 120)
    took = time.monotonic() - started
    latencies = [v.arrival_ms for v in visitors if v.arrival_ms is not None]
    errors = Tally(v.error for v in visitors if v.error)
    connected = sum(1 for v in visitors if v.ws is not None)
    answers = Tally(status for v in visitors for status in v.statuses)
    placed = [v.placed_ms / 1000 for v in visitors if v.placed_ms is not None]
    print(f"arrivals: {len(visitors)} in {took:.1f} s ({len(visitors) / took:.0f}/s); "
          f"latency of the answer that counted p50 {percentile(latencies, 0.5):.0f} ms "
          f"p99 {percentile(latencies, 0.99):.0f} ms; live sockets {connected}")
    print(f"places: {len(placed)} of {len(visitors)} visitors got one; time from arriving to a place "
          f"(503 back-offs included) p50 {percentile(placed, 0.5):.1f} s p99 {percentile(placed, 0.99):.1f} s "
          f"max {max(placed, default=float('nan')):.1f} s; tries per visitor max "
          f"{max((len(v.statuses) for v in visitors), default=0)}")
    print(f"failures: HTTP 500 {answers[500]}, HTTP 503 {answers[503]} (back-offs after Retry-After; "
          f"{sum(1 for v in visitors if v.error == 'arrival answered 503')} still 503 after {GIVE_UP_SECONDS} s), "
          f"timeouts {sum(1 for v in visitors if v.error and 'timed out' in v.error)}, "
          f"socket 403 {errors['socket refused 403']}; all answers {dict(sorted(answers.items()))}; "
          f"errors {dict(errors) or 'none'}")
    return visitors


async def protected_site(args, base: str, key: str, stop: asyncio.Event) -> int:
    """Report every admitted visitor done, as the protected site would."""
    from asgiref.sync import sync_to_async

    from queueapp.models import Ticket, TicketStatus, WaitingRoom

    room = await sync_to_async(WaitingRoom.objects.get)(slug="tickets")
    reported = 0
    async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as session:
        while not stop.is_set():
            inside = await sync_to_async(lambda: list(Ticket.objects.filter(
                queue_id=room.queue_id, status=TicketStatus.CONFIRMED).values_list("pk", flat=True)))()
            async def report(pk: int) -> bool:
                async with session.post(f"{base}/api/rooms/tickets/visitors/{pk}/release",
                                        json={"outcome": "done"},
                                        headers={"Authorization": f"Bearer {key}"}) as answer:
                    return answer.status == 200

            # A site reports its visitors as each finishes, not one after another:
            # in turn, the reports (not the rate) bounded the admissions.
            reported += sum(await asyncio.gather(*(report(pk) for pk in inside)))
            await asyncio.sleep(args.stay)
    return reported


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

    await servers.wait_ready()
    bases = [f"http://127.0.0.1:{port}" for port in servers.ports]
    worker = subprocess.Popen([jt.PYTHON, "manage.py", "queue_worker"], cwd=jt.ROOT, env=jt.ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    visitors: list[Visitor] = []
    try:
        stop = asyncio.Event()
        site = asyncio.create_task(protected_site(args, bases[0], rooms["tickets"][1], stop))
        visitors = await arrivals(args, bases)
        await asyncio.sleep(args.live_seconds)
        stop.set()
        try:
            reported = await asyncio.wait_for(site, timeout=120)
        except TimeoutError:  # a saturated server: report what was measured, not a traceback
            print("protected site: its reports did not finish within 120 s")
            reported = -1
        await asyncio.sleep(2)  # the last frames
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:  # a worker slow to stop at load 15 lost the run's figures
            worker.kill()
            worker.wait()

    room = rooms["tickets"][0]
    mean, most, admitted, max_inside = await sync_to_async(admissions_per_cycle)(room.queue_id)
    from queueapp.models import Ticket

    admitted_tokens = set(await sync_to_async(lambda: list(Ticket.objects.filter(
        queue_id=room.queue_id, confirmed_at__isnull=False).values_list("token", flat=True)))())
    live = [v for v in visitors if v.ws is not None]
    admitted_live = [v for v in live if v.token in admitted_tokens]
    missed = sum(1 for v in admitted_live if not v.admitted_seen)
    frames = sum(v.frames for v in live)
    print(f"live: {args.live_seconds} s; admitted {admitted} (reported done {reported}); admissions per "
          f"second (worker cycle) mean {mean:.2f} max {most} against rate/60 = {args.rate / 60:.2f}; "
          f"most inside {max_inside} (max {args.max_inside})")
    print(f"live pages: {len(live)} sockets, {frames} frames; of the {len(admitted_live)} admitted while "
          f"their page was open, {len(admitted_live) - missed} showed it live ({missed} missed)")
    for v in visitors:
        await v.close()

    if args.capacity_arrivals:
        rate, p50 = await arrival_capacity(args, bases)
        print(f"baseline, same run, after the crowd: the servers place {rate:.0f} arrivals a second "
              f"({args.capacity_arrivals} browsers, {args.capacity_concurrency} at a time; p50 {p50:.0f} ms) "
              f"against the {args.visitors / args.arrival_seconds:.0f} a second offered")
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
    failed = sum(1 for v in visitors if v.error)
    ok = (not failed and max_inside <= args.max_inside and not missed and not problems
          and all(v.ws is not None or v.admitted_seen for v in visitors))
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
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # one socket per visitor
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
