"""A location's manager runs its queues, counters and staff in the admin, and only there."""

import pytest
from django.urls import reverse

from queueapp.models import Counter, Queue, StaffMembership
from tests.conftest import make_counter, make_queue, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def dora(location):
    # A manager with admin access and no Django model permissions at all.
    return make_user("dora", location, StaffMembership.Role.MANAGER, is_staff=True)


def _queue_form(location, **extra):
    return {"location": location.pk, "name": "Vaccinations", "slug": "vaccinations", "prefix": "V",
            "kind": "counter", "recall_limit": 2, "default_service_seconds": 300,
            # The calling rule's fields, as the add page fills them in (their defaults).
            "calling_rule": "priority", "ratio_priority": 2, "ratio_normal": 1, "call_weight": 1, **extra}


def test_a_manager_lists_only_their_locations_queues_counters_and_staff(client, dora, location, other_location,
                                                                         queue, counter, staff):
    theirs = make_queue(other_location, "Elsewhere", "E")
    make_counter(other_location, "Far desk", [theirs])
    make_user("olga", other_location)
    client.force_login(dora)
    index = client.get(reverse("admin:index")).content.decode()
    for model in ("queue", "counter", "staffmembership"):
        assert reverse(f"admin:queueapp_{model}_changelist") in index
    assert [q.pk for q in client.get(reverse("admin:queueapp_queue_changelist")).context["cl"].result_list] \
        == [queue.pk]
    assert [c.pk for c in client.get(reverse("admin:queueapp_counter_changelist")).context["cl"].result_list] \
        == [counter.pk]
    members = client.get(reverse("admin:queueapp_staffmembership_changelist")).context["cl"].result_list
    assert {m.user.username for m in members} == {"dora", "alice"}
    # Another location's rows cannot be opened, changed or deleted.
    assert client.get(reverse("admin:queueapp_queue_change", args=[theirs.pk])).status_code == 302
    client.post(reverse("admin:queueapp_queue_delete", args=[theirs.pk]), {"post": "yes"})
    assert Queue.objects.filter(pk=theirs.pk).exists()


def test_a_manager_adds_changes_and_deletes_at_their_location(client, dora, location, queue):
    client.force_login(dora)
    assert client.post(reverse("admin:queueapp_queue_add"), _queue_form(location)).status_code == 302
    added = Queue.objects.get(slug="vaccinations")
    assert added.location == location
    response = client.post(reverse("admin:queueapp_counter_add"),
                           {"location": location.pk, "name": "Room 9", "queues": [added.pk], "across_queues": "priority"})
    assert response.status_code == 302
    room = Counter.objects.get(name="Room 9")
    assert list(room.queues.all()) == [added]
    client.post(reverse("admin:queueapp_queue_change", args=[added.pk]),
                _queue_form(location, name="Vaccines"))
    added.refresh_from_db()
    assert added.name == "Vaccines"
    newcomer = make_user("nina")
    assert client.post(reverse("admin:queueapp_staffmembership_add"),
                       {"user": newcomer.pk, "location": location.pk, "role": "staff"}).status_code == 302
    assert StaffMembership.objects.filter(user=newcomer, location=location).exists()
    client.post(reverse("admin:queueapp_counter_delete", args=[room.pk]), {"post": "yes"})
    assert not Counter.objects.filter(pk=room.pk).exists()


def test_a_manager_cannot_put_anything_at_another_location(client, dora, location, other_location, queue):
    theirs = make_queue(other_location, "Elsewhere", "E")
    client.force_login(dora)
    response = client.post(reverse("admin:queueapp_queue_add"), _queue_form(other_location))
    assert response.status_code == 200 and "location" in response.context["adminform"].form.errors
    response = client.post(reverse("admin:queueapp_counter_add"),
                           {"location": location.pk, "name": "Sneaky", "queues": [theirs.pk]})
    assert response.status_code == 200 and "queues" in response.context["adminform"].form.errors
    response = client.post(reverse("admin:queueapp_staffmembership_add"),
                           {"user": dora.pk, "location": other_location.pk, "role": "manager"})
    assert response.status_code == 200
    assert not StaffMembership.objects.filter(location=other_location).exists()
    assert not Queue.objects.filter(location=other_location).exclude(pk=theirs.pk).exists()


def test_staff_who_are_not_managers_get_nothing_and_superusers_everything(client, location, other_location,
                                                                         queue):
    clerk = make_user("eve", location, is_staff=True)
    client.force_login(clerk)
    for model in ("queue", "counter", "staffmembership"):
        assert client.get(reverse(f"admin:queueapp_{model}_changelist")).status_code == 403
    theirs = make_queue(other_location, "Elsewhere", "E")
    root = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(root)
    listed = client.get(reverse("admin:queueapp_queue_changelist")).context["cl"].result_list
    assert {q.pk for q in listed} == {queue.pk, theirs.pk}


def test_a_manager_who_is_only_staff_elsewhere_cannot_put_anything_there(client, dora, location, other_location):
    """Managing one location and working at another (no model permissions): the
    forms offer only the managed one, not every location the manager belongs to."""
    StaffMembership.objects.create(user=dora, location=other_location, role=StaffMembership.Role.STAFF)
    client.force_login(dora)
    response = client.post(reverse("admin:queueapp_queue_add"), _queue_form(other_location))
    assert response.status_code == 200 and "location" in response.context["adminform"].form.errors
    assert not Queue.objects.filter(location=other_location).exists()
