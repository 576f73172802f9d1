"""A pytest plugin loaded before Django's settings (`-p tests.worker_env` in
pytest.ini): what the test harness must tell the settings through the
environment, kept out of `config/settings.py`.

Parallel test workers (pytest-xdist) share one Redis, and test databases number
their rows alike: without a prefix of its own, one worker's screens would hear
the other worker's queues. Each worker appends its id (`gw0`, `gw1`) to
`CHANNEL_PREFIX` before pytest-django reads the settings; the daphne servers
the tests start (`browser_support.run_daphne`) copy `os.environ`, so they use
the same prefix as the worker that started them.
"""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(tryfirst=True)  # before pytest-django's, which loads the settings
def pytest_load_initial_conftests(early_config, parser, args):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    prefix = os.environ.get("CHANNEL_PREFIX", "queueapp")
    if worker and not prefix.endswith(worker):  # a nested run inherits the worker's prefix already
        os.environ["CHANNEL_PREFIX"] = prefix + worker
