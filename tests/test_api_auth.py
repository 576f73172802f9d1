"""API tokens: issued once by a command, stored as a digest, limited by kind and location."""

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from queueapp.models import ApiToken
from tests.api_support import (  # noqa: F401 (fixtures)
    Api, as_kiosk, as_staff_token, fast_password_hashing, kiosk_key, staff_key)

pytestmark = pytest.mark.django_db


def _create(**options) -> str:
    out, err = StringIO(), StringIO()
    call_command("create_api_token", stdout=out, stderr=err, **options)
    assert "cannot be shown again" in err.getvalue()
    return out.getvalue().strip()


def test_command_prints_the_key_once_and_stores_only_its_digest(location, staff, queue):
    key = _create(location="riverside", kind="staff", user="alice", name="Front desk app")
    token = ApiToken.objects.get()
    assert (token.kind, token.user, token.location, token.name) == ("staff", staff, location, "Front desk app")
    assert token.digest == hashlib.sha256(key.encode()).hexdigest() and key not in token.digest
    assert Api(key=key).get(f"/queues/{queue.pk}").json()["name"] == "General"


def test_command_makes_kiosk_tokens_without_a_user(location, queue):
    key = _create(location="riverside", kind="kiosk", name="Kiosk by the door")
    assert ApiToken.objects.get().user is None
    assert Api(key=key).post(f"/queues/{queue.pk}/tickets", {}).status_code == 201


@pytest.mark.parametrize("options,message", [
    ({"location": "nowhere", "kind": "kiosk"}, "No location with slug 'nowhere'."),
    ({"location": "riverside", "kind": "staff"}, "A staff token acts as a user: name one."),
    ({"location": "riverside", "kind": "staff", "user": "zed"}, "No user named 'zed'."),
    ({"location": "riverside", "kind": "staff", "user": "charlie"}, "charlie is not staff at Riverside Clinic."),
])
def test_command_refuses_what_cannot_work(location, other_staff, options, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_api_token", name="x", stdout=StringIO(), stderr=StringIO(), **options)
    assert not ApiToken.objects.exists()


def test_last_used_is_written_at_most_once_a_minute(queue, as_kiosk, monkeypatch):
    token = ApiToken.objects.get()
    assert token.last_used_at is None
    as_kiosk.post(f"/queues/{queue.pk}/tickets", {})
    token.refresh_from_db()
    first_use = token.last_used_at
    assert first_use is not None
    as_kiosk.post(f"/queues/{queue.pk}/tickets", {})
    token.refresh_from_db()
    assert token.last_used_at == first_use
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(minutes=2))
    as_kiosk.post(f"/queues/{queue.pk}/tickets", {})
    token.refresh_from_db()
    assert token.last_used_at > first_use


def test_a_revoked_token_stops_working(queue, as_kiosk):
    ApiToken.objects.all().delete()
    response = as_kiosk.post(f"/queues/{queue.pk}/tickets", {})
    assert response.status_code == 401


def test_a_token_in_use_reads_its_row_once_while_kept(queue, as_kiosk):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    assert as_kiosk.post(f"/queues/{queue.pk}/tickets", {}).status_code == 201
    with CaptureQueriesContext(connection) as queries:
        assert as_kiosk.post(f"/queues/{queue.pk}/tickets", {}).status_code == 201
    assert not [q["sql"] for q in queries if ApiToken._meta.db_table in q["sql"]]


def test_a_token_in_use_revoked_here_stops_working_at_once(queue, as_kiosk, as_staff_token, staff):
    assert as_kiosk.post(f"/queues/{queue.pk}/tickets", {}).status_code == 201
    assert as_staff_token.get(f"/queues/{queue.pk}").status_code == 200
    ApiToken.objects.filter(kind=ApiToken.Kind.KIOSK).delete()
    assert as_kiosk.post(f"/queues/{queue.pk}/tickets", {}).status_code == 401
    staff.is_active = False
    staff.save()
    assert as_staff_token.get(f"/queues/{queue.pk}").status_code == 401


def test_a_token_revoked_by_another_process_stops_working_within_the_bound(queue, as_kiosk, settings,
                                                                             monkeypatch):
    from django.db import connection

    from queueapp.api import auth

    settings.API_TOKEN_CACHE_SECONDS = 5.0
    now = [1000.0]
    monkeypatch.setattr(auth, "_clock", lambda: now[0])
    assert as_kiosk.post(f"/queues/{queue.pk}/tickets", {}).status_code == 201
    with connection.cursor() as cursor:  # as another process would: no signal reaches this one
        cursor.execute(f"DELETE FROM {ApiToken._meta.db_table}")
    now[0] += 4.9
    assert as_kiosk.post(f"/queues/{queue.pk}/tickets", {}).status_code == 201  # the stated bound
    now[0] += 0.2
    assert as_kiosk.post(f"/queues/{queue.pk}/tickets", {}).status_code == 401


def test_other_authorization_schemes_are_not_a_login(queue):
    api = Api()
    api.headers = {"Authorization": "Basic YWxpY2U6cHc="}
    response = api.post(f"/queues/{queue.pk}/tickets", {})
    assert response.status_code == 401 and response.json()["code"] == "unauthenticated"


def test_a_token_wins_over_the_session_it_travels_with(queue, staff, kiosk_key):
    # A staff member's browser session must not lend a kiosk token staff rights.
    api = Api(user=staff, key=kiosk_key)
    assert api.get(f"/queues/{queue.pk}/waiting").status_code == 403
