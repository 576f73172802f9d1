"""A bounded property-based fuzz of the API from its own served schema (issue 10).

Schemathesis reads `/api/openapi.json` as the application serves it, generates
requests for every operation (valid ones from the stated constraints, and
invalid ones that break them), sends them through Django's WSGI handler on the
database the test run uses (SQLite or PostgreSQL), as a staff token and as a
kiosk token, and checks each answer: no 5xx, a status the schema documents, the
documented content type and body schema, and invalid input refused. Path ids
are drawn partly from the rows that exist, so requests reach the services and
not only the 404 path. It prints how many requests it sent.
"""

from __future__ import annotations

import os
from datetime import time, timedelta

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from queueapp.api.auth import issue_token
from queueapp.models import ApiToken, OpeningHours, Queue
from queueapp.services import do_book, do_call_next, do_join
from tests.bookings_support import make_schedule
from tests.conftest import make_counter, make_queue

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "10"))  # per operation, caller-independent, and per generation mode: a bounded run
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture
def scene(location, other_location, manager):
    general = make_queue(location, "General", "A")
    train = make_queue(location, "Train", "T", kind=Queue.Kind.CAPACITY, capacity=4, offer_seconds=600)
    elsewhere = make_queue(other_location, "Elsewhere", "E")
    desk = make_counter(location, "Desk 1", [general])
    make_counter(location, "Desk 2", [general])
    tickets = [do_join(general) for _ in range(4)] + [do_join(train, party_size=2)
                                                            for _ in range(3)]
    do_call_next(counter=desk)
    # Appointments: slots all day every day, and bookings whose tokens the fuzz may use.
    make_schedule(general, hours=((time(0), time(23, 45)),), per_slot=3)
    for weekday in (5, 6):
        OpeningHours.objects.create(schedule=general.booking_schedule, weekday=weekday, opens=time(0),
                                    closes=time(23, 45))
    soon = timezone.now().replace(second=0, microsecond=0) + timedelta(days=1)
    bookings = [do_book(general, starts_at=soon.replace(minute=0) + timedelta(minutes=15 * i)) for i in range(3)]
    staff_key = issue_token(location=location, kind=ApiToken.Kind.STAFF, name="Desk app", user=manager)[1]
    kiosk_key = issue_token(location=location, kind=ApiToken.Kind.KIOSK, name="Kiosk")[1]
    return {
        "callers": {"staff token": f"Bearer {staff_key}", "kiosk token": f"Bearer {kiosk_key}"},
        "ids": {"queue_id": [general.pk, train.pk, elsewhere.pk], "counter_id": [desk.pk],
                "ticket_id": [t.pk for t in tickets], "location_id": [location.pk, other_location.pk],
                "token": [t.token for t in tickets] + [b.token for b in bookings]},
    }


def fuzz(operation, mode: GenerationMode, scene: dict, sent: dict) -> None:
    checks = CHECKS + ([negative_data_rejection] if mode == GenerationMode.NEGATIVE else [])

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode),
           caller=st.sampled_from(sorted(scene["callers"])), data=st.data())
    def request(case, caller, data):
        if mode == GenerationMode.POSITIVE:  # half the time, ids of rows that exist
            for name in list(case.path_parameters or {}):
                if name in scene["ids"] and data.draw(st.booleans()):
                    case.path_parameters[name] = data.draw(st.sampled_from(scene["ids"][name]))
        headers = {"Authorization": scene["callers"][caller]}
        response = case.call(headers=headers)
        sent["requests"] += 1
        case.validate_response(response, checks=checks, headers=headers)

    request()


@pytest.fixture
def keep_the_test_connection():
    """As Django's test client does: a request must not close the connection that
    holds the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_the_api_survives_a_property_based_fuzz_of_its_own_schema(scene, keep_the_test_connection,
                                                                   capsys):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    sent = {"requests": 0}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode, scene, sent)
    with capsys.disabled():
        print(f"\nAPI fuzz: {sent['requests']} requests over {len(operations)} operations, "
              "0 server errors, 0 schema violations")
    assert sent["requests"] >= len(operations) * EXAMPLES


def test_the_schema_states_the_constraints_the_api_enforces(client):
    """Generated clients and fuzzers send mostly refused data unless the schema says
    what is accepted (issue 10, defect 6)."""
    schema = client.get("/api/openapi.json").json()
    join = schema["components"]["schemas"]["JoinIn"]["properties"]
    assert join["priority"]["enum"] == [0, 10, 20]
    assert (join["party_size"]["minimum"], join["party_size"]["maximum"]) == (1, 50)
    assert join["note"]["maxLength"] == 200 and "pattern" in join["note"]
    capacity = schema["components"]["schemas"]["CapacityIn"]["properties"]["capacity"]
    assert (capacity["minimum"], capacity["maximum"]) == (0, 1_000_000)
    for path, token_param in (("/api/tickets/by-token/{token}", "get"),
                              ("/api/waitlists/offers/{token}/accept", "post")):
        (param,) = schema["paths"][path][token_param]["parameters"]
        assert param["schema"]["pattern"] == "^[A-Za-z0-9_-]{22}$"
    ids = [p for item in schema["paths"].values() for op in item.values() for p in op.get("parameters", [])
           if p["name"].endswith("_id")]
    assert ids and all(_bounds(p["schema"]) == (1, 2**63 - 1) for p in ids)
    for body in ("CallIn", "TransferIn"):
        for name, field in schema["components"]["schemas"][body]["properties"].items():
            if name.endswith("_id") or name == "to_queue":
                assert (field["minimum"], field["maximum"]) == (1, 2**63 - 1)


def _bounds(schema: dict) -> tuple:
    schema = next((s for s in schema.get("anyOf", [schema]) if s.get("type") == "integer"), schema)
    return schema.get("minimum"), schema.get("maximum")
