"""A real browser on the minimal ticket page: htmx 4's hx-ws swaps our frames.

Runs daphne on the test database as a subprocess and Debian's Chromium through
Playwright; skipped when Chromium is not installed. With the in-memory layer the
test process cannot reach the server's screens, so there the server's own tick
(a few seconds) brings the change: the timeouts allow for it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from queueapp.services import do_call_next, do_complete, do_join

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_daphne(db):
    """daphne serving the real ASGI app on the test database."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        url = f"sqlite:///{settings['NAME']}"
    else:
        url = (f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/"
               f"{settings['NAME']}")
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "true", "LOG_LEVEL": "WARNING"}
    log = open(ROOT / f".live_browser_daphne_{port}.log", "w+")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port),
                             "config.asgi:application"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        log.seek(0)
        sys.stderr.write(log.read()[-3000:])  # shown by pytest when the test fails
        log.close()
        Path(log.name).unlink()


def staff_acts(action):
    """Run a service outside Playwright's event loop (Django refuses sync DB calls there)."""
    from concurrent.futures import ThreadPoolExecutor

    def run():
        try:
            return action()
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result(timeout=30)


@pytest.fixture
def worker_ticks(db):
    """What `manage.py queue_worker` does beside the server: the periodic tick
    that repairs a screen whose push was lost (e.g. sent while Redis was still
    taking the server's subscription)."""
    import threading

    from queueapp import jobs

    stop = threading.Event()

    def run():
        try:
            while not stop.wait(2.0):
                jobs.publish_queue_ticks()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(10)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser)")
def test_ticket_page_updates_live_in_a_browser(live_daphne, worker_ticks, queue, counter):
    from playwright.sync_api import expect, sync_playwright

    do_join(queue)
    ticket = do_join(queue)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: sys.stderr.write(f"browser console: {m.text}\n"))
            page.on("requestfailed", lambda r: sys.stderr.write(f"browser request failed: {r.url}\n"))
            page.goto(f"{live_daphne}/live/ticket/{ticket.token}/")
            status = page.locator("#ticket-status")
            expect(status).to_contain_text("Position 2", timeout=20_000)
            # hx-ws closes its socket while the page is hidden (pauseOnBackground).
            page.bring_to_front()
            # Whether the socket opens before or after the call, the screen must
            # converge: the push, the snapshot on connect or the tick brings it.
            staff_acts(lambda: do_complete(do_call_next(counter=counter)))
            expect(status).to_contain_text("You are next", timeout=30_000)
            staff_acts(lambda: do_call_next(counter=counter))
            expect(status).to_have_attribute("data-status", "called", timeout=20_000)
            expect(status).to_have_attribute("data-counter", "Counter 1")
            expect(status).to_contain_text("Please go to Counter 1")
        finally:
            browser.close()


def _serve(url: str, port: int, log) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "true", "LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port),
                             "config.asgi:application"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("daphne did not listen")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser)")
def test_ticket_page_comes_back_after_a_server_restart(queue, counter):
    """The server stops gracefully (its screens get 4012), staff call while it is
    down, it starts again on the same port: the open page reconnects by itself,
    on the schedule our pages give htmx, and shows the new place."""
    from playwright.sync_api import expect, sync_playwright

    from queueapp.templatetags.live_tags import reconnect_config

    settings = connection.settings_dict
    url = (f"sqlite:///{settings['NAME']}" if connection.vendor == "sqlite" else
           f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/"
           f"{settings['NAME']}")
    for _ in range(3):
        do_join(queue)
    ticket = do_join(queue)
    port = _free_port()
    log = open(ROOT / f".live_browser_daphne_{port}.log", "w+")
    proc = _serve(url, port, log)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page()
                page.add_init_script("window.closeCodes = []; window.socketsOpened = 0;"
                                     "document.addEventListener('htmx:after:ws:connection', () => socketsOpened++);"
                                     "document.addEventListener('htmx:ws:close', e => closeCodes.push(e.detail.code));")
                page.goto(f"http://127.0.0.1:{port}/live/ticket/{ticket.token}/")
                page.bring_to_front()
                status = page.locator("#ticket-status")
                expect(status).to_contain_text("Position 4", timeout=20_000)
                page.wait_for_function("socketsOpened === 1", timeout=20_000)  # the first paint is HTTP
                # htmx's hx-ws took our schedule from the page's meta tag.
                assert page.evaluate("({...htmx.config.ws})") == {**page.evaluate("({...htmx.config.ws})"),
                                                                   **reconnect_config()}
                proc.terminate()
                proc.wait(30)
                staff_acts(lambda: do_complete(do_call_next(counter=counter)))
                staff_acts(lambda: do_call_next(counter=counter))
                proc = _serve(url, port, log)
                expect(status).to_contain_text("Position 2", timeout=30_000)
                assert page.evaluate("closeCodes")[0] == 4012  # the graceful close: "come back"
                assert page.evaluate("socketsOpened") >= 2  # it came back by itself
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
        log.seek(0)
        sys.stderr.write(log.read()[-3000:])
        log.close()
        Path(log.name).unlink()
