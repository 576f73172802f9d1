"""Django's PostgreSQL backend (psycopg pool) with a per-request bound on the pool wait,
and each connection's session reset as it goes back to the pool.

`queueapp.overload.short_pool_wait` sets `POOL_WAIT` for a public view: its
connection then comes within that many seconds or `getconn` raises the pool's
timeout (an OperationalError for Django), which the overload middleware
answers with a 503. Everything else waits the pool's own `timeout`.
"""

from __future__ import annotations

from django.conf import settings
from django.db.backends.postgresql import base

from queueapp.overload import POOL_WAIT

from .session import before_return


class _BoundedWait:
    """The pool as Django sees it, except that `getconn` honours POOL_WAIT."""

    def __init__(self, pool):
        self._pool = pool

    def getconn(self, timeout: float | None = None):
        bound = POOL_WAIT.get()
        if timeout is None and bound is not None:
            timeout = min(bound, self._pool.timeout)
        return self._pool.getconn(timeout)

    def __getattr__(self, name):
        return getattr(self._pool, name)


class DatabaseWrapper(base.DatabaseWrapper):
    def _close(self):
        # The session reset on the returning thread, before the pool takes the
        # connection back (config/postgresql/session.py says why not the pool's).
        if self.connection is not None and settings.DB_POOL_RESET and self.pool is not None:
            before_return(self.connection)
        return super()._close()

    @property
    def pool(self):
        pool = super().pool
        return None if pool is None else _BoundedWait(pool)
