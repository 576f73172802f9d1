"""A real server and Debian's Chromium for the browser tests (and the screenshot script).

The app is served by daphne in a subprocess on a free loopback port, on the
test database (so tests create their data with the ORM, committed through
`transactional_db`) and, when REDIS_URL is set, on the same Redis channel layer.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest

CHROMIUM = "/usr/bin/chromium"
# Every Chromium test file's `pytestmark`: marked `browser` (CI runs these
# files first) and skipped, saying why, where Debian's Chromium is missing.
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)"),
]
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url_for(settings_dict: dict) -> str:
    """The URL of the database the tests are using (the test database, once created)."""
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    parts = urlparse(os.environ["DATABASE_URL"])
    return urlunparse(parts._replace(path="/" + settings_dict["NAME"]))


def wait_for_port(port: int, proc: subprocess.Popen, log, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"daphne exited with {proc.returncode}: {log.read().decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"daphne did not listen on {port} within {timeout} s")


@contextmanager
def serve(database_url: str, **extra_env: str):
    """Collect static files, start daphne, yield its base URL, stop it."""
    with serve_daphne(database_url, **extra_env) as server:
        yield server.url


@contextmanager
def serve_daphne(database_url: str, **extra_env: str):
    """`serve`, yielding the `Daphne` (its log too)."""
    static_root = tempfile.mkdtemp(prefix="queue-static-")
    env = {"STATIC_ROOT": static_root, **extra_env}
    python = str(Path(sys.executable))
    subprocess.run([python, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
                   cwd=ROOT, env={**os.environ, "DATABASE_URL": database_url, **env}, check=True)
    try:
        with run_daphne(database_url, **env) as server:
            yield server
    finally:
        shutil.rmtree(static_root, ignore_errors=True)


class Daphne:
    """A daphne subprocess (or nginx: tests/proxy_support.py): `url`, `proc`, and `log()` (its stderr so far)."""

    def __init__(self, proc: subprocess.Popen, port: int, log):
        self.proc, self.port, self._log = proc, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")


@contextmanager
def run_daphne(database_url: str, *, app: str = "config.asgi:application", port: int | None = None,
               argv: Callable[[int], list[str]] | None = None, **extra_env: str):
    """daphne serving `app` (config.asgi) on `port` (default: a free loopback port);
    yields a `Daphne`, stops it. `argv(port)`: another command line (the deployed
    one: tests/proxy_support.py)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "JOIN_RATE_LIMIT": "10000/60",
        "JOIN_ADDRESS_RATE_LIMIT": "10000/60",
        "KIOSK_RATE_LIMIT": "10000/60",
        "LOG_LEVEL": "WARNING",
        **extra_env,
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    port = port or free_port()
    daphne = str(Path(sys.executable).with_name("daphne"))
    command = argv(port) if argv else [daphne, "-b", "127.0.0.1", "-p", str(port), app]
    log = tempfile.TemporaryFile()  # a pipe nobody reads would block the server once full
    proc = subprocess.Popen(command,
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_for_port(port, proc, log)
        yield Daphne(proc, port, log)
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
