"""Benchmark: alerts and webhooks through the outbox, each figure beside a baseline.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/queueapp_alerts_bench .venv/bin/python bench/alerts_delivery.py
    (a quick check that it runs: add --events 60 --backlog 100 --clicks 60 --due 100)

Uses its own database (migrated; each run makes a new bench location). One
worker (`manage.py queue_worker`, default settings) runs in a subprocess; the
receiver is a threaded HTTP server on 127.0.0.1 in this process.

1. Click to webhook: a burst of --events staff clicks (call next / complete,
   alternating) while the worker runs: for each event, the time from the start
   of its click to its webhook's arrival (p50/p99). Baseline: the same bodies
   posted by a bare httpx loop, time from send to arrival.
2. Deliveries per second per worker: --backlog due webhook rows, then one
   worker started: rate from first to last arrival. Baseline: a bare httpx
   loop posting the same bodies (one client, sequential; and with as many
   threads as the worker's ALERTS_CONCURRENCY).
3. Staff click p99: --clicks clicks with the worker delivering to a receiver
   that answers at once, then with --due due messages and a receiver that
   hangs (answers after 60 s; the worker gives up after ALERTS_SEND_TIMEOUT).
   Target: hanging ≤ 1.2 × answering.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from queueapp.alerts.models import Channel, MessageKind, OutboxMessage, WebhookEndpoint  # noqa: E402
from queueapp.models import Counter, Location, Queue  # noqa: E402
from queueapp.services import do_call_next, do_complete, do_join  # noqa: E402
from tests.alerts_support import Receiver  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ms = sorted(v * 1000 for v in values)
    return ms[min(len(ms) - 1, round(q * (len(ms) - 1)))]


def fmt(values: list[float]) -> str:
    return f"p50 {pct(values, 0.5):7.1f} ms  p99 {pct(values, 0.99):7.1f} ms"


def start_worker() -> subprocess.Popen:
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "manage.py", "queue_worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL)


def stop_worker(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def setup(tag: str, waiting: int):
    location = Location.objects.create(name=f"Bench {tag}", slug=f"alerts-bench-{tag}")
    queue = Queue.objects.create(location=location, name="General", slug="general", prefix="A")
    counter = Counter.objects.create(location=location, name="Counter 1")
    counter.queues.set([queue])
    for _ in range(waiting):
        do_join(queue)
    return location, queue, counter


def clicks(counter: Counter, n: int, record=None) -> list[float]:
    """n staff clicks: call next, complete, call next, ... Returns each click's duration."""
    durations, current = [], None
    for _ in range(n):
        t0 = time.monotonic()
        if current is None:
            current = do_call_next(counter=counter)
            key = (current.display_number, "called")
        else:
            do_complete(current)
            key, current = (current.display_number, "completed"), None
        durations.append(time.monotonic() - t0)
        if record is not None:
            record[key] = t0
    return durations


def wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("timed out: is the worker running?")
        time.sleep(0.02)


def bare_loop(url: str, bodies: list[str], threads: int = 1) -> float:
    """A bare HTTP client posting every body; returns deliveries per second."""
    client = httpx.Client(timeout=10, limits=httpx.Limits(max_connections=max(threads, 1)))
    t0 = time.monotonic()
    if threads == 1:
        for body in bodies:
            client.post(url, content=body.encode(), headers={"content-type": "application/json"})
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda b: client.post(url, content=b.encode(),
                                                headers={"content-type": "application/json"}), bodies))
    return len(bodies) / (time.monotonic() - t0)


def click_to_webhook(tag: str, events: int) -> None:
    with Receiver() as receiver:
        location, queue, counter = setup(f"{tag}-latency", events // 2 + 1)
        WebhookEndpoint.objects.create(location=location, url=receiver.url, event_types=["called", "completed"])
        worker = start_worker()
        try:
            time.sleep(3)  # the worker's start-up is not part of a click
            started: dict = {}
            clicks(counter, events, started)
            wait_for(lambda: len(receiver.requests) >= events, 120)
        finally:
            stop_worker(worker)
        latencies = []
        for request in receiver.requests:
            data = json.loads(request["body"])["data"]
            latencies.append(request["at"] - started[(data["ticket"], data["event"])])
        bodies = [r["body"].decode() for r in receiver.requests]
        n_before = len(receiver.requests)
        bare = []
        client = httpx.Client(timeout=10)
        for body in bodies:
            t0 = time.monotonic()
            client.post(receiver.url, content=body.encode(), headers={"content-type": "application/json"})
            bare.append(receiver.requests[n_before + len(bare)]["at"] - t0)
    print(f"1. click → webhook received, burst of {events}: {fmt(latencies)}")
    print(f"   bare httpx loop, send → received:      {fmt(bare)}")


def throughput(tag: str, backlog: int) -> None:
    with Receiver() as receiver:
        location, queue, _ = setup(f"{tag}-rate", 0)
        endpoint = WebhookEndpoint.objects.create(location=location, url=receiver.url)
        body = json.dumps({"type": "queue.called", "timestamp": "2026-01-01T00:00:00+00:00",
                           "data": {"event": "called", "queue": "general", "version": 1}})
        OutboxMessage.objects.bulk_create([
            OutboxMessage(channel=Channel.WEBHOOK, kind=MessageKind.EVENT, queue=queue, endpoint=endpoint,
                          subject="called", body=body) for _ in range(backlog)], batch_size=1000)
        worker = start_worker()
        try:
            wait_for(lambda: len(receiver.requests) >= backlog, 300)
        finally:
            stop_worker(worker)
        arrivals = sorted(r["at"] for r in receiver.requests[:backlog])
        rate = (backlog - 1) / (arrivals[-1] - arrivals[0])
        bare1 = bare_loop(receiver.url, [body] * backlog)
        bareN = bare_loop(receiver.url, [body] * backlog, settings.ALERTS_CONCURRENCY)
    print(f"2. deliveries/s, one worker, {backlog} due: {rate:8.0f}/s (signed, recorded, attempts logged)")
    print(f"   bare httpx loop, sequential:          {bare1:8.0f}/s")
    print(f"   bare httpx, {settings.ALERTS_CONCURRENCY} threads:               {bareN:8.0f}/s")


def click_p99(tag: str, n: int, due: int) -> None:
    with Receiver() as quick:
        location, queue, counter = setup(f"{tag}-quick", n // 2 + 1)
        WebhookEndpoint.objects.create(location=location, url=quick.url)
        worker = start_worker()
        try:
            time.sleep(3)
            base = clicks(counter, n)
        finally:
            stop_worker(worker)
    with Receiver(hang=60) as hanging:
        location, queue, counter = setup(f"{tag}-hang", n // 2 + 1)
        endpoint = WebhookEndpoint.objects.create(location=location, url=hanging.url)
        OutboxMessage.objects.bulk_create([
            OutboxMessage(channel=Channel.WEBHOOK, kind=MessageKind.EVENT, queue=queue, endpoint=endpoint,
                          subject="joined", body="{}") for _ in range(due)], batch_size=1000)
        worker = start_worker()
        try:
            time.sleep(3)
            hung = clicks(counter, n)
        finally:
            stop_worker(worker)
    ratio = pct(hung, 0.99) / pct(base, 0.99)
    print(f"3. staff click, receiver answering:      {fmt(base)}")
    print(f"   {due} due, receiver hanging:          {fmt(hung)}   p99 ratio {ratio:.2f} (target ≤ 1.2)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--backlog", type=int, default=5000)
    parser.add_argument("--clicks", type=int, default=1000)
    parser.add_argument("--due", type=int, default=1000)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    tag = str(int(time.time()))
    # Endpoints of earlier runs point at receivers long gone: switch them off.
    WebhookEndpoint.objects.filter(location__slug__startswith="alerts-bench-").update(is_active=False)
    print(f"database: {connection.vendor}; worker: batch {settings.ALERTS_BATCH}, "
          f"concurrency {settings.ALERTS_CONCURRENCY}, send timeout {settings.ALERTS_SEND_TIMEOUT} s")
    click_to_webhook(tag, args.events)
    throughput(tag, args.backlog)
    click_p99(tag, args.clicks, args.due)


if __name__ == "__main__":
    main()
