"""Under /api/ every answer is JSON (wrong method, unknown path), errors name the
caller's own input, and a caller can list what it may see (issue 11)."""

import pytest

from queueapp.models import Queue
from queueapp.services import do_join
from tests.api_support import (  # noqa: F401 (fixtures)
    Api,
    anonymous,
    as_kiosk,
    as_other_staff,
    as_staff,
    as_staff_token,
    fast_password_hashing,
    kiosk_key,
    staff_key,
)
from tests.conftest import make_counter, make_queue

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("method,path,allowed", [
    ("get", "/tickets/by-token/AAAAAAAAAAAAAAAAAAAAAA/cancel", "POST"),
    ("delete", "/tickets/by-token/AAAAAAAAAAAAAAAAAAAAAA", "GET"),
    ("put", "/queues/1/tickets", "POST"),
    ("patch", "/locations", "GET"),
])
def test_a_wrong_method_answers_json_405_with_allow(anonymous, method, path, allowed):
    response = getattr(anonymous.client, method)("/api" + path)
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response["Allow"] == allowed
    assert response.json() == {"detail": f"{method.upper()} is not allowed here; use {allowed}.",
                               "code": "method_not_allowed", "field": None}


@pytest.mark.parametrize("path", ["/api/", "/api/nope", "/api/tickets/1/fly", "/api/queues/1/tickets/extra"])
def test_an_unknown_path_answers_json_404(anonymous, path):
    response = anonymous.client.post(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": f"No API endpoint at {path}; see /api/docs.",
                               "code": "not_found", "field": None}


@pytest.fixture
def places(location, other_location):
    general = make_queue(location, "General", "A")
    train = make_queue(location, "Train", "T", kind=Queue.Kind.CAPACITY, capacity=4)
    elsewhere = make_queue(other_location, "Elsewhere", "E")
    desk = make_counter(location, "Desk 1", [general])
    make_counter(other_location, "Far desk", [elsewhere])
    do_join(general)
    do_join(general)
    return general, train, elsewhere, desk


def test_staff_list_their_locations_queues_and_counters_only(as_staff, location, places):
    general, train, elsewhere, desk = places
    assert as_staff.get("/locations").json() == [
        {"id": location.pk, "name": "Riverside Clinic", "slug": "riverside", "timezone": "Europe/Paris"}]
    queues = as_staff.get("/queues").json()
    assert [(q["id"], q["waiting"], q["kind"]) for q in queues] == [
        (general.pk, 2, "counter"), (train.pk, 0, "capacity")]
    assert as_staff.get("/counters").json() == [
        {"id": desk.pk, "name": "Desk 1", "location": "riverside", "is_open": True,
         "state": "open", "reason": "", "queue_ids": [general.pk]}]


def test_a_location_filter_outside_ones_reach_lists_nothing(as_staff, other_location, places):
    assert as_staff.get("/queues", location_id=other_location.pk).json() == []
    assert as_staff.get("/counters", location_id=other_location.pk).json() == []


def test_a_kiosk_token_lists_its_location_and_queues_but_not_counters(as_kiosk, location, places):
    general, train, _, _ = places
    assert [p["slug"] for p in as_kiosk.get("/locations").json()] == ["riverside"]
    assert [q["id"] for q in as_kiosk.get("/queues").json()] == [general.pk, train.pk]
    refused = as_kiosk.get("/counters")
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"


def test_lists_need_a_caller(anonymous, places):
    for path in ("/locations", "/queues", "/counters"):
        assert anonymous.get(path).status_code == 401


def test_the_list_of_queues_costs_a_fixed_number_of_queries(as_staff, places, location,
                                                            django_assert_max_num_queries):
    for n in range(5):
        make_queue(location, f"Extra {n}", f"X{n}")
    with django_assert_max_num_queries(6):
        assert len(as_staff.get("/queues").json()) == 7
