"""Shared fixtures: named people (as Healthchecks does) and small factories.

- `staff` works at `location`; `manager` manages it;
- `other_staff` works at `other_location` and must be refused here;
- patients are anonymous: they only hold a ticket token.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest
from django.contrib.auth import get_user_model
from django.utils import translation

from queueapp.models import Counter, Location, Queue, StaffMembership


def _answers(url: str, default_port: int) -> bool:
    parts = urlparse(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def pytest_configure(config):
    # Integration runs must use the real services; say plainly what to do if they are down.
    db = os.environ.get("DATABASE_URL", "")
    if db.startswith("postgres") and not _answers(db, 5432):
        raise pytest.UsageError(f"DATABASE_URL={db} but PostgreSQL does not answer. "
                                "Start it (see ../shared/services.md) or unset DATABASE_URL.")
    redis = os.environ.get("REDIS_URL", "")
    if redis and not _answers(redis, 6379):
        raise pytest.UsageError(f"REDIS_URL={redis} but Redis does not answer. "
                                "Start it (see ../shared/services.md) or unset REDIS_URL.")


def pytest_sessionstart(session):
    # The .mo catalogs are built from the committed .po files (not committed
    # themselves): a run straight from pytest sees the current translations.
    from queueapp.management.translations import compile_catalogs

    compile_catalogs()


@pytest.fixture
def location(db):
    return Location.objects.create(name="Riverside Clinic", slug="riverside", timezone="Europe/Paris")


@pytest.fixture
def other_location(db):
    return Location.objects.create(name="Hilltop Pharmacy", slug="hilltop")


def make_queue(location, name="General", prefix="A", **kwargs) -> Queue:
    slug = kwargs.pop("slug", name.lower().replace(" ", "-"))
    return Queue.objects.create(location=location, name=name, slug=slug, prefix=prefix, **kwargs)


def make_counter(location, name="Counter 1", queues=()) -> Counter:
    counter = Counter.objects.create(location=location, name=name)
    counter.queues.set(queues)
    return counter


@pytest.fixture
def queue(location):
    return make_queue(location)


@pytest.fixture
def counter(location, queue):
    return make_counter(location, "Counter 1", [queue])


def make_user(username, location=None, role=StaffMembership.Role.STAFF, **kwargs):
    user = get_user_model().objects.create_user(username=username, password="pw-" + username, **kwargs)
    if location is not None:
        StaffMembership.objects.create(user=user, location=location, role=role)
    return user


@pytest.fixture
def staff(location):
    return make_user("alice", location)


@pytest.fixture
def manager(location):
    return make_user("bob", location, StaffMembership.Role.MANAGER)


@pytest.fixture
def other_staff(other_location):
    return make_user("charlie", other_location)


@pytest.fixture
def published():
    """The messages handed to the live publisher during the test, in order."""
    from queueapp.live import publisher

    sink: list[dict] = []
    publisher._sink.append(sink)
    yield sink
    publisher._sink.remove(sink)


@pytest.fixture(autouse=True)
def _fast_and_static_free(settings):
    """Suite-wide test settings: a fast password hasher (the named people are
    created in almost every test) and plain static storage, so pages render
    without `collectstatic` having run."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _no_language_carried_over():
    """The test client runs each request in this thread, and a page or service
    activates the language it speaks (`languages.use_language`, `@authorize`); the
    next test must not inherit it (a German staff page left German messages in a
    waiting-room test that ran after it)."""
    yield
    translation.deactivate()


# `make test` runs each test file whole on one of several workers (pytest-xdist,
# --dist loadfile), handing out files in collection order. A long file handed out
# last keeps one worker busy while the others idle, so the long ones go first:
# every file with a browser test, then these (the longest others by --durations;
# a name that no longer exists is harmless), then the rest in their usual order.
LONG_MODULES = (
    "tests.test_input_sweep_pages", "tests.test_input_sweep_api", "tests.test_state_machine",
    "tests.test_waiting_room_e2e", "tests.test_live_server", "tests.test_waitlist_model",
    "tests.test_alerts_worker_kill", "tests.test_api_fuzz", "tests.test_stats",
    "tests.test_input_sweep_admin", "tests.test_waiting_room", "tests.test_verify_action",
)


def pytest_collection_modifyitems(config, items):
    browser = {item.module.__name__ for item in items if item.get_closest_marker("browser")}

    def rank(item) -> int:
        name = item.module.__name__
        if name in browser:
            return 0
        return 1 if name in LONG_MODULES else 2

    items.sort(key=rank)  # stable: the order within each file is kept
