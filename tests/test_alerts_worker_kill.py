"""A worker SIGKILLed mid-batch, and a receiver down for a while: every due
message arrives, each under one webhook-id, once the receiver is back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict

import pytest
from django.db import connection

from queueapp.alerts.models import OutboxMessage, WebhookEndpoint
from queueapp.services import do_call_next, do_complete, do_join
from tests.alerts_support import Receiver
from tests.browser_support import ROOT, database_url_for, free_port

pytestmark = pytest.mark.slow  # a long file: scheduled first (tests/conftest.py)

WORKER_ENV = {
    "ALERTS_RETRY_BASE_SECONDS": "0.2", "ALERTS_RETRY_MAX_SECONDS": "1", "ALERTS_CLAIM_SECONDS": "3",
    "ALERTS_SEND_TIMEOUT": "2", "ALERTS_BATCH": "10", "ALERTS_CONCURRENCY": "4", "LOG_LEVEL": "WARNING",
}


def start_worker():
    env = {**os.environ, "DATABASE_URL": database_url_for(connection.settings_dict), **WORKER_ENV}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return subprocess.Popen([sys.executable, "manage.py", "queue_worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_killed_worker_and_a_receiver_down_lose_nothing_and_keep_one_id_per_message(location, queue, counter):
    port = free_port()
    WebhookEndpoint.objects.create(location=location, url=f"http://127.0.0.1:{port}/hook")
    for _ in range(30):
        do_join(queue)
    worker = start_worker()
    receiver = None
    try:
        # The receiver is down: the worker's attempts fail and are retried with back-off.
        wait(lambda: OutboxMessage.objects.filter(state="retrying").count() >= 10, 30, "failed attempts")
        for _ in range(10):  # staff keep working meanwhile
            do_complete(do_call_next(counter=counter))
        receiver = Receiver(hang=0.4, port=port).__enter__()
        # Kill the worker while a batch is in flight: rows claimed, requests received, not yet recorded.
        wait(lambda: len(receiver.requests) >= 3, 30, "the first deliveries")
        assert OutboxMessage.objects.exclude(lease="").exists()
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        for _ in range(5):
            do_complete(do_call_next(counter=counter))
        worker = start_worker()
        wait(lambda: not OutboxMessage.objects.exclude(state="delivered").exists(), 90, "every delivery")
    finally:
        worker.kill()
        worker.wait()
        if receiver is not None:
            receiver.__exit__(None, None, None)

    rows = {m.message_id: json.loads(m.body) for m in OutboxMessage.objects.all()}
    assert len(rows) == 30 + 2 * 15  # joined ×30, then called + completed ×15
    received = defaultdict(set)  # event (queue, version) -> webhook-ids it arrived under
    for request in receiver.requests:
        body = json.loads(request["body"])
        received[(body["data"]["queue_id"], body["data"]["version"])].add(request["headers"]["webhook-id"])
    assert {r["headers"]["webhook-id"] for r in receiver.requests} == set(rows)  # every message arrived
    assert all(len(ids) == 1 for ids in received.values())  # never twice under different ids
    duplicates = len(receiver.requests) - len(rows)
    assert duplicates <= int(WORKER_ENV["ALERTS_BATCH"])  # at most the batch the kill interrupted
