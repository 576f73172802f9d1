"""The cache's Redis connections are shared by a process's threads: a crowd of
request threads opens a bounded number of them, not one (pool) per thread."""

from __future__ import annotations

import secrets
import threading

import pytest
import redis
from django.conf import settings
from django.core.cache import caches
from django.test import override_settings

THREADS = 60


def test_many_threads_using_the_cache_open_a_bounded_number_of_redis_connections():
    if not settings.REDIS_URL:
        pytest.skip("the cache is Redis only with REDIS_URL")
    config = dict(settings.CACHES["default"])
    name = f"cache-test-{secrets.token_hex(4)}"  # to count this test's connections, and only them
    config["OPTIONS"] = {**config.get("OPTIONS", {}), "client_name": name}
    bound = config["OPTIONS"]["max_connections"]
    assert bound < THREADS
    started = threading.Barrier(THREADS + 1)
    counted = threading.Barrier(THREADS + 1)
    failures = []

    def request_thread(n: int) -> None:
        try:
            cache = caches["default"]  # each thread's own backend instance, as under daphne
            cache.add(f"{name}:{n}", 1, timeout=30)  # the rate limit's calls
            cache.incr(f"{name}:{n}")
        except Exception as error:  # pragma: no cover - reported below
            failures.append(error)
        finally:
            started.wait()
            counted.wait()  # alive (and its backend with it) until the connections are counted

    with override_settings(CACHES={"default": config}):
        threads = [threading.Thread(target=request_thread, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        started.wait()
        try:
            clients = redis.Redis.from_url(settings.REDIS_URL).client_list()
        finally:
            counted.wait()
            for thread in threads:
                thread.join()
    assert failures == []
    mine = [client for client in clients if client["name"] == name]
    assert 1 <= len(mine) <= bound


def test_a_request_using_the_cache_does_not_look_up_installed_packages(monkeypatch):
    """`caches` makes a backend per request context; each used to make its
    own client, and Django's client asks redis-py for a `DriverInfo`, which
    reads redis-py's version from the installed packages' metadata (a scan of
    `sys.path`): 17 % of a waiting-room arrival's busy request thread (py-spy,
    session 11). The process makes one client per cache and shares it."""
    if not settings.REDIS_URL:
        pytest.skip("the cache is Redis only with REDIS_URL")
    from importlib import metadata

    def use_cache_in_a_new_thread() -> object:
        seen = []

        def request_thread() -> None:
            cache = caches["default"]  # a backend of this thread's own
            cache.add(f"metadata-test-{secrets.token_hex(4)}", 1, timeout=5)
            seen.append(cache._cache)

        thread = threading.Thread(target=request_thread)
        thread.start()
        thread.join()
        return seen[0]

    first = use_cache_in_a_new_thread()  # (the process's first use may make the client)
    lookups = []
    real_version = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: lookups.append(name) or real_version(name))
    clients = {id(use_cache_in_a_new_thread()) for _ in range(3)}
    assert lookups == []
    assert clients == {id(first)}
