"""The production arrangement, over real sockets: nginx (deploy/nginx.conf) in
front of a daphne for the screens' WebSockets (`live`) and one for HTTP (`web`),
each run with the Dockerfile's command line (tests/proxy_support.py).

Both CI passes run it. With PostgreSQL + Redis, web's push reaches live's
screens through Redis, as in production. With SQLite + the in-memory layer
the two processes share the database but not the layer, so a screen on live
learns of web's change from live's own tick (`hub.LOCAL_TICK_EVERY`, 4 s) or
from the snapshot it gets on connecting: the timeouts allow for it, and what
is tested (routing, reconnects, refusals, client addresses) is the same.
Skipped where nginx is not installed (`make browser` installs Debian's).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from queueapp.services import do_join
from tests.api_support import kiosk_key, staff_key  # noqa: F401
from tests.browser_support import CHROMIUM, database_url_for
from tests.live_helpers import ticket_state
from tests.proxy_support import (NGINX, NGINX_CONF, PLACEHOLDER, admission, compose, dockerfile_command,
                                 nginx_conf, run_split)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (make browser installs it)")
ROOT = Path(__file__).resolve().parent.parent
# In-memory layer: live hears of web's changes from its own tick (4 s), not a push.
LIVE_WITHIN = 20.0


@pytest.fixture(scope="module")
def static_root():
    """collectstatic once, as the Dockerfile does (production serves the manifest's names)."""
    root = tempfile.mkdtemp(prefix="queue-static-")
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
                   cwd=ROOT, env={**os.environ, "STATIC_ROOT": root}, check=True)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def split(static_root):
    with run_split(database_url_for(connection.settings_dict), STATIC_ROOT=static_root) as running:
        yield running
        for server in (running.web, running.live):
            assert "Traceback" not in server.log(), server.log()[-3000:]


def request(split, method: str, path: str, *, body: bytes | str | None = None, headers: dict | None = None,
            source: str = "127.0.0.1") -> tuple[int, dict, bytes]:
    """One HTTP request to the proxy from loopback address `source`: (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", split.proxy.port, timeout=30, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


def api(split, method: str, path: str, key: str | None = None, data=None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {key}"} if key else {})
    status, _, body = request(split, method, "/api" + path, body=json.dumps(data or {}), headers=headers)
    return status, json.loads(body)


def open_screen(split, token: str):
    return connect(f"{split.ws_url}/ws/ticket/{token}/", origin=split.url, open_timeout=10, ping_interval=None)


async def position_shown(ws, position: int | None, timeout: float = LIVE_WITHIN) -> dict:
    """Frames until the screen shows `position` (None: read until the socket closes)."""
    async with asyncio.timeout(timeout):
        while True:
            shown = ticket_state(await ws.recv())
            if position is not None and shown["position"] == position:
                return shown


def test_compose_runs_what_these_tests_run():
    """web and live run the Dockerfile's command (the one these tests start),
    the proxy runs deploy/nginx.conf with every placeholder given, and only the
    proxy is reachable from outside (else a client could send its own
    X-Forwarded-For straight to daphne)."""
    services = compose()["services"]
    assert "command" not in services["web"] and "command" not in services["live"]
    assert dockerfile_command()[0] == "daphne"
    proxy = services["proxy"]
    assert "./deploy/nginx.conf:/etc/nginx/queue.conf.template:ro" in proxy["volumes"]
    placeholders = set(PLACEHOLDER.findall(NGINX_CONF.read_text()))
    assert placeholders == set(proxy["environment"])
    assert all(f"${name}" in proxy["command"][-1] for name in placeholders)  # envsubst told each name
    assert [name for name, service in services.items() if service.get("ports")] == ["proxy"]
    assert compose()["x-app"]["environment"]["RATE_LIMIT_CLIENT_HEADER"] == "HTTP_X_FORWARDED_FOR"


@pytest.mark.skipif(not (shutil.which("sed") and shutil.which("envsubst")), reason="needs sed and envsubst")
@pytest.mark.parametrize("admit", [{}, {"WS_ADMIT_RATE": "6r/m", "WS_ADMIT_BURST": "2"}], ids=["default", "set"])
def test_compose_has_no_ws_admission_unless_a_rate_is_set_and_fills_nginx_conf_as_these_tests_do(admit, tmp_path):
    """Compose's `proxy` command itself (its shell line, run here with the
    template's and the output's paths moved) writes the configuration these
    tests run, byte for byte; with compose's defaults it has no /ws/ limit at
    all (not a limit set too high to bite), with a rate it has that rate."""
    proxy = compose()["services"]["proxy"]
    values = {"LISTEN": "80", "WEB_UPSTREAM": "web:8000", "LIVE_UPSTREAM": "live:8000", **admission(**admit)}
    line = proxy["command"][-1].replace("$$", "$")  # compose's escape for a literal $
    line = line.replace("/etc/nginx/queue.conf.template", str(NGINX_CONF))
    line = line.replace("/etc/nginx/nginx.conf", str(tmp_path / "nginx.conf"))
    line = line.replace(" && exec nginx -g 'daemon off;'", "")
    subprocess.run(["sh", "-c", line], env={"PATH": os.environ["PATH"], **values}, check=True)
    written = (tmp_path / "nginx.conf").read_text()
    assert written == nginx_conf(**values)
    assert ("limit_req" in written) == bool(admit)
    if admit:
        assert "rate=6r/m;" in written and "limit_req zone=ws_opens burst=2 nodelay;" in written


@needs_nginx
def test_a_patient_screen_through_the_proxy_updates_after_staff_call_next(split, queue, counter, staff_key):
    do_join(queue)
    ticket = do_join(queue)

    async def scenario():
        async with open_screen(split, ticket.token) as ws:
            assert ticket_state(await ws.recv())["position"] == 2
            status, body = await asyncio.to_thread(api, split, "POST", f"/counters/{counter.pk}/call-next", staff_key)
            assert status == 200, body
            await position_shown(ws, 1)

    async_to_sync(scenario)()
    assert "/ws/" not in split.web.log()  # no WebSocket went to web


@needs_nginx
def test_staff_keep_working_while_the_live_process_restarts_and_screens_come_back(
        split, queue, counter, staff_key):
    """live down: the API still answers (it is web's), and a phone's upgrade gets
    a retryable 503 with Retry-After, not a 403. live up again: the phone is back
    and shows what happened while it was away."""
    do_join(queue)
    ticket = do_join(queue)

    async def scenario():
        async with open_screen(split, ticket.token) as ws:
            await ws.recv()
            await asyncio.to_thread(split.stop_live, signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                await position_shown(ws, None, timeout=10)
            assert closed.value.rcvd is None or closed.value.rcvd.code in (4012, 1001, 1006)
        status, body = await asyncio.to_thread(api, split, "POST", f"/counters/{counter.pk}/call-next", staff_key)
        assert status == 200, body
        with pytest.raises(InvalidStatus) as refused:
            async with open_screen(split, ticket.token):
                pass
        assert refused.value.response.status_code == 503
        assert refused.value.response.headers["Retry-After"] == "2"
        await asyncio.to_thread(split.start_live)
        async with open_screen(split, ticket.token) as ws:
            assert ticket_state(await ws.recv())["position"] == 1  # the snapshot on connect

    async_to_sync(scenario)()


@needs_nginx
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser)")
@pytest.mark.browser
def test_the_ticket_page_reconnects_through_the_proxy_after_the_live_process_restarts(
        split, queue, counter, staff_key):
    from playwright.sync_api import expect, sync_playwright

    from tests.browser_support import launch

    do_join(queue)
    ticket = do_join(queue)
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page()
            page.goto(f"{split.url}/t/{ticket.token}/")
            status = page.locator("#ticket-status")
            expect(status).to_contain_text("2", timeout=20_000)
            page.wait_for_timeout(1000)  # the socket open
            split.stop_live(signal.SIGKILL)
            answer = api(split, "POST", f"/counters/{counter.pk}/call-next", staff_key)
            assert answer[0] == 200, answer
            split.start_live()
            expect(status).to_contain_text("You are next", timeout=30_000)
        finally:
            browser.close()


@needs_nginx
def test_api_through_the_proxy_joins_calls_and_refuses_without_a_login(split, queue, counter, kiosk_key,
                                                                       staff_key):
    status, body = api(split, "POST", f"/queues/{queue.pk}/tickets", kiosk_key, {})
    assert status == 201, body
    status, body = api(split, "POST", f"/counters/{counter.pk}/call-next", staff_key)
    assert status == 200 and body["ticket"]["number"] == "A-001", body
    status, body = api(split, "POST", f"/counters/{counter.pk}/call-next")
    assert (status, body["code"]) == (401, "unauthenticated"), body
    status, body = api(split, "POST", f"/counters/{counter.pk}/call-next", "not-a-token")
    assert (status, body["code"]) == (401, "unauthenticated"), body
    status, body = api(split, "POST", f"/counters/{counter.pk}/call-next", kiosk_key)
    assert status == 403, body


@needs_nginx
def test_hostile_input_through_the_proxy_gets_a_4xx_and_both_processes_live_on(split, queue, kiosk_key):
    token = do_join(queue).token
    # A NUL in the path: nginx refuses it itself (400); the app would answer 404.
    assert request(split, "GET", "/t/%00/")[0] in (400, 404)
    assert request(split, "GET", "/t/" + "A" * 10 + "%00" + "A" * 11 + "/")[0] in (400, 404)
    assert request(split, "GET", "/t/" + "A" * 21 + "%C3%A9/")[0] == 404  # the app's token check, behind it
    assert request(split, "GET", "/t/" + "A" * 100_000 + "/")[0] == 414  # nginx: URI too long
    assert request(split, "GET", "/healthz", headers={"X-Long": "x" * 100_000})[0] == 400
    status, body = api(split, "POST", f"/queues/{queue.pk}/tickets", kiosk_key, {"language": "de\x00"})
    assert status == 400 and body["field"] == "language", body
    status, _, _ = request(split, "POST", f"/api/queues/{queue.pk}/tickets", body=b"x" * (4 << 20),
                           headers={"Content-Type": "application/json", "Authorization": f"Bearer {kiosk_key}"})
    assert status == 413

    async def frames():
        async with open_screen(split, token) as ws:
            await ws.recv()
            await ws.send("x" * 10_000)  # the consumer's limit, through the proxy
            with pytest.raises(ConnectionClosed) as closed:
                await position_shown(ws, None, timeout=10)
            assert closed.value.rcvd.code == 4009
        for path, refusals in (("%00", (400,)), ("short", (403, 404))):  # nginx's 400; the app's refusal
            with pytest.raises(InvalidStatus) as refused:
                async with connect(f"{split.ws_url}/ws/ticket/{path}/", origin=split.url, open_timeout=10):
                    pass
            assert refused.value.response.status_code in refusals, path

    async_to_sync(frames)()
    assert request(split, "GET", "/healthz")[0] == 200
    assert split.web.proc.poll() is None and split.live.proc.poll() is None


def join_page(split, slug: str, queue_id: int, *, source: str, spoof: str) -> int:
    """An online join from `source` through the proxy, claiming to be `spoof`: the status."""
    status, headers, page = request(split, "GET", f"/join/{slug}/", source=source)
    assert status == 200
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
    cookie = re.search(r"csrftoken=([^;]+)", headers["set-cookie"]).group(1)
    status, _, _ = request(split, "POST", f"/join/{slug}/", body=f"queue={queue_id}&csrfmiddlewaretoken={token}",
                           headers={"Content-Type": "application/x-www-form-urlencoded",
                                    "Cookie": f"csrftoken={cookie}", "X-Forwarded-For": spoof},
                           source=source)
    return status


@needs_nginx
def test_behind_the_proxy_each_client_is_counted_by_its_own_address_which_it_cannot_spoof(
        static_root, location, queue):
    """Every request reaches web from the proxy's address; the app counts the
    address the proxy saw (the last X-Forwarded-For hop), so one client cannot
    pose as others by sending its own header, and two clients are apart."""
    here, there = (f"127.{random.randrange(1, 250)}.{random.randrange(1, 250)}.{n}" for n in (1, 2))
    with run_split(database_url_for(connection.settings_dict), STATIC_ROOT=static_root,
                   JOIN_ADDRESS_RATE_LIMIT="2/600") as split:
        assert join_page(split, location.slug, queue.pk, source=here, spoof="203.0.113.1") == 302
        assert join_page(split, location.slug, queue.pk, source=here, spoof="203.0.113.2") == 302
        assert join_page(split, location.slug, queue.pk, source=here, spoof="203.0.113.3") == 429
        assert join_page(split, location.slug, queue.pk, source=there, spoof=here) == 302


@needs_nginx
def test_in_a_storm_the_proxy_turns_away_opens_beyond_its_admission_with_a_retryable_503_and_they_get_in_later(
        static_root, queue, counter, staff_key):
    """deploy/nginx.conf's /ws/ admission (compose: WS_ADMIT_RATE, WS_ADMIT_BURST),
    here one open per 10 s with a burst of 2 so a handful of screens is a storm:
    all at once, burst + 1 get in and the rest get a 503 with Retry-After (what
    a phone's page reconnects after; never a 403), staff's HTTP is not held
    back, and a refused screen is let in on a later try and shows its place."""
    tickets = [do_join(queue) for _ in range(5)]
    with run_split(database_url_for(connection.settings_dict), admit={"WS_ADMIT_RATE": "6r/m", "WS_ADMIT_BURST": "2"},
                   STATIC_ROOT=static_root) as split:

        async def attempt(token: str):
            """What the screen shows on opening (a dict), or the refusal (an HTTP response)."""
            try:
                async with open_screen(split, token) as ws:
                    return ticket_state(await ws.recv())
            except InvalidStatus as exc:
                return exc.response

        async def scenario():
            outcomes = await asyncio.gather(*(attempt(t.token) for t in tickets))
            admitted = [o for o in outcomes if isinstance(o, dict)]
            refused = [(t, o) for t, o in zip(tickets, outcomes) if not isinstance(o, dict)]
            assert len(admitted) == 3, outcomes
            assert [(r.status_code, r.headers["Retry-After"]) for _, r in refused] == [(503, "2")] * 2
            status, body = await asyncio.to_thread(api, split, "POST", f"/counters/{counter.pk}/call-next",
                                                   staff_key)
            assert status == 200, body  # tickets[0] is called
            late = next(t for t, _ in refused if t != tickets[0])
            async with asyncio.timeout(60):
                while not isinstance(shown := await attempt(late.token), dict):
                    assert shown.status_code == 503
                    await asyncio.sleep(1)
            assert shown["position"] == tickets[1:].index(late) + 1

        async_to_sync(scenario)()
        assert "/ws/" not in split.web.log()
