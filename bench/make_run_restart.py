"""`make run` on an unchanged checkout: seconds until it serves, beside bare daphne.

Clones the repository (its committed HEAD) into a temporary folder, runs
`make run` once there to set everything up (virtualenv, database, demo data,
static files: minutes), then measures, `--rounds` times each, the time from
starting the command to the first answer of `/healthz`:

- `make run` again (what a developer does after Ctrl-C): the target;
- bare `.venv/bin/daphne config.asgi:application` in the same checkout: the
  baseline (Python, Django and the app importing; nothing `make run` could skip).

Target (issue 11): `make run` under ~5 s, and close to the baseline.

    .venv/bin/python bench/make_run_restart.py              # --rounds 5 --port 8765
    .venv/bin/python bench/make_run_restart.py --checkout /tmp/clone   # reuse a set-up clone
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SETUP_TIMEOUT = 900.0  # seconds for the first run (pip install on a cold cache)
SERVE_TIMEOUT = 120.0


def serve_seconds(command: list[str], checkout: Path, port: int, timeout: float) -> float:
    """Start `command`, return seconds until /healthz answers, then stop its process group."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CHANNEL_PREFIX")}
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=checkout, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                return time.monotonic() - started
            except OSError:
                if process.poll() is not None:
                    raise SystemExit(f"{' '.join(command)} exited with {process.returncode}")
                if time.monotonic() - started > timeout:
                    raise SystemExit(f"{' '.join(command)} did not serve within {timeout:.0f} s")
                time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait()
        time.sleep(0.5)  # the port is free again


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--checkout", type=Path, help="a clone already set up by one `make run`")
    args = parser.parse_args()
    checkout = args.checkout
    if checkout is None:
        checkout = Path(tempfile.mkdtemp(prefix="make-run-bench-")) / "repo"
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(checkout)], check=True)
        first = serve_seconds(["make", "run", f"PORT={args.port}"], checkout, args.port, SETUP_TIMEOUT)
        print(f"first run (install, migrate, seed, collectstatic): {first:.1f} s")
    make = [serve_seconds(["make", "run", f"PORT={args.port}"], checkout, args.port, SERVE_TIMEOUT)
            for _ in range(args.rounds)]
    bare = [serve_seconds([".venv/bin/daphne", "-b", "127.0.0.1", "-p", str(args.port), "config.asgi:application"],
                          checkout, args.port, SERVE_TIMEOUT) for _ in range(args.rounds)]
    load = os.getloadavg()[0]
    print(f"checkout {checkout}, {args.rounds} rounds each, load {load:.1f}")
    print(f"{'':<28}{'median s':>10}{'max s':>8}")
    for name, times in (("make run (unchanged)", make), ("baseline: bare daphne", bare)):
        print(f"{name:<28}{statistics.median(times):>10.2f}{max(times):>8.2f}")
    print(f"make run / baseline: {statistics.median(make) / statistics.median(bare):.2f}x")
    sys.exit(0)


if __name__ == "__main__":
    main()
