"""Queue endpoints: the waiting line staff work from, pause and resume."""

import pytest

from queueapp.models import Priority, QueueEvent
from queueapp.services import do_join
from tests.api_support import as_manager, as_staff, fast_password_hashing  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def test_waiting_line_in_serving_order_with_positions_and_notes(queue, as_staff):
    do_join(queue)
    do_join(queue, priority=Priority.URGENT, note="chest pain")
    do_join(queue, priority=Priority.HIGH)
    body = as_staff.get(f"/queues/{queue.pk}/waiting").json()
    assert body["queue"]["waiting"] == 3 and body["queue"]["is_paused"] is False
    assert [(t["number"], t["position"], t["note"]) for t in body["tickets"]] == [
        ("A-002", 1, "chest pain"), ("A-003", 2, ""), ("A-001", 3, "")]


def test_waiting_line_is_cut_at_the_limit_in_a_fixed_number_of_queries(
        queue, as_staff, django_assert_max_num_queries):
    for _ in range(30):
        do_join(queue)
    with django_assert_max_num_queries(8):  # session, user, membership, queue, line, count
        body = as_staff.get(f"/queues/{queue.pk}/waiting", limit=5).json()
    assert body["queue"]["waiting"] == 30
    assert [t["position"] for t in body["tickets"]] == [1, 2, 3, 4, 5]


def test_manager_pauses_and_resumes(queue, as_manager, manager):
    paused = as_manager.post(f"/queues/{queue.pk}/pause").json()
    assert paused["is_paused"] is True
    assert as_manager.post(f"/queues/{queue.pk}/resume").json()["is_paused"] is False
    events = list(QueueEvent.objects.filter(queue=queue).values_list("kind", "actor"))
    assert events == [("paused", manager.pk), ("resumed", manager.pk)]


def test_queue_summary(queue, as_staff):
    do_join(queue)
    body = as_staff.get(f"/queues/{queue.pk}").json()
    assert body == {"id": queue.pk, "name": "General", "slug": "general", "location": "riverside",
                    "kind": "counter", "is_paused": False, "max_waiting": None, "waiting": 1,
                    "version": 1}
