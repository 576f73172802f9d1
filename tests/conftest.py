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
    config.pluginmanager.register(_FileTimes(config), "queueapp_file_times")  # see FILE_SECONDS below
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
def _async_join_only_on_committed_rows(request, settings):
    """The kiosk's join in the event loop (API_ASYNC_JOIN) runs on connections
    of its own, which cannot see a test's uncommitted rows: it is on only in
    tests whose rows are committed (`transaction=True`); the others test the
    thread path."""
    marker = request.node.get_closest_marker("django_db")
    if not (marker and marker.kwargs.get("transaction")) and "transactional_db" not in request.fixturenames:
        settings.API_ASYNC_JOIN = False


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
# last keeps one worker busy while the others idle, so the longest go first.
# How long each file took is recorded by every run (all its tests' set-up, call
# and tear-down) in pytest's cache, and the next run orders the files by it,
# so the order keeps itself true as files grow, shrink, appear and go. A clean
# clone (CI) has no cache: there, files with a browser test go first, then the
# files that mark themselves long (`pytestmark = pytest.mark.slow`: the fact
# lives in the file, and leaves with it), then the rest in their usual order;
# CI's second `make test` (PostgreSQL) already orders by the first one's times.
FILE_SECONDS = "queueapp/file_seconds"


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config, items):
    seconds = config.pluginmanager.get_plugin("queueapp_file_times").known
    browser = {_file_of(item.nodeid) for item in items if item.get_closest_marker("browser")}
    slow = {_file_of(item.nodeid) for item in items if item.get_closest_marker("slow")}

    def rank(item) -> tuple:
        name = _file_of(item.nodeid)
        if name in seconds:
            return (1, -seconds[name])
        # Not timed yet (a clean clone, a new file, a cache from a run of a few
        # files): browser and slow files before the timed ones, others after.
        if name in browser or name in slow:
            return (0, 0 if name in browser else 1)
        return (2, 0)

    items.sort(key=rank)  # stable: the order within each file is kept


class _FileTimes:
    """Sums each file's seconds from the reports (the controller receives every
    worker's) and merges them into the cache at the end: a run of a few whole
    files updates those, and files gone from disk are dropped."""

    def __init__(self, config):
        self.seconds: dict[str, float] = {}
        # The times the order is made from: read once, by the controller, and
        # handed to the workers (every worker must collect the same order, even
        # if another run in this checkout writes the cache meanwhile).
        if hasattr(config, "workerinput"):
            self.known = config.workerinput.get(FILE_SECONDS, {})
        else:
            self.known = config.cache.get(FILE_SECONDS, {}) if getattr(config, "cache", None) else {}

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node):  # pytest-xdist, in the controller
        node.workerinput[FILE_SECONDS] = self.known

    def pytest_runtest_logreport(self, report):
        name = _file_of(report.nodeid)
        self.seconds[name] = self.seconds.get(name, 0.0) + report.duration

    def pytest_sessionfinish(self, session, exitstatus):
        config, option = session.config, session.config.option
        if hasattr(config, "workerinput") or not getattr(config, "cache", None) or not self.seconds:
            return  # a worker: the controller writes
        # Only whole files' times: not after -k/-m/--lf/-x, a test named by id, or Ctrl-C.
        partial = (option.keyword or option.markexpr or getattr(option, "lf", False) or option.maxfail
                   or any("::" in arg for arg in config.args) or exitstatus == pytest.ExitCode.INTERRUPTED)
        if partial:
            return
        known = {**self.known, **{k: round(v, 1) for k, v in self.seconds.items()}}
        config.cache.set(FILE_SECONDS, {k: v for k, v in known.items() if (config.rootpath / k).exists()})
