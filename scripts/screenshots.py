"""Screenshots of the four screens at desktop and phone size, for the README.

    .venv/bin/python scripts/screenshots.py            # writes docs/screenshots/*.png

Builds a throw-away SQLite database with the demo clinic, serves it with daphne
(tests/browser_support.py) and photographs it with Debian's Chromium.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser_support import launch, serve  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
SIZES = {"desktop": {"width": 1366, "height": 860}, "phone": {"width": 390, "height": 844}}
TV = {"width": 1920, "height": 1080}

# A morning in the demo clinic: a few people called, one being served.
ACTIVITY = """
from queueapp.models import Counter, Queue, Priority
from queueapp.services import do_call_next, do_join, do_start_serving, do_complete
general = Queue.objects.get(slug="general")
lab = Queue.objects.get(slug="lab")
for _ in range(4):
    do_join(general)
do_join(lab, priority=Priority.HIGH)
do_join(lab)
c1, c2, r3 = (Counter.objects.get(name=n) for n in ("Counter 1", "Counter 2", "Room 3"))
done = do_call_next(counter=c2); do_start_serving(done); do_complete(done)
do_call_next(counter=r3)
serving = do_call_next(counter=c2); do_start_serving(serving)
do_call_next(counter=c1)
"""


def manage(env: dict, *args: str) -> str:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True).stdout


def main() -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite:///{tmp}/shots.sqlite3"
        env = {**os.environ, "DATABASE_URL": database_url}
        env.pop("REDIS_URL", None)
        manage(env, "migrate", "--noinput", "--verbosity", "0")
        manage(env, "seed_demo")
        manage(env, "shell", "-c", ACTIVITY)
        token = manage(env, "shell", "-c",
                       "from queueapp.models import Ticket\n"
                       "print(Ticket.objects.filter(status='waiting', queue__slug='general')"
                       ".order_by('-seq').first().token)").strip().splitlines()[-1]
        called_token = manage(env, "shell", "-c",
                              "from queueapp.models import Ticket\n"
                              "print(Ticket.objects.get(status='called', counter__name='Counter 1').token)"
                              ).strip().splitlines()[-1]
        counter_id = manage(env, "shell", "-c",
                            "from queueapp.models import Counter\n"
                            "print(Counter.objects.get(name='Counter 2').pk)").strip().splitlines()[-1]
        with serve(database_url, REDIS_URL="") as url, sync_playwright() as playwright:
            browser = launch(playwright)
            for size, viewport in SIZES.items():
                context = browser.new_context(viewport=viewport, device_scale_factor=1)
                page = context.new_page()
                page.goto(f"{url}/login/")
                page.fill("input[name=username]", "staff")
                page.fill("input[name=password]", "staff-demo")
                page.click("button[type=submit]")
                page.wait_for_url(f"{url}/console/")
                page.goto(f"{url}/console/{counter_id}/")
                page.wait_for_timeout(300)
                page.screenshot(path=OUT / f"console-{size}.png", full_page=size == "phone")
                page.goto(f"{url}/kiosk/riverside/")
                page.screenshot(path=OUT / f"kiosk-{size}.png")
                page.get_by_role("button", name="General practice").click()
                page.wait_for_selector(".receipt")
                page.screenshot(path=OUT / f"kiosk-ticket-{size}.png", full_page=True)
                page.goto(f"{url}/t/{token}/")
                page.wait_for_timeout(300)
                page.screenshot(path=OUT / f"patient-{size}.png", full_page=True)
                page.goto(f"{url}/t/{called_token}/")
                page.wait_for_timeout(300)
                page.screenshot(path=OUT / f"patient-called-{size}.png", full_page=True)
                page.goto(f"{url}/display/riverside/")
                if size == "desktop":
                    page.set_viewport_size(TV)
                page.wait_for_timeout(300)
                page.screenshot(path=OUT / f"display-{'tv' if size == 'desktop' else size}.png",
                                full_page=size == "phone")
                context.close()
            browser.close()
    for path in sorted(OUT.glob("*.png")):
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
