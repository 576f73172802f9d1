"""The waiting room end to end: 50 visitors over HTTP against daphne and the
worker, admitted at the set rate with at most M inside, each landing on a local
"protected site" that checks the token with the example of docs/waiting-room.md
(run as written) and reports the visitor done over the API with the room key.
Forged, expired, other-room and replayed tokens are refused by that example."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import connection
from django.utils import timezone

from queueapp import admission
from queueapp.integrity import validate_queue_integrity
from queueapp.models import QueueEvent, Ticket
from queueapp.services.rooms import do_create_waiting_room, do_issue_room_key, rate_window
from tests.browser_support import ROOT, database_url_for, serve

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180), pytest.mark.slow]

VISITORS = 50
RATE = 600  # per minute: one admission every 0.1 s
MAX_INSIDE = 3
STAY = 0.3  # seconds a visitor spends on the protected site before it reports "done"


def documented_verifier(queue_url: str, room: str) -> dict:
    """The verification example of docs/waiting-room.md, executed as written
    (only its two settings point at this test's server and room)."""
    doc = (ROOT / "docs" / "waiting-room.md").read_text()
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    code = code.replace('"https://queue.example.com"', repr(queue_url)).replace('"concert"', repr(room))
    assert len(code.strip().splitlines()) <= 20, "the example is meant to stay short"
    namespace: dict = {}
    exec(compile(code, "docs/waiting-room.md", "exec"), namespace)
    return namespace


class ProtectedSite:
    """A local site behind the room: lets a visitor in if the example accepts the
    token, then reports them done after STAY seconds over the API."""

    def __init__(self, verify, api_base: str, room: str, key: str):
        self.verify, self.api_base, self.room, self.key = verify, api_base, room, key
        self.lock = threading.Lock()
        self.inside = self.most_inside = 0
        self.accepted: list[str] = []
        self.reports: list[int] = []
        self.refusals: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                token = parse_qs(urlsplit(self.path).query).get("queue_token", [""])[0]
                visitor = site.verify(token)
                if not visitor:
                    site.refusals.append(site.why(token))
                body = f"welcome {visitor}".encode() if visitor else b"refused"
                self.send_response(200 if visitor else 403)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                if visitor:
                    site.arrived(visitor)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            # 50 visitors at once on a busy machine: the default backlog of 5 resets
            # connections, and the client's retry of a GET would replay the token.
            request_queue_size = 256
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def why(self, token: str) -> str:
        """Why a token was refused (for the failure message only)."""
        try:
            keys = jwt.PyJWKClient(f"{self.api_base}/.well-known/jwks.json")
            jwt.decode(token, keys.get_signing_key_from_jwt(token).key, algorithms=["EdDSA"],
                       audience=self.room, issuer="queueapp")
        except Exception as exc:
            return f"{type(exc).__name__}: {exc} at {time.time():.1f}"
        return "accepted on a second look (a replay?)"

    def arrived(self, visitor: str) -> None:
        with self.lock:
            self.accepted.append(visitor)
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        threading.Timer(STAY, self.report, args=(visitor,)).start()

    def report(self, visitor: str) -> None:
        with self.lock:
            self.inside -= 1  # before the report: the room may admit the next at once
        request = urllib.request.Request(
            f"{self.api_base}/api/rooms/{self.room}/visitors/{visitor}/release",
            data=json.dumps({"outcome": "done"}).encode(), method="POST",
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            self.reports.append(answer.status)

    def close(self):
        self.server.shutdown()


async def visit(base: str, room: str, n: int) -> tuple[int, str]:
    """One browser: arrive, reload the page (as without JavaScript) until sent on."""
    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies of 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        url = f"{base}/wait/{room}/?return=/buy/{n}"
        while True:
            pause = 0.25
            async with session.get(url, allow_redirects=False) as answer:
                if answer.status == 302:
                    target = answer.headers["Location"]
                    break
                if answer.status == 503:  # the database was saturated: the busy page retries
                    pause = int(answer.headers["Retry-After"])  # by itself after Retry-After
                else:
                    assert answer.status == 200, await answer.text()
            if answer.status == 200:
                url = f"{base}/wait/{room}/"
            await asyncio.sleep(pause)
    # The protected site: once, with urllib (aiohttp retries a GET whose connection
    # dropped, and that retry is a replay the site rightly refuses).
    def land() -> int:
        try:
            with urllib.request.urlopen(target, timeout=30) as landed:
                return landed.status
        except urllib.error.HTTPError as refused:
            return refused.code

    return await asyncio.to_thread(land), target


@pytest.fixture
def worker_env():
    procs = []

    def start(env):
        proc = subprocess.Popen([sys.executable, "manage.py", "queue_worker"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(30)  # it finishes the job it is in (slow on a loaded machine)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_fifty_visitors_admitted_at_the_rate_and_verified_by_the_documented_example(location, worker_env):
    room = do_create_waiting_room(location=location, name="Concert tickets", slug="concert", prefix="W",
                                  target_url="http://127.0.0.1:1/", admit_per_minute=RATE,
                                  max_inside=MAX_INSIDE, admission_seconds=300)
    other = do_create_waiting_room(location=location, name="Museum", slug="museum", prefix="M",
                                   target_url="http://127.0.0.1:1/", admit_per_minute=RATE,
                                   max_inside=MAX_INSIDE, admission_seconds=300)
    key = do_issue_room_key(room)
    with serve(database_url_for(connection.settings_dict), WAIT_RATE_LIMIT="10000/60") as base:
        worker_env({**os.environ, "DATABASE_URL": database_url_for(connection.settings_dict)})
        verifier = documented_verifier(base, "concert")
        site = ProtectedSite(verifier["admitted_visitor"], base, "concert", key)
        type(room).objects.filter(pk=room.pk).update(target_url=site.url)
        type(other).objects.filter(pk=other.pk).update(target_url=site.url)
        connection.close()  # the server and worker write now; the test only reads afterwards
        try:
            started = time.monotonic()

            async def crowd():
                return await asyncio.gather(*(visit(base, "concert", n) for n in range(VISITORS)))

            landed = asyncio.run(crowd())
            took = time.monotonic() - started
            time.sleep(STAY + 0.5)  # the last reports
            check_crowd(room, site, landed, took)
            check_refusals(base, room, [t for _, t in landed])
        finally:
            site.close()


def check_crowd(room, site, landed, took):
    # Every visitor reached the site, which accepted their token; none twice.
    assert [status for status, _ in landed] == [200] * VISITORS, site.refusals
    assert len(set(site.accepted)) == VISITORS
    assert site.reports == [200] * VISITORS
    assert site.most_inside <= MAX_INSIDE

    # The room's own record: never more than M inside, admissions spaced at the rate.
    events = list(QueueEvent.objects.filter(queue_id=room.queue_id).order_by("version"))
    inside = [e.data["seats_taken"] for e in events if "seats_taken" in e.data]
    assert max(inside) <= MAX_INSIDE
    assert sum(e.kind == QueueEvent.Kind.CONFIRMED for e in events) == VISITORS
    # No window of the rate holds more than its quota: any quota + 1 admissions
    # in a row span at least the window (the instants the room's rule used).
    quota, window = rate_window(room)
    admitted = sorted(Ticket.objects.filter(queue_id=room.queue_id).values_list("confirmed_at", flat=True))
    for first, last in zip(admitted, admitted[quota:]):
        assert last - first >= window, (first, last)
    assert took >= ((VISITORS - 1) // quota) * window.total_seconds()
    assert validate_queue_integrity(room.queue_id) == []
    print(f"\n{VISITORS} visitors through the room in {took:.1f} s "
          f"(rate {RATE}/min, at most {MAX_INSIDE} inside; site saw at most {site.most_inside})")


def check_refusals(base, room, targets):
    tokens = [parse_qs(urlsplit(target).query)["queue_token"][0] for target in targets]
    # What the documented example refuses.
    fresh = documented_verifier(base, "concert")["admitted_visitor"]
    good = tokens[-1]
    assert fresh(good) is not None
    assert fresh(good) is None  # replayed
    head, body, signature = good.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert documented_verifier(base, "concert")["admitted_visitor"](f"{head}.{body}.{flipped}") is None
    forged = documented_verifier(base, "concert")["admitted_visitor"]
    stranger_key = Ed25519PrivateKey.generate()
    claims = jwt.decode(good, options={"verify_signature": False})
    kid = jwt.get_unverified_header(good)["kid"]
    assert forged(jwt.encode(claims, stranger_key, algorithm="EdDSA", headers={"kid": kid})) is None
    # Another room's visitor, admitted for real, cannot use that token here.
    _status, target = asyncio.run(visit(base, "museum", 0))
    museum_token = parse_qs(urlsplit(target).query)["queue_token"][0]
    assert documented_verifier(base, "museum")["admitted_visitor"](museum_token) is not None
    assert documented_verifier(base, "concert")["admitted_visitor"](museum_token) is None
    # An admission whose lifetime is over.
    old = Ticket.objects.filter(queue_id=room.queue_id).first()
    old.confirmed_at = timezone.now() - timedelta(seconds=room.admission_seconds + 5)
    room.refresh_from_db()
    expired = admission.issue(room, old)
    assert documented_verifier(base, "concert")["admitted_visitor"](expired) is None
