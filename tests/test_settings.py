"""Settings come from the environment; production values pass `check --deploy`.

Each case runs manage.py in a subprocess, because settings are read once per
process.
"""

import os
import subprocess
import sys
from pathlib import Path

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
