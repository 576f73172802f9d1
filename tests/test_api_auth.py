"""API tokens: issued once by a command, stored as a digest, limited by kind and location."""

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from queueapp.models import ApiToken
from tests.api_support import Api, as_kiosk, fast_password_hashing, kiosk_key  # noqa: F401 (fixtures)

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


def test_last_used_is_written_at_most_once_a_minute(queue, as_kiosk):
    token = ApiToken.objects.get()
    assert token.last_used_at is None
    as_kiosk.post(f"/queues/{queue.pk}/tickets", {})
    token.refresh_from_db()
    first_use = token.last_used_at
    assert first_use is not None
    as_kiosk.post(f"/queues/{queue.pk}/tickets", {})
    token.refresh_from_db()
    assert token.last_used_at == first_use
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    as_kiosk.post(f"/queues/{queue.pk}/tickets", {})
    token.refresh_from_db()
    assert token.last_used_at > first_use


def test_a_revoked_token_stops_working(queue, as_kiosk):
    ApiToken.objects.all().delete()
    response = as_kiosk.post(f"/queues/{queue.pk}/tickets", {})
    assert response.status_code == 401


def test_other_authorization_schemes_are_not_a_login(queue):
    api = Api()
    api.headers = {"Authorization": "Basic YWxpY2U6cHc="}
    response = api.post(f"/queues/{queue.pk}/tickets", {})
    assert response.status_code == 401 and response.json()["code"] == "unauthenticated"


def test_a_token_wins_over_the_session_it_travels_with(queue, staff, kiosk_key):
    # A staff member's browser session must not lend a kiosk token staff rights.
    api = Api(user=staff, key=kiosk_key)
    assert api.get(f"/queues/{queue.pk}/waiting").status_code == 403
