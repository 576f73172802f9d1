"""The waiting room in a real browser (Debian's Chromium through Playwright): a
visitor waits on the room's page and, when admitted, is taken to the protected
site by the page itself (the live push, no reload by the visitor), carrying
a token of this room."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from queueapp.models import Ticket
from queueapp.services.rooms import do_create_waiting_room, do_enter_line, do_release_visitor
from tests.browser_support import BROWSER_MARKS
from tests.test_browser_pages import Errors, browser, server_url, wait_socket_open  # noqa: F401

pytestmark = [
    *BROWSER_MARKS,
]

LIVE = 8_000  # ms: pushes are instant, but allow a slow shared machine


@pytest.fixture
def shop():
    """The protected site: answers every page with 200 and remembers what it was asked."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            asked.append(self.path)
            body = b"<!doctype html><title>Shop</title><h1>Welcome to the shop</h1>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", asked
    server.shutdown()


@pytest.fixture
def room(transactional_db, shop):
    from queueapp.models import Location

    location = Location.objects.create(name="Arena", slug="arena", timezone="Europe/Paris")
    return do_create_waiting_room(location=location, name="Concert tickets", slug="concert", prefix="W",
                                  target_url=shop[0] + "/", admit_per_minute=6000, max_inside=1)


def test_an_admitted_visitors_open_page_takes_them_to_the_site_by_itself(browser, server_url, room, shop):  # noqa: F811
    inside = do_enter_line(room)  # the one place inside is taken
    errors = Errors()
    context = browser.new_context()
    page = errors.watch(context.new_page())
    page.goto(f"{server_url}/wait/concert/?return=/buy?seat=12")
    mine = Ticket.objects.filter(queue_id=room.queue_id).exclude(pk=inside.pk).get()
    assert "You are 1st in line." in " ".join(page.locator("#ticket-status").inner_text().split())
    wait_socket_open(page, f"/ws/ticket/{mine.token}/")

    do_release_visitor(room, inside.pk, outcome="done")  # the place is free: mine is admitted now

    page.wait_for_url(f"{shop[0]}/buy?**", timeout=LIVE)
    query = parse_qs(urlsplit(page.url).query)
    assert query["seat"] == ["12"]
    claims = jwt.decode(query["queue_token"][0], options={"verify_signature": False})
    assert (claims["room"], claims["sub"]) == ("concert", str(mine.pk))
    assert "Welcome to the shop" in page.content()
    assert errors == []
    context.close()
