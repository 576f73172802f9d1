"""What a pooled PostgreSQL connection must not carry from one request to the next.

psycopg's pool rolls back a connection returned inside a transaction, but a
session setting (`SET statement_timeout`, `SET application_name`, ...) stays
on the connection and reaches whichever request borrows it next (shown by
tests/test_request_threads.py). `before_return` runs as Django hands a
connection back to the pool (config/postgresql/base.py), on the returning
thread: `reset_session`'s `RESET ALL` puts every setting back to the server's
default, then the time zone Django configured when the pool opened the
connection is set again (Django sets it only then), in the same round trip.

Not the pool's own `reset` callback: with one, psycopg's pool returns every
connection through a task on its worker thread (`ReturnConnection`), a thread
hand-off per request that uses the database (pool workers ~0.5 ms of CPU per
join under daphne, bench/join_throughput.py, issue 9), and the connection is
back only once that thread has run.
No Django import at module level: config/settings.py imports this module.
"""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

log = logging.getLogger(__name__)


def reset_session(conn) -> None:
    from django.conf import settings
    from django.db import DEFAULT_DB_ALIAS

    zone = (settings.DATABASES[DEFAULT_DB_ALIAS].get("TIME_ZONE") or "UTC") if settings.USE_TZ \
        else settings.TIME_ZONE
    # No parameters: psycopg sends both statements as one query, one round trip.
    conn.execute(sql.SQL("RESET ALL; SET TIME ZONE {}").format(sql.Literal(zone)))
    if conn.info.transaction_status != TransactionStatus.IDLE:  # a connection not in autocommit
        conn.commit()


def before_return(conn) -> None:
    """Bring a connection that is going back to the pool to a clean idle
    session, as the pool's own reset would: a transaction left open is rolled
    back, then `reset_session`. A connection that cannot be cleaned is closed
    (the pool then replaces it). Busy or closed connections are left to the
    pool, which closes or replaces them."""
    try:
        if conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
            log.warning("rolling back returned connection: %s", conn)
            conn.rollback()
        if conn.info.transaction_status == TransactionStatus.IDLE:
            reset_session(conn)
    except psycopg.Error as exc:
        log.warning("error resetting connection: %s", exc)
        conn.close()
