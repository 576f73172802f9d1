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
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse, urlunparse

CHROMIUM = "/usr/bin/chromium"
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
    static_root = tempfile.mkdtemp(prefix="queue-static-")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "STATIC_ROOT": static_root,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "JOIN_RATE_LIMIT": "10000/60",
        "JOIN_ADDRESS_RATE_LIMIT": "10000/60",
        "KIOSK_RATE_LIMIT": "10000/60",
        "LOG_LEVEL": "WARNING",
        **extra_env,
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    python = str(Path(sys.executable))
    subprocess.run([python, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
                   cwd=ROOT, env=env, check=True)
    port = free_port()
    daphne = str(Path(sys.executable).with_name("daphne"))
    log = tempfile.TemporaryFile()  # a pipe nobody reads would block the server once full
    proc = subprocess.Popen([daphne, "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_for_port(port, proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(static_root, ignore_errors=True)


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
