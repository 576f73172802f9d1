"""The middleware chain under ASGI (queueapp/middleware.py runs its hooks inline).

Django's test `Client` runs the chain synchronously, where our subclasses are
the stock classes; `AsyncClient` runs it as daphne does. These check that the
inline hooks still do everything the stock ones do: CSRF refuses, the login
session is saved and read back, a flash message survives the redirect, the
security headers are set, static files are served.
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from queueapp.middleware import AuthenticationMiddleware, CsrfViewMiddleware, SessionMiddleware

pytestmark = pytest.mark.django_db(transaction=True)


def test_under_asgi_the_chain_keeps_csrf_sessions_messages_and_headers(staff, counter, queue):
    from queueapp.services import do_join

    do_join(queue)

    async def scenario():
        client = AsyncClient(enforce_csrf_checks=True)
        page = await client.get("/login/")
        assert page.status_code == 200
        assert page["X-Frame-Options"] == "DENY" and page["X-Content-Type-Options"] == "nosniff"
        token = page.cookies["csrftoken"].value

        refused = await client.post("/login/", {"username": "alice", "password": "pw-alice"})
        assert refused.status_code == 403  # no CSRF token

        done = await client.post("/login/", {"username": "alice", "password": "pw-alice",
                                             "csrfmiddlewaretoken": token})
        assert done.status_code == 302  # logged in: the session was saved (a write, through a thread)
        token = done.cookies["csrftoken"].value if "csrftoken" in done.cookies else token

        console = await client.get(f"/console/{counter.pk}/")
        assert console.status_code == 200  # the session read back in the next request

        acted = await client.post(f"/console/{counter.pk}/act", {"action": "call_next", "csrfmiddlewaretoken": token})
        assert acted.status_code == 302
        after = await client.get(acted["Location"])
        assert "Calling A-001" in after.content.decode()  # the flash message survived the redirect

        assert (await client.get("/healthz")).json() == {"status": "ok"}

    async_to_sync(scenario)()


def test_the_hooks_are_async_under_asgi_and_stock_under_wsgi():
    async def view(request):
        return None

    def sync_view(request):
        return None

    for cls in (SessionMiddleware, CsrfViewMiddleware, AuthenticationMiddleware):
        assert cls.async_capable
        from asgiref.sync import iscoroutinefunction

        assert iscoroutinefunction(cls(view))
        assert not iscoroutinefunction(cls(sync_view))
