"""A pooled PostgreSQL connection goes back to the pool with a clean session.

`config/postgresql/base.py` resets each connection on the thread that gives it
back (`session.before_return`), not through the pool's own `reset` callback
(settings: no `reset` in the pool's options). So that reset is all that stands
between one request's `SET` and the next borrower of the same server session:
here a connection is given back as a request's end gives it back
(`connection.close()`), and the same server process (`pg_backend_pid()`) is
borrowed again. Fails with the reset in `_close` removed (or `DB_POOL_RESET=0`).
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"] != "config.postgresql",
                       reason="the pool and its session reset are PostgreSQL's"),
]


def _session() -> tuple[int, str, str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), current_setting('statement_timeout'), "
                       "current_setting('application_name'), current_setting('TimeZone')")
        return cursor.fetchone()


def test_a_connection_given_back_reaches_its_next_borrower_with_the_default_session():
    assert "reset" not in settings.DATABASES["default"]["OPTIONS"]["pool"]  # ours is the only reset
    pid, timeout, name, zone = _session()
    assert zone == "UTC"  # what Django set when the pool opened it (USE_TZ)
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = '7min'")
        cursor.execute("SET application_name = 'left-by-an-earlier-request'")
        cursor.execute("SET TIME ZONE 'Asia/Tokyo'")
    connection.close()  # a request's end: the connection goes back to the pool

    # The pool hands its idle connections out in turn: borrow until the same one comes back.
    for _ in range(4 * settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]):
        again = _session()
        connection.close()
        if again[0] == pid:
            break
    else:
        pytest.fail("the pool never lent the same connection again")
    # every setting back to the server's default, and Django's time zone set again
    assert again == (pid, timeout, name, "UTC")
