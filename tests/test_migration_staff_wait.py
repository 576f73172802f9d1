"""The migration that made the queue's service target the staff wait alert's
one threshold: existing rules' thresholds become targets, one rule per queue
is kept, and nothing else changes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

MIGRATION = ("alerts", "0004_staff_wait_uses_queue_target")


@pytest.mark.django_db(transaction=True)
def test_staff_wait_thresholds_become_queue_targets():
    executor = MigrationExecutor(connection)
    # queueapp as it is now (the queue's target exists), the alerts just before.
    queueapp_now = [node for node in executor.loader.graph.leaf_nodes() if node[0] == "queueapp"]
    BEFORE = [("alerts", "0003_staff_push"), *queueapp_now]
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    Location, Queue = old.get_model("queueapp", "Location"), old.get_model("queueapp", "Queue")
    AlertRule = old.get_model("alerts", "AlertRule")
    place = Location.objects.create(name="Old", slug="old", timezone="UTC")
    two_rules = Queue.objects.create(location=place, name="Two", slug="two", prefix="T")
    one_off = Queue.objects.create(location=place, name="Off", slug="off", prefix="O")
    untouched = Queue.objects.create(location=place, name="None", slug="none", prefix="N")
    AlertRule.objects.create(queue=two_rules, kind="staff_wait", threshold=30, enabled=True, raised=True)
    AlertRule.objects.create(queue=two_rules, kind="staff_wait", threshold=15, enabled=False)
    AlertRule.objects.create(queue=one_off, kind="staff_wait", threshold=25, enabled=False)
    AlertRule.objects.create(queue=untouched, kind="ahead", threshold=3)

    executor.loader.build_graph()
    executor.migrate([MIGRATION, *queueapp_now])
    new = executor.loader.project_state([MIGRATION, *queueapp_now]).apps
    Queue, AlertRule = new.get_model("queueapp", "Queue"), new.get_model("alerts", "AlertRule")
    targets = dict(Queue.objects.values_list("slug", "target_wait_minutes"))
    # The enabled rule's threshold (what managers heard), else the only one; no target where no rule.
    assert targets == {"two": 30, "off": 25, "none": None}
    kept = {(r.queue.slug, r.kind): (r.threshold, r.enabled, r.raised)
            for r in AlertRule.objects.select_related("queue")}
    assert kept == {("two", "staff_wait"): (None, True, False), ("off", "staff_wait"): (None, False, False),
                    ("none", "ahead"): (3, True, False)}

    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())  # the rest of the chain applies on top
