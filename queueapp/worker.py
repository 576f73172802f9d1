"""The background worker: periodic jobs, run by `manage.py queue_worker`.

Jobs are plain functions registered with `@periodic(seconds)` in an app's
`jobs` module, which the app registry imports at start-up (`queueapp.apps`):
the runner only knows the registry, never the jobs. Each must be
safe to run in several workers at once (they claim work with conditional
updates or row locks), so running two workers is harmless.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class Job:
    func: Callable[[], object]
    every: float
    next_run: float = field(default=0.0)


JOBS: list[Job] = []


def periodic(seconds: float):
    def register(func):
        JOBS.append(Job(func, seconds))
        return func

    return register


def run_due(now: float) -> None:
    from django.db import close_old_connections

    for job in JOBS:
        if now >= job.next_run:
            # At a fixed rate, not `every` after a late start: a job run every
            # second that starts a little late each time would otherwise run
            # less than once a second (the waiting rooms' pace is counted per
            # cycle). A job more than a period behind starts afresh.
            job.next_run = job.next_run + job.every if job.next_run + job.every > now else now + job.every
            close_old_connections()
            try:
                job.func()
            except Exception:  # one failing job must not stop the others
                log.exception("worker job %s failed", job.func.__name__)


def run_forever(stop: Callable[[], bool] = lambda: False, tick: float = 0.5) -> None:
    log.info("worker started with %d job(s): %s", len(JOBS), ", ".join(j.func.__name__ for j in JOBS))
    while not stop():
        run_due(time.monotonic())
        # Sleep until the next job is due (at most `tick`), not a fixed tick
        # that would make a one-second job run every 1.0-1.5 s.
        due = min((job.next_run for job in JOBS), default=time.monotonic() + tick)
        time.sleep(min(tick, max(0.0, due - time.monotonic())))
