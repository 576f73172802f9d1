"""Benchmark: the statistics page on PostgreSQL with a generated day of 5,000 tickets.

    .venv/bin/python bench/stats_page.py [--tickets 5000] [--rounds 20]

Uses its own database (default postgres://postgres@127.0.0.1:5432/queueapp_statsbench,
override with STATSBENCH_DATABASE_URL), migrates and empties it, generates the
day (tests/sample_day.py), then renders through Django's test client, in process:
- baseline: /healthz (the whole request path, no query, no template);
- /stats/ for that day (both aggregate sets, charts, table) and its CSV;
- the admin ticket list (100 rows) for comparison.
Prints median and 95th percentile per page. Target: /stats/ under 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DATABASE_URL"] = os.environ.get(
    "STATSBENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/queueapp_statsbench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("STATIC_MANIFEST", "false")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from queueapp.models import Location  # noqa: E402
from tests.sample_day import generate_day  # noqa: E402

DAY = date(2026, 3, 10)


def timed(client: Client, url: str, rounds: int) -> tuple[list[float], int, int]:
    response = client.get(url)  # warm: templates compiled, connection open
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    queries = []  # execute_wrapper survives the reconnect of each request (CONN_MAX_AGE = 0)
    with connection.execute_wrapper(lambda execute, sql, *a: (queries.append(sql), execute(sql, *a))[1]):
        client.get(url)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        response = client.get(url)
        body = response.getvalue() if response.streaming else response.content
        times.append(time.perf_counter() - start)
    return times, len(queries), len(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("This benchmark is for PostgreSQL: set STATSBENCH_DATABASE_URL=postgres://...")

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)  # TRUNCATE: the event trigger allows it
    started = time.perf_counter()
    location = Location.objects.create(name="Bench Clinic", slug="bench", timezone="Europe/Paris")
    records = generate_day(location, DAY, tickets=args.tickets)
    made = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    admin = get_user_model().objects.create_superuser("bench", password="bench-pw")
    client = Client()
    client.force_login(admin)

    span = f"start={DAY}&end={DAY}&location={location.pk}"
    pages = [
        ("baseline /healthz", "/healthz"),
        ("/stats/ (one day)", f"/stats/?{span}"),
        ("/stats/ CSV per hour", f"/stats/?{span}&format=csv&by=hour"),
        ("admin ticket list", "/admin/queueapp/ticket/"),
    ]
    print(f"PostgreSQL {connection.pg_version // 10000}; {len(records)} tickets, "
          f"{sum(len(r.events) for r in records)} events generated in {made:.1f} s; "
          f"{args.rounds} rounds each")
    print(f"{'page':<24}{'median ms':>11}{'p95 ms':>9}{'queries':>9}{'bytes':>9}")
    for name, url in pages:
        times, queries, size = timed(client, url, args.rounds)
        ms = sorted(t * 1000 for t in times)
        p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
        print(f"{name:<24}{statistics.median(ms):>11.1f}{p95:>9.1f}{queries:>9}{size:>9}")


if __name__ == "__main__":
    main()
