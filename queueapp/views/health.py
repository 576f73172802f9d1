"""Liveness, readiness and Prometheus metrics: `/healthz`, `/readyz`, `/metrics`.

- `/healthz`: the process answers. No database, no Redis: a load balancer must
  not restart every web process because PostgreSQL blinked.
- `/readyz`: the database answers, the channel layer takes a message, and the
  live publisher is not behind (`queueapp.live.publisher.health()`); 503 with
  the failing check named otherwise.
- `/metrics`: Prometheus text. Queue figures are read from the database at
  scrape time, so every process reports the same and several daphne processes
  need no shared multiprocess directory; only the publisher figures are per
  process (scrape each process for those). Labels are location and queue slugs,
  never tickets; dated capacity queues count only until their date has passed,
  so the label set does not grow with history. Set `METRICS_TOKEN` to require
  `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from datetime import timedelta

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.db.models import Avg, Count, Min, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.cache import never_cache
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..alerts.metrics import OutboxCollector
from ..dbfunctions import PercentileCont, Seconds
from ..live import publisher
from ..models import Queue, Ticket, TicketStatus

CHECK_TIMEOUT = 2.0  # seconds per dependency before /readyz calls it down
MAX_PENDING = 1000  # publisher messages waiting to be sent
MAX_PENDING_AGE = 5.0  # seconds the oldest of them may wait


@never_cache
async def healthz(request: HttpRequest) -> JsonResponse:
    # async: answered on the event loop, no thread hop (the middleware chain is async too)
    return JsonResponse({"status": "ok"})


def _database_answers() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def publisher_problem(health: dict) -> str | None:
    """Why the live publisher is behind (`publisher.health()`), or None."""
    if health["pending"] > MAX_PENDING:
        return f"{health['pending']} live updates waiting to be sent (limit {MAX_PENDING})"
    if health["oldest_pending_seconds"] > MAX_PENDING_AGE:
        return (f"oldest live update has waited {health['oldest_pending_seconds']:.1f} s "
                f"(limit {MAX_PENDING_AGE:.0f} s); last error: {health.get('last_error')}")
    return None


@never_cache
async def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(sync_to_async(_database_answers)(), CHECK_TIMEOUT)
        checks["database"] = "ok"
    except Exception as error:  # any failure means "not ready", named in the answer
        checks["database"] = f"down: {type(error).__name__}: {error}"[:300]
    try:
        layer = get_channel_layer()
        # A group nobody joins: proves the layer (Redis) takes a message, subscribes nothing.
        await asyncio.wait_for(layer.group_send("readyz.probe", {"type": "readyz.probe"}), CHECK_TIMEOUT)
        checks["channel_layer"] = "ok"
    except Exception as error:
        checks["channel_layer"] = f"down: {type(error).__name__}: {error}"[:300]
    health = publisher.health()
    problem = publisher_problem(health)
    checks["publisher"] = problem or "ok"
    ready = checks["database"] == "ok" and checks["channel_layer"] == "ok" and problem is None
    return JsonResponse({"ready": ready, "checks": checks, "publisher": health},
                        status=200 if ready else 503)


class QueueCollector:
    """Reads queue figures from the database at scrape time (a fixed few queries)."""

    def collect(self):
        now = timezone.now()
        queues = list(
            Queue.objects.select_related("location")
            .filter(Q(service_date__isnull=True) | Q(service_date__gte=now.date() - timedelta(days=1)))
        )
        labels = {q.pk: [q.location.slug, q.slug] for q in queues}
        names = ["location", "queue"]

        waiting = GaugeMetricFamily("queueapp_waiting_tickets", "Tickets waiting in line now.", labels=names)
        oldest = GaugeMetricFamily("queueapp_oldest_waiting_seconds",
                                   "How long the longest-waiting ticket has been in line.", labels=names)
        line = {row["queue_id"]: row for row in
                Ticket.objects.filter(status=TicketStatus.WAITING, queue_id__in=labels)
                .values("queue_id").annotate(n=Count("pk"), since=Min("queued_at")).order_by()}
        events = CounterMetricFamily("queueapp_queue_events",
                                     "Actions on the queue (one event each, ever).", labels=names)
        for q in queues:
            row = line.get(q.pk)
            waiting.add_metric(labels[q.pk], row["n"] if row else 0)
            oldest.add_metric(labels[q.pk], (now - row["since"]).total_seconds() if row else 0)
            events.add_metric(labels[q.pk], q.version)
        yield from (waiting, oldest, events)
        yield from self._today(queues, labels, names)

    def _today(self, queues, labels, names):
        """Today's tickets by status and today's waits, per queue (each location's own day)."""
        today = {loc.pk: loc.business_day() for loc in {q.location for q in queues}}
        day_of = {q.pk: today[q.location_id] for q in queues}
        tickets = Ticket.objects.filter(queue_id__in=labels, business_day__in=set(today.values()))
        statuses = GaugeMetricFamily("queueapp_tickets_today", "Today's tickets by status.",
                                     labels=[*names, "status"])
        for row in tickets.values("queue_id", "business_day", "status").annotate(n=Count("pk")).order_by():
            if row["business_day"] == day_of[row["queue_id"]]:
                statuses.add_metric([*labels[row["queue_id"]], row["status"]], row["n"])
        wait = Seconds("called_at", "created_at")
        waits = GaugeMetricFamily("queueapp_wait_today_seconds",
                                  "Today's wait from ticket to call: average and quantiles.",
                                  labels=[*names, "stat"])
        for row in (tickets.filter(called_at__isnull=False).values("queue_id", "business_day")
                    .annotate(avg=Avg(wait), p50=PercentileCont(wait, 0.5), p90=PercentileCont(wait, 0.9))
                    .order_by()):
            if row["business_day"] == day_of[row["queue_id"]]:
                for stat in ("avg", "p50", "p90"):
                    waits.add_metric([*labels[row["queue_id"]], stat], row[stat] or 0)
        yield from (statuses, waits)


class PublisherCollector:
    """This process's live publisher: backlog, lag, totals."""

    def collect(self):
        health = publisher.health()
        yield GaugeMetricFamily("queueapp_publish_pending", "Live updates not yet sent (this process).",
                                value=health["pending"])
        yield GaugeMetricFamily("queueapp_publish_lag_seconds",
                                "Age of the oldest unsent live update (this process).",
                                value=health["oldest_pending_seconds"])
        yield CounterMetricFamily("queueapp_publish_sent", "Live updates sent (this process).",
                                  value=health["sent"])
        yield CounterMetricFamily("queueapp_publish_failed", "Live updates that failed (this process).",
                                  value=health["failed"])


def _authorised(request: HttpRequest) -> bool:
    token = os.environ.get("METRICS_TOKEN", "")
    if not token:
        return True
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(given.encode(), token.encode())


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if not _authorised(request):
        return HttpResponse("Send Authorization: Bearer <METRICS_TOKEN>.\n", status=401,
                            content_type="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector())
    registry.register(PublisherCollector())
    registry.register(OutboxCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
]

