"""One log line when a dependency (Redis, the database) goes away, one when it is back.

While Redis is down, channels_redis's pub/sub receive task logs a traceback
every second, and our own retries would each log too: an outage of ten
minutes buried the log under 600 tracebacks per process. An `Outage` logs
the first failure as one line (no traceback: the cause is known), counts the
rest quietly, and logs once more when the dependency answers again, with how
long it was away and how many attempts failed meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("queueapp.live.outage")


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Outage:
    def __init__(self, name: str, logger: logging.Logger = log):
        self.name = name
        self.log = logger
        self.down_since: float | None = None
        self.failures = 0
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, exc: BaseException | str) -> bool:
        """Count a failure; log it only if it starts an outage (then True)."""
        with self._lock:
            self.failures += 1
            if self.down_since is not None:
                return False
            self.down_since = time.monotonic()
        text = exc if isinstance(exc, str) else describe(exc)
        self.log.warning("%s unreachable (%s); retrying, next log line when it is back", self.name, text)
        return True

    def ok(self) -> bool:
        """The dependency answered: log the end of an outage (then True)."""
        with self._lock:
            if self.down_since is None:
                return False
            seconds, failures = time.monotonic() - self.down_since, self.failures
            self.down_since, self.failures = None, 0
        self.log.warning("%s back after %.1f s; failed attempts meanwhile: %d", self.name, seconds, failures)
        return True


class QuietTracebacks(logging.Filter):
    """A logging filter for a library that logs a traceback per retry: its
    records with an exception become failures of `outage` (one line at the
    start), and `on_failure` is told (the hub then re-subscribes and resyncs)."""

    def __init__(self, outage: Outage, on_failure=None):
        super().__init__()
        self.outage = outage
        self.on_failure = on_failure

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or record.exc_info[1] is None:
            return True
        self.outage.failed(record.exc_info[1])
        if self.on_failure is not None:
            self.on_failure()
        return False
