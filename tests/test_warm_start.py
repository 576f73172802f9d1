"""config/warm.py: once the ASGI module is imported (before daphne listens),
a process's first requests import no code and compile no template."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
import config.asgi
from django.template import engines
from django.test import Client
before = set(sys.modules)
loader = engines["django"].engine.template_loaders[0]
compiled = len(loader.get_template_cache)
answers = [Client().get(path).status_code for path in ("/healthz", "/-no-such-page-/", "/login/")]
print(json.dumps({"answers": answers, "imported": sorted(set(sys.modules) - before),
                  "compiled_at_start": compiled, "compiled_later": len(loader.get_template_cache) - compiled}))
"""


def test_the_first_requests_of_a_fresh_process_import_nothing_and_compile_no_template(tmp_path):
    env = {"DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
           "PATH": "/usr/bin:/bin", "LOG_LEVEL": "WARNING", "ALLOWED_HOSTS": "testserver",
           "STATIC_MANIFEST": "0"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    run = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["answers"] == [200, 404, 200], seen
    assert seen["imported"] == [], ", ".join(seen["imported"])  # the first requests imported no module
    assert seen["compiled_later"] == 0 and seen["compiled_at_start"] >= 40, seen
