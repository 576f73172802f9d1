"""A saturated database answers 503 with Retry-After and a sentence, at once:
never a 500, never after the pool's 20 s (daphne, PostgreSQL, a real pool)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import psycopg
import pytest
from django.db import connection

from queueapp.models import Queue, Ticket
from queueapp.overload import BUSY_SENTENCE, PUBLIC_POOL_WAIT, RETRY_AFTER, RETRY_SPREAD

RETRIES = {str(s) for s in range(RETRY_AFTER, RETRY_AFTER + RETRY_SPREAD + 1)}  # a busy answer's Retry-After
from queueapp.services.rooms import do_create_waiting_room, do_issue_room_key
from tests.browser_support import database_url_for, serve

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

POOL_TIMEOUT = 4  # the server's own pool wait in this test (20 s by default)


def test_arrivals_and_the_api_answer_503_when_the_pool_is_exhausted(location):
    if connection.vendor != "postgresql":
        pytest.skip("the connection pool is PostgreSQL's")
    room = do_create_waiting_room(location=location, name="Concert", slug="concert", prefix="W",
                                  target_url="https://shop.example.com/", admit_per_minute=60, max_inside=5)
    key = do_issue_room_key(room)
    url = database_url_for(connection.settings_dict)
    # More request seats than connections (config/admission.py would turn the
    # third arrival away before it asks the pool): the pool's own 503 is tested here.
    with serve(url, DB_POOL_MAX="2", DB_POOL_TIMEOUT=str(POOL_TIMEOUT), WAIT_RATE_LIMIT="10000/60",
               HTTP_IN_FLIGHT="10") as base:
        # Someone holds the room's row: the first two arrivals take the server's two
        # connections and wait on it; everyone after them finds the pool empty.
        holder = psycopg.connect(url)
        holder.execute(f"SELECT 1 FROM {Queue._meta.db_table} WHERE id = %s FOR UPDATE", [room.queue_id])
        try:
            stuck, busy_page, busy_api = asyncio.run(_crowd(base, key, holder))
        finally:
            holder.close()
    # Both got their place once the row was free, and the head is in at once
    # (whichever of the two ran the admission: the other's page may still show
    # "waiting" and turns live, so the database says who is in, not the answers).
    assert sorted(stuck) in ([200, 200], [200, 302])
    assert list(Ticket.objects.filter(queue_id=room.queue_id).order_by("number")
                .values_list("status", flat=True)) == ["confirmed", "waiting"]
    status, headers, body, took = busy_page
    assert status == 503 and headers["Retry-After"] in RETRIES
    assert str(BUSY_SENTENCE) in body and f'content="{headers["Retry-After"]}"' in body  # the page retries by itself
    assert took < PUBLIC_POOL_WAIT + 2  # a public arrival waits seconds, not the pool's timeout
    status, headers, body, took = busy_api
    assert status == 503 and headers["Retry-After"] in RETRIES
    assert body == {"detail": str(BUSY_SENTENCE), "code": "unavailable", "field": None}
    assert took < POOL_TIMEOUT + 3


async def _crowd(base: str, key: str, holder):
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def arrive(n: int):
            started = time.monotonic()
            async with session.get(f"{base}/wait/concert/?return=/buy", allow_redirects=False,
                                   headers={"X-Forwarded-For": f"10.0.0.{n}"}) as answer:
                return answer.status, answer.headers, await answer.text(), time.monotonic() - started

        stuck = [asyncio.create_task(arrive(n)) for n in (1, 2)]
        await asyncio.sleep(1.5)  # both hold a connection now, waiting on the row
        busy_page = await arrive(3)
        started = time.monotonic()
        async with session.post(f"{base}/api/rooms/concert/visitors/1/release", json={"outcome": "done"},
                                headers={"Authorization": f"Bearer {key}"}) as answer:
            busy_api = answer.status, answer.headers, await answer.json(), time.monotonic() - started
        holder.rollback()  # the row is free: the two waiting arrivals go on
        return [(await t)[0] for t in stuck], busy_page, busy_api


def test_the_busy_page_is_in_each_visitors_language_and_reloads_only_after_a_get():
    """The page is rendered once per language and kind (`overload._busy_page`):
    each visitor still gets it in their own language and direction."""
    from django.test import RequestFactory
    from django.utils import translation

    from queueapp.overload import busy_response

    pages = {}
    for language, method in (("de", "get"), ("ar", "get"), ("de", "post"), ("en", "get"), ("de", "get")):
        with translation.override(language):
            response = busy_response(getattr(RequestFactory(), method)("/wait/concert/"))
            pages[language, method] = response.content.decode()
            assert response.status_code == 503 and response["Retry-After"] in RETRIES
            assert str(BUSY_SENTENCE) in pages[language, method]  # (translated in the active language)
    assert 'lang="de" dir="ltr"' in pages["de", "get"] and 'lang="ar" dir="rtl"' in pages["ar", "get"]
    assert pages["de", "get"] != pages["en", "get"]
    assert 'http-equiv="refresh"' in pages["de", "get"] and 'http-equiv="refresh"' not in pages["de", "post"]


def test_busy_answers_spread_their_retry_after_and_each_page_says_its_own():
    """A crowd turned away together must not come back together: each busy
    answer's Retry-After is drawn from RETRY_AFTER..RETRY_AFTER + RETRY_SPREAD,
    and the page reloads itself after (and says) the same number of seconds."""
    import re

    from django.test import RequestFactory
    from django.utils import translation

    from queueapp.overload import busy_response

    seen = set()
    with translation.override("en"):
        for _ in range(300):
            response = busy_response(RequestFactory().get("/wait/concert/"))
            retry = response["Retry-After"]
            page = response.content.decode()
            assert retry in RETRIES
            assert re.search(r'http-equiv="refresh" content="(\d+)"', page).group(1) == retry
            assert f"tries again by itself in {retry} seconds" in page
            seen.add(retry)
    assert seen == RETRIES  # (300 draws of 6 values: all of them, but for a 1-in-10^22 chance)
