"""Helpers for the API tests: a JSON client per caller and API-token fixtures.

Test modules import the fixtures they use from here (pytest finds fixtures
imported into a module).
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from queueapp.api.auth import issue_token
from queueapp.models import ApiToken


class Api:
    """Talks JSON to /api/ as one caller: anonymous, a logged-in user, or a token."""

    def __init__(self, *, user=None, key: str | None = None, enforce_csrf: bool = False):
        self.client = Client(enforce_csrf_checks=enforce_csrf)
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        if user is not None:
            self.client.force_login(user)

    def get(self, path: str, **params):
        return self.client.get("/api" + path, params, headers=self.headers)

    def post(self, path: str, data=None, *, raw: str | bytes | None = None, headers=None):
        body = raw if raw is not None else ("" if data is None else json.dumps(data))
        return self.client.post("/api" + path, body, content_type="application/json",
                                headers={**self.headers, **(headers or {})})


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The named people get real password hashes; PBKDF2 would dominate these tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def anonymous(db):
    return Api()


@pytest.fixture
def as_staff(staff):
    return Api(user=staff)


@pytest.fixture
def as_manager(manager):
    return Api(user=manager)


@pytest.fixture
def as_other_staff(other_staff):
    return Api(user=other_staff)


@pytest.fixture
def kiosk_key(location):
    return issue_token(location=location, kind=ApiToken.Kind.KIOSK, name="Kiosk by the door")[1]


@pytest.fixture
def as_kiosk(kiosk_key):
    return Api(key=kiosk_key)


@pytest.fixture
def staff_key(location, staff):
    return issue_token(location=location, kind=ApiToken.Kind.STAFF, name="Desk app", user=staff)[1]


@pytest.fixture
def as_staff_token(staff_key):
    return Api(key=staff_key)
