"""Settings come from the environment; production values pass `check --deploy`.

Each case runs manage.py in a subprocess, because settings are read once per
process.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PRODUCTION = {
    "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnop",
    "DEBUG": "false",
    "ALLOWED_HOSTS": "queue.example.org",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_COOKIES": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/queueapp",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    # Alerts by e-mail need a relay in production; without one Django's own
    # deploy check rightly flags the console back-end (mail.E001).
    "EMAIL_HOST": "smtp.example.org",
}


def manage(*args, **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in PRODUCTION and k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def test_production_settings_pass_check_deploy():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_embedded_default_is_flagged_by_check_deploy():
    result = manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr + result.stdout


def test_redis_url_selects_channels_redis_without_socket_timeout():
    code = ("from django.conf import settings as s; l = s.CHANNEL_LAYERS['default'];"
            "print(l['BACKEND']); print(l['CONFIG']['hosts'][0]['socket_timeout'])")
    result = manage("shell", "-v", "0", "-c", code, REDIS_URL="redis://127.0.0.1:6379/0")
    assert result.returncode == 0, result.stderr
    backend, timeout = result.stdout.split()
    assert backend.startswith("channels_redis.") and timeout == "None"


def test_default_database_is_sqlite_with_immediate_transactions_and_wal():
    code = ("from django.db import connection as c; c.ensure_connection();"
            "print(c.vendor, c.settings_dict['OPTIONS']['transaction_mode']);"
            "print(c.cursor().execute('PRAGMA journal_mode').fetchone()[0])")
    result = manage("shell", "-v", "0", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["sqlite", "IMMEDIATE", "wal"]


def test_a_malformed_boolean_is_refused_with_its_name():
    result = manage("check", DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be true or false" in result.stderr


def test_a_malformed_number_setting_stops_start_up_naming_the_variable():
    result = manage("check", ALERTS_SEND_TIMEOUT="5s")
    assert result.returncode != 0
    assert "ImproperlyConfigured: ALERTS_SEND_TIMEOUT must be a number, not '5s'" in result.stderr
    assert "ValueError" not in result.stderr


@pytest.mark.parametrize(("value", "kind", "message"), [
    ("ten", int, "ALERTS_BATCH must be a whole number, not 'ten'"),
    ("2.5", int, "ALERTS_BATCH must be a whole number, not '2.5'"),
    ("\u0663", int, "ALERTS_BATCH must be a whole number, not '\u0663'"),  # Arabic-Indic three
    ("", int, "ALERTS_BATCH must be a whole number, not ''"),
    ("1e400", float, "ALERTS_BATCH must be a number, not '1e400'"),  # overflows to inf
    ("nan", float, "ALERTS_BATCH must be a number, not 'nan'"),
    ("-inf", float, "ALERTS_BATCH must be a number, not '-inf'"),
    ("0", int, "ALERTS_BATCH must be at least 1, not '0'"),
])
def test_env_number_refuses_what_is_not_a_usable_number(monkeypatch, value, kind, message):
    from django.core.exceptions import ImproperlyConfigured

    from config.settings import env_number

    monkeypatch.setenv("ALERTS_BATCH", value)
    with pytest.raises(ImproperlyConfigured) as refused:
        env_number("ALERTS_BATCH", 100, kind=kind, minimum=1)
    assert str(refused.value) == message


def test_env_number_reads_numbers_and_falls_back_to_the_default(monkeypatch):
    from config.settings import env_number

    monkeypatch.delenv("ALERTS_BATCH", raising=False)
    assert env_number("ALERTS_BATCH", 100, kind=int) == 100
    monkeypatch.setenv("ALERTS_BATCH", " 25 ")
    assert env_number("ALERTS_BATCH", 100, kind=int) == 25
    monkeypatch.setenv("ALERTS_BATCH", "0.25")
    assert env_number("ALERTS_BATCH", 1.0) == 0.25


def test_each_parallel_test_worker_has_its_own_redis_prefix():
    """tests/worker_env.py: workers share one Redis; with one prefix, one
    worker's screens would hear another's queues (nothing to check in a run
    without workers)."""
    from django.conf import settings

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        pytest.skip("not a pytest-xdist worker")
    assert settings.REDIS_PREFIX.endswith(worker) and os.environ["CHANNEL_PREFIX"] == settings.REDIS_PREFIX
