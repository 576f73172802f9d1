"""The production arrangement on this machine, without docker: nginx in front,
one daphne for the screens' WebSockets (`live`) and one for HTTP (`web`).

What docker-compose.yml runs, taken from the same files so a test cannot pass
on something production does not run:
- daphne's command line is the Dockerfile's CMD (compose's `web` and `live`
  run it as it is), with only the port and interface changed;
- nginx's configuration is deploy/nginx.conf, with its placeholders filled
  in as compose's `proxy` service fills them with envsubst, the /ws/
  admission left out as compose leaves it out unless a test or bench variant
  names a rate;
- the app's environment behind the proxy (RATE_LIMIT_CLIENT_HEADER) is
  compose's `x-app` environment.
Used by tests/test_proxy_split.py and bench/restart.py (`staff via proxy`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

import yaml

from tests.browser_support import Daphne, free_port, run_daphne, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def dockerfile_command() -> list[str]:
    """The Dockerfile's CMD (exec form): the daphne command line production runs."""
    lines = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")]
    assert len(lines) == 1, "the Dockerfile should have one CMD"
    return json.loads(lines[0].removeprefix("CMD "))


def deployed_daphne(port: int, host: str = "127.0.0.1") -> list[str]:
    """The Dockerfile's command line on `host:port`, with this checkout's daphne."""
    command = dockerfile_command()
    assert command[0] == "daphne", command
    endpoint = [i for i, arg in enumerate(command) if arg.startswith("tcp:")]
    assert len(endpoint) == 1, f"one tcp: endpoint expected in {command}"
    where = command[endpoint[0]]
    where = re.sub(r"(?<=port=)\d+", str(port), where)
    where = re.sub(r"(?<=interface=)[^:]+", host, where)
    return [str(Path(sys.executable).with_name("daphne")),
            *command[1:endpoint[0]], where, *command[endpoint[0] + 1:]]


def app_environment() -> dict[str, str]:
    """What compose's `x-app` environment says about running behind the proxy."""
    env = compose()["x-app"]["environment"]
    return {"RATE_LIMIT_CLIENT_HEADER": env["RATE_LIMIT_CLIENT_HEADER"]}


# What compose's `proxy` command drops (sed's range, both marker lines
# included) when WS_ADMIT_RATE is empty: the /ws/ admission.
ADMISSION_LINES = re.compile(r"^[ \t]*# ws-admission begin\n.*?^[ \t]*# ws-admission end\n", re.M | re.S)
# compose's "${NAME:-default}": the default is what compose passes when NAME is not set.
COMPOSE_DEFAULT = re.compile(r"\$\{[A-Z_]+:-(.*)\}")


def nginx_conf(**values: str) -> str:
    """deploy/nginx.conf filled in as compose's `proxy` fills it: every
    placeholder (nothing else), the /ws/ admission lines dropped unless
    WS_ADMIT_RATE is given."""
    text = NGINX_CONF.read_text()
    wanted = set(PLACEHOLDER.findall(text))
    if wanted != set(values):
        raise ValueError(f"deploy/nginx.conf needs {sorted(wanted)}, given {sorted(values)}")
    if not values["WS_ADMIT_RATE"]:
        text = ADMISSION_LINES.sub("", text)
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def admission(**overrides: str) -> dict[str, str]:
    """/ws/ admission as compose's `proxy` sets it with nothing in the
    environment (WS_ADMIT_RATE empty: none), with `overrides`."""
    env = compose()["services"]["proxy"]["environment"]
    values = {name: COMPOSE_DEFAULT.sub(r"\1", str(env[name])) for name in ("WS_ADMIT_RATE", "WS_ADMIT_BURST")}
    unknown = set(overrides) - set(values)
    if unknown:
        raise ValueError(f"not an admission setting: {sorted(unknown)}")
    return {**values, **overrides}


@contextmanager
def run_proxy(web_port: int, live_port: int, port: int | None = None, **admit: str):
    """nginx with deploy/nginx.conf in front of web and live on loopback; yields it
    as a `Daphne` would be (`url`, `ws_url`, `port`, `proc`, `log()`). `admit`:
    WS_ADMIT_RATE / WS_ADMIT_BURST (by default none, as compose)."""
    if NGINX is None:
        raise RuntimeError("nginx is not installed (make browser installs Debian's nginx)")
    port = port or free_port()
    prefix = tempfile.mkdtemp(prefix="queue-nginx-")
    os.chmod(prefix, 0o755)  # run as root, nginx's workers (nobody) keep large answers in its temp directories
    conf = Path(prefix) / "nginx.conf"
    conf.write_text(nginx_conf(LISTEN=f"127.0.0.1:{port}", WEB_UPSTREAM=f"127.0.0.1:{web_port}",
                               LIVE_UPSTREAM=f"127.0.0.1:{live_port}", **admission(**admit)))
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([NGINX, "-p", prefix + "/", "-c", str(conf), "-e", "stderr", "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_for_port(port, proc, log)
        yield Daphne(proc, port, log)
    finally:
        if proc.poll() is None:
            proc.terminate()  # a fast stop: open WebSockets are not waited for
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(prefix, ignore_errors=True)


class Split:
    """nginx (`url`, `ws_url`, `proxy`) in front of `web` and `live` (each a `Daphne`)."""

    def __init__(self, stack: ExitStack, database_url: str, env: dict[str, str], admit: dict[str, str]):
        self._stack, self._database_url, self._env = stack, database_url, env
        self.web = stack.enter_context(run_daphne(database_url, argv=deployed_daphne, **env))
        self.live = self._start_live(free_port())
        self.proxy = stack.enter_context(run_proxy(self.web.port, self.live.port, **admit))
        self.url, self.ws_url = self.proxy.url, self.proxy.ws_url

    def _start_live(self, port: int) -> Daphne:
        return self._stack.enter_context(run_daphne(self._database_url, port=port, argv=deployed_daphne,
                                                    **self._env))

    def stop_live(self, sig: int = signal.SIGTERM) -> None:
        self.live.proc.send_signal(sig)
        self.live.proc.wait(30)

    def start_live(self) -> None:
        """The live process again on the same port (as compose restarts it)."""
        self.live = self._start_live(self.live.port)


@contextmanager
def run_split(database_url: str, admit: dict[str, str] | None = None, **extra_env: str):
    """The production arrangement on loopback: yields a `Split`, stops everything.
    `admit`: nginx's /ws/ admission other than compose's (see `admission`)."""
    with ExitStack() as stack:
        yield Split(stack, database_url, {**app_environment(), **extra_env}, admit or {})
