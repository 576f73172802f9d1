"""/healthz, /readyz and /metrics."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from queueapp.live import publisher
from queueapp.services import do_call_next, do_join
from tests.conftest import make_queue

HEALTHY = {"pending": 0, "oldest_pending_seconds": 0.0, "last_error": None, "sent": 12, "failed": 1}


@pytest.fixture
def publisher_reports(monkeypatch):
    """Set what the live publisher's health() says (the contract of issue 3)."""
    def set_report(report):
        monkeypatch.setattr(publisher, "health", lambda: dict(report), raising=False)
    set_report(HEALTHY)
    return set_report


def test_healthz_answers_without_touching_the_database(client):
    # No django_db mark: any query here would fail the test.
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_ready_when_database_layer_and_publisher_answer(client, publisher_reports):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"] == {"database": "ok", "channel_layer": "ok", "publisher": "ok"}


@pytest.mark.django_db
def test_readyz_is_not_ready_when_the_publisher_falls_behind(client, publisher_reports):
    publisher_reports({**HEALTHY, "pending": 40, "oldest_pending_seconds": 12.5,
                       "last_error": "ConnectionError: redis"})
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "oldest live update has waited 12.5 s" in response.json()["checks"]["publisher"]


@pytest.mark.django_db
def test_readyz_names_a_channel_layer_that_does_not_answer(client, monkeypatch, publisher_reports):
    class DownLayer:
        async def group_send(self, group, message):
            raise ConnectionError("Connection refused (redis:6379)")

    monkeypatch.setattr("queueapp.views.health.get_channel_layer", lambda: DownLayer())
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["channel_layer"].startswith("down: ConnectionError")
    assert response.json()["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_readyz_names_a_database_that_does_not_answer(client, monkeypatch, publisher_reports):
    from django.db import OperationalError

    def refuse():
        raise OperationalError("could not connect to server")

    monkeypatch.setattr("queueapp.views.health._database_answers", refuse)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "down: OperationalError: could not connect to server"


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


@pytest.mark.django_db
def test_metrics_report_queue_lengths_waits_actions_and_publish_lag(
        client, location, queue, counter, publisher_reports):
    publisher_reports({**HEALTHY, "pending": 3, "oldest_pending_seconds": 0.25})
    for _ in range(3):
        do_join(queue)
    do_call_next(counter=counter)
    samples = scrape(client)
    where = (("location", "riverside"), ("queue", "general"))
    assert samples[("queueapp_waiting_tickets", where)] == 2
    assert samples[("queueapp_queue_events_total", where)] == 4
    assert samples[("queueapp_tickets_today", tuple(sorted((*where, ("status", "called")))))] == 1
    assert samples[("queueapp_wait_today_seconds", tuple(sorted((*where, ("stat", "p90")))))] >= 0
    assert samples[("queueapp_oldest_waiting_seconds", where)] >= 0
    assert samples[("queueapp_publish_pending", ())] == 3
    assert samples[("queueapp_publish_lag_seconds", ())] == 0.25
    assert samples[("queueapp_publish_sent_total", ())] == 12


@pytest.mark.django_db
def test_metrics_make_the_same_queries_for_one_queue_or_many(client, location, queue, publisher_reports):
    do_join(queue)
    with CaptureQueriesContext(connection) as one:
        scrape(client)
    for i in range(6):
        do_join(make_queue(location, f"Extra {i}", f"E{i}"))
    with CaptureQueriesContext(connection) as many:
        scrape(client)
    assert len(many) == len(one) <= 6


@pytest.mark.django_db
def test_metrics_token_is_required_when_set(client, monkeypatch, publisher_reports):
    monkeypatch.setenv("METRICS_TOKEN", "s3cret")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200
