"""The admin of waiting rooms (managers at their locations) and of the signing
keys (read-only, the private half never shown)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from queueapp import admission
from queueapp.models import Queue, SigningKey, StaffMembership, Ticket, TicketStatus, WaitingRoom
from queueapp.services import do_pause, rooms
from queueapp.services.rooms import do_create_waiting_room, do_enter_line, room_key_matches
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def plain_static_files(settings):
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


@pytest.fixture
def room(location):
    return do_create_waiting_room(location=location, name="Concert tickets", slug="concert", prefix="W",
                                  target_url="https://shop.example.com/", admit_per_minute=60, max_inside=3)


@pytest.fixture
def manager_client(client, location):
    client.force_login(make_user("bob", location, StaffMembership.Role.MANAGER, is_staff=True))
    return client


def _form(room, **changes) -> dict:
    return {"target_url": room.target_url, "admit_per_minute": room.admit_per_minute,
            "admission_seconds": room.admission_seconds, **changes}


def test_a_manager_sees_the_room_with_who_is_inside_and_waiting(manager_client, room):
    for _ in range(3):
        do_enter_line(room)
    page = manager_client.get(reverse("admin:queueapp_waitingroom_changelist"))
    assert page.status_code == 200
    row = page.content.decode()
    assert "concert" in row and "https://shop.example.com/" in row
    assert '<td class="field-inside">1</td>' in row and '<td class="field-waiting">2</td>' in row


def test_a_manager_changes_the_rate_and_target_and_bad_values_are_refused_naming_the_field(
        manager_client, room):
    url = reverse("admin:queueapp_waitingroom_change", args=[room.pk])
    ok = manager_client.post(url, _form(room, target_url="https://tickets.example.org/", admit_per_minute=120))
    assert ok.status_code == 302
    room.refresh_from_db()
    assert (room.target_url, room.admit_per_minute) == ("https://tickets.example.org/", 120)
    for field, value in (("target_url", "javascript:alert(1)"), ("target_url", "https://a\x00b.example/"),
                         ("admit_per_minute", "0"), ("admit_per_minute", "١٢"), ("admission_seconds", "5"),
                         ("target_url", "https://" + "a" * 300 + ".example/")):
        answer = manager_client.post(url, _form(room, **{field: value}))
        assert answer.status_code == 200, (field, value)
        assert field in answer.context["adminform"].form.errors, (field, value)
    room.refresh_from_db()
    assert (room.target_url, room.admit_per_minute, room.admission_seconds) == (
        "https://tickets.example.org/", 120, 600)


def test_rooms_are_made_by_the_service_not_added_or_deleted_here(manager_client, room):
    assert manager_client.get(reverse("admin:queueapp_waitingroom_add")).status_code == 403
    assert manager_client.post(reverse("admin:queueapp_waitingroom_delete", args=[room.pk]),
                               {"post": "yes"}).status_code == 403
    assert WaitingRoom.objects.filter(pk=room.pk).exists()


def test_another_locations_manager_does_not_see_the_room(client, room, other_location):
    client.force_login(make_user("dora", other_location, StaffMembership.Role.MANAGER, is_staff=True))
    page = client.get(reverse("admin:queueapp_waitingroom_changelist"))
    assert "concert" not in page.content.decode()
    assert client.get(reverse("admin:queueapp_waitingroom_change", args=[room.pk])).status_code in (302, 403, 404)


def test_issuing_a_new_key_shows_it_once_and_the_old_one_stops_working(manager_client, room):
    answer = manager_client.post(reverse("admin:queueapp_waitingroom_changelist"),
                                 {"action": "issue_key", "_selected_action": [room.pk]}, follow=True)
    shown = [str(m) for m in answer.context["messages"]]
    key = shown[0].split("new API key ")[1].split(" ")[0]
    room.refresh_from_db()
    assert room_key_matches(room, key) and key not in room.token_digest


def test_signing_keys_are_read_only_and_never_show_the_private_key(client, location):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    key = admission.signing_key()
    admission.rotate()
    listing = client.get(reverse("admin:queueapp_signingkey_changelist")).content.decode()
    assert key.kid in listing and "signing now" in listing and "published until it retires" in listing
    detail = client.get(reverse("admin:queueapp_signingkey_change", args=[key.pk]))
    assert detail.status_code == 200 and "PRIVATE KEY" not in detail.content.decode()
    assert client.post(reverse("admin:queueapp_signingkey_change", args=[key.pk]),
                       {"kid": "mine"}).status_code == 403
    assert client.get(reverse("admin:queueapp_signingkey_add")).status_code == 403
    assert client.post(reverse("admin:queueapp_signingkey_delete", args=[key.pk]), {"post": "yes"}).status_code == 403
    assert SigningKey.objects.get(pk=key.pk).kid == key.kid


def _arrive(**extra):
    """A new visitor (a browser of its own, no cookie) arrives at the room."""
    return Client().get("/wait/concert/", **extra)


def test_a_managers_change_reaches_the_very_next_arrival(manager_client, room):
    """The arrival's room is cached per process (`services.rooms.room_for_arrival`):
    target, rate, max inside and pause set by staff still count from the next arrival on."""
    assert urlsplit(_arrive()["Location"]).netloc == "shop.example.com"  # admitted at once
    url = reverse("admin:queueapp_waitingroom_change", args=[room.pk])
    assert manager_client.post(url, _form(room, target_url="https://tickets.example.org/",
                                          admit_per_minute=1)).status_code == 302
    # (the next slot has come, and the rate window is clear)
    WaitingRoom.objects.filter(pk=room.pk).update(next_admission_at=None, recent_admissions=[])
    assert urlsplit(_arrive()["Location"]).netloc == "tickets.example.org"
    Queue.objects.filter(pk=room.queue_id).update(capacity=2)  # max inside lowered: 2 are inside
    WaitingRoom.objects.filter(pk=room.pk).update(next_admission_at=None, recent_admissions=[])
    waiting = [_arrive(HTTP_ACCEPT_LANGUAGE="en") for _ in range(3)]
    assert [page.status_code for page in waiting] == [200, 200, 200]
    assert Ticket.objects.filter(queue_id=room.queue_id, status=TicketStatus.CONFIRMED).count() == 2
    # One admission a minute now: the third in line waits about 2 minutes (at 60 a minute: seconds).
    assert "about 2 min" in waiting[2].content.decode()
    do_pause(room.queue_id)
    before = Ticket.objects.count()
    refused = _arrive(HTTP_ACCEPT_LANGUAGE="en")
    assert refused.status_code != 200 and "closed for now" in refused.content.decode()
    assert Ticket.objects.count() == before


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the cache is PostgreSQL's (the hash is its)")
def test_a_room_cached_before_a_change_elsewhere_takes_no_place_on_old_settings(room):
    """Another process's stale copy: its place statement sees the fingerprint
    differ, takes nothing, and the arrival is answered from the room read again."""
    rooms.room_for_arrival("concert")
    stale = rooms._ROOMS["concert"]
    WaitingRoom.objects.filter(pk=room.pk).update(target_url="https://tickets.example.org/")
    assert rooms._ROOMS["concert"] is stale
    answer = _arrive()
    assert urlsplit(answer["Location"]).netloc == "tickets.example.org"
    assert Ticket.objects.filter(queue_id=room.queue_id).count() == 1
    assert rooms._ROOMS["concert"][1] != stale[1]
    # Its name given to another room (tests reuse names) or the room gone: never the old queue.
    WaitingRoom.objects.filter(pk=room.pk).update(slug="concert-old")
    Queue.objects.filter(pk=room.queue_id).update(slug="concert-old")
    newer = do_create_waiting_room(location=room.queue.location, name="Other", slug="concert", prefix="X",
                                   target_url="https://other.example.net/", admit_per_minute=60, max_inside=3)
    assert urlsplit(_arrive()["Location"]).netloc == "other.example.net"
    assert (Ticket.objects.filter(queue_id=room.queue_id).count(),
            Ticket.objects.filter(queue_id=newer.queue_id).count()) == (1, 1)
    WaitingRoom.objects.filter(pk=newer.pk).update(slug="concert-gone")
    assert _arrive().status_code == 404
    assert Ticket.objects.filter(queue_id=newer.queue_id).count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the cache is PostgreSQL's (the hash is its)")
def test_an_arrival_changes_its_own_copy_of_the_cached_room_never_the_cache(room):
    """Arrivals in every thread copy the cached room: what one sets on its copy
    (the queue's counters, the room's next slot) must not reach the cache."""
    rooms.room_for_arrival("concert")
    cached, _ = rooms._ROOMS["concert"]
    before = (cached.next_admission_at, cached.queue.last_seq, cached.queue.version, cached.queue.seats_taken)
    first = rooms.room_for_arrival("concert")
    assert first.queue is not cached.queue and first.queue.location is not cached.queue.location
    assert first.queue.waiting_room is first  # the way back leads to the copy, not the cache
    ticket = rooms.do_enter_line(first)
    assert first.queue.last_seq == ticket.seq  # (the arrival did set its copy's counters)
    assert (cached.next_admission_at, cached.queue.last_seq, cached.queue.version,
            cached.queue.seats_taken) == before
    second = rooms.room_for_arrival("concert")
    assert rooms.do_enter_line(second).number == ticket.number + 1
