"""What a pooled PostgreSQL connection must not carry from one request to the next.

psycopg's pool rolls back a connection returned inside a transaction, but a
session setting (`SET statement_timeout`, `SET application_name`, ...) stays
on the connection and reaches whichever request borrows it next (shown by
tests/test_request_threads.py). `reset_session` is the pool's `reset`
callback (config/settings.py): `RESET ALL` puts every setting back to the
server's default, then the time zone Django configured when the pool opened
the connection is set again (Django sets it only then), in the same round trip.
No Django import at module level: config/settings.py imports this module.
"""

from __future__ import annotations

from psycopg import sql
from psycopg.pq import TransactionStatus


def reset_session(conn) -> None:
    from django.conf import settings
    from django.db import DEFAULT_DB_ALIAS

    zone = (settings.DATABASES[DEFAULT_DB_ALIAS].get("TIME_ZONE") or "UTC") if settings.USE_TZ \
        else settings.TIME_ZONE
    # No parameters: psycopg sends both statements as one query, one round trip.
    conn.execute(sql.SQL("RESET ALL; SET TIME ZONE {}").format(sql.Literal(zone)))
    if conn.info.transaction_status != TransactionStatus.IDLE:  # a connection not in autocommit
        conn.commit()
