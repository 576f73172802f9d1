"""The API documents itself: the OpenAPI schema and its page."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_openapi_schema_lists_every_endpoint_and_both_logins():
    schema = Client().get("/api/openapi.json").json()
    assert schema["info"]["title"] == "Queue API"
    paths = set(schema["paths"])
    assert {
        "/api/queues/{queue_id}/tickets", "/api/queues/{queue_id}", "/api/queues/{queue_id}/waiting",
        "/api/queues/{queue_id}/pause", "/api/queues/{queue_id}/resume",
        "/api/tickets/by-token/{token}", "/api/tickets/by-token/{token}/cancel",
        "/api/tickets/{ticket_id}", "/api/tickets/{ticket_id}/call", "/api/tickets/{ticket_id}/recall",
        "/api/tickets/{ticket_id}/start", "/api/tickets/{ticket_id}/complete",
        "/api/tickets/{ticket_id}/no-show", "/api/tickets/{ticket_id}/cancel",
        "/api/tickets/{ticket_id}/transfer", "/api/counters/{counter_id}/call-next",
    } <= paths
    schemes = schema["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}
    join = schema["paths"]["/api/queues/{queue_id}/tickets"]["post"]
    assert {"201", "400", "401", "403", "404", "409"} <= set(join["responses"])
    # The public status page needs no login.
    assert "security" not in schema["paths"]["/api/tickets/by-token/{token}"]["get"]


def test_docs_page_renders(settings):
    # Tests run without collectstatic; the docs page only needs the files to exist.
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    response = Client().get("/api/docs")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger" in page.lower() and "/api/openapi.json" in page
