"""Over daphne: with the process's request seats full, another public request
is answered the busy 503 from the event loop (before any database wait), and
staff still get through (config/admission.py; PostgreSQL, a real pool)."""

from __future__ import annotations

import asyncio

import aiohttp
import psycopg
import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from queueapp.models import ApiToken, Queue
from queueapp.overload import BUSY_SENTENCE, RETRY_AFTER, RETRY_SPREAD

RETRIES = {str(s) for s in range(RETRY_AFTER, RETRY_AFTER + RETRY_SPREAD + 1)}  # a busy answer's Retry-After
from queueapp.services.rooms import do_create_waiting_room
from queueapp.api.auth import issue_token
from tests.browser_support import database_url_for, serve_daphne

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def test_a_full_server_turns_public_requests_away_at_once_and_lets_staff_in(location, staff):
    if connection.vendor != "postgresql":
        pytest.skip("the held row lock is PostgreSQL's")
    room = do_create_waiting_room(location=location, name="Concert", slug="concert", prefix="W",
                                  target_url="https://shop.example.com/", admit_per_minute=60, max_inside=5)
    key = issue_token(location=location, kind=ApiToken.Kind.STAFF, name="Desk app", user=staff)[1]
    browser = Client()
    browser.force_login(staff)
    session = browser.cookies["sessionid"].value
    url = database_url_for(connection.settings_dict)
    # Three seats, one kept for staff; the pool has connections to spare, so
    # only the seats can turn anyone away.
    with serve_daphne(url, DB_POOL_MAX="8", HTTP_IN_FLIGHT="3", HTTP_STAFF_RESERVE="1",
                    HTTP_ADMISSION_WAIT="0.5", WAIT_RATE_LIMIT="10000/60") as server:
        holder = psycopg.connect(url)
        holder.execute(f"SELECT 1 FROM {Queue._meta.db_table} WHERE id = %s FOR UPDATE", [room.queue_id])
        try:
            stuck, page, languages, api, console, staff_api, made_up = asyncio.run(
                _full_server(server.url, holder, session=session, key=key, queue_id=room.queue_id))
        finally:
            holder.close()
        log = server.log()
    assert sorted(stuck) in ([200, 200], [200, 302]), log  # the seats' holders got their places once the row was free (the first may be let in at once)
    status, headers, body = page
    assert status == 503 and headers["Retry-After"] in RETRIES
    assert str(BUSY_SENTENCE) in body and f'content="{headers["Retry-After"]}"' in body  # the page retries by itself
    # In the visitor's language, from the gate too (the language cookie first, then Accept-Language).
    (status, headers, body), (status_ar, _, body_ar) = languages
    assert status == status_ar == 503
    assert 'lang="de" dir="ltr"' in body and str(BUSY_SENTENCE) not in body
    assert 'lang="ar" dir="rtl"' in body_ar
    status, headers, body = api
    assert status == 503 and headers["Retry-After"] in RETRIES
    assert body == {"detail": str(BUSY_SENTENCE), "code": "unavailable", "field": None}
    assert "requests in flight" in log and "database busy" not in log  # turned away by the seats, not the pool
    assert console == (200, True)  # a logged-in member of staff, while the public ones are refused
    assert staff_api == 200  # and an API token
    # A made-up session cookie in a session key's shape takes the staff lane
    # and is refused by the view (to the login page); one in no key's shape is
    # not trusted by the gate at all: the public lane's 503.
    in_key_shape, not_a_key = made_up
    assert in_key_shape[0] == 302 and in_key_shape[1].startswith(reverse("login")), in_key_shape
    assert not_a_key[0] == 503, not_a_key


async def _full_server(base: str, holder, *, session: str, key: str, queue_id: int):
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as client:
        async def arrive(n: int, **headers: str):
            async with client.get(f"{base}/wait/concert/?return=/buy", allow_redirects=False,
                                  headers={"X-Forwarded-For": f"10.0.0.{n}", **headers}) as answer:
                return answer.status, answer.headers, await answer.text()

        stuck = [asyncio.create_task(arrive(n)) for n in (1, 2)]
        await asyncio.sleep(1.5)  # both hold a seat now, waiting on the row
        page = await arrive(3)
        languages = (await arrive(4, **{"Accept-Language": "de-DE,de;q=0.9"}),
                     await arrive(5, **{"Accept-Language": "de", "Cookie": "django_language=ar"}))
        async with client.get(f"{base}/api/queues/{queue_id}/slots") as answer:
            api = answer.status, answer.headers, await answer.json()
        async with client.get(f"{base}/console/", headers={"Cookie": f"sessionid={session}"},
                              allow_redirects=False) as answer:
            console = answer.status, "Riverside Clinic" in await answer.text()
        async with client.get(f"{base}/api/queues", headers={"Authorization": f"Bearer {key}"}) as answer:
            staff_api = answer.status
        made_up = []
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as stranger:  # only these cookies
            for cookie in ("sessionid=" + "0123456789abcdefghijklmnopqrstuv", "sessionid=made-up"):
                async with stranger.get(f"{base}/console/", headers={"Cookie": cookie},
                                        allow_redirects=False) as answer:
                    made_up.append((answer.status, answer.headers.get("Location", "")))
        holder.rollback()  # the row is free: the two waiting arrivals go on
        return [(await t)[0] for t in stuck], page, languages, api, console, staff_api, made_up


def test_a_visitor_holding_a_place_waits_for_a_seat_longer_than_a_new_arrival(location):
    """An admitted visitor's reload turned away with the busy 503 comes back
    after Retry-After while its admission runs out (5 of 836 lapsed so in a
    crowd of 10,000, docs/benchmarks.md session 11): with the seats full it
    waits up to `HTTP_PLACED_ADMISSION_WAIT`, a new arrival only
    `HTTP_ADMISSION_WAIT`."""
    if connection.vendor != "postgresql":
        pytest.skip("the held row lock is PostgreSQL's")
    room = do_create_waiting_room(location=location, name="Concert", slug="concert", prefix="W",
                                  target_url="https://shop.example.com/", admit_per_minute=60, max_inside=5)
    url = database_url_for(connection.settings_dict)
    with serve_daphne(url, DB_POOL_MAX="8", HTTP_IN_FLIGHT="3", HTTP_STAFF_RESERVE="1",
                      HTTP_ADMISSION_WAIT="0.5", HTTP_PLACED_ADMISSION_WAIT="10",
                      WAIT_RATE_LIMIT="10000/60") as server:
        new, placed = asyncio.run(_placed_and_new(server.url, url, room.queue_id))
    assert new[0] == 503 and new[1] < 2, new
    assert placed[0] == 302 and placed[1] > 1.0, placed  # (admitted on arriving: its reload goes to the site)


async def _placed_and_new(base: str, url: str, queue_id: int):
    async def arrive(client, n: int):
        started = asyncio.get_running_loop().time()
        async with client.get(f"{base}/wait/concert/?return=/buy", allow_redirects=False,
                              headers={"X-Forwarded-For": f"10.0.1.{n}"}) as answer:
            await answer.read()
            return answer.status, asyncio.get_running_loop().time() - started

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.CookieJar(unsafe=True)) as visitor, \
            aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()) as others:
        assert (await arrive(visitor, 1))[0] == 302  # a place (the room is empty: admitted at once)
        holder = await asyncio.to_thread(psycopg.connect, url)
        try:
            await asyncio.to_thread(holder.execute, f"SELECT 1 FROM {Queue._meta.db_table} WHERE id = %s FOR UPDATE",
                                    [queue_id])
            stuck = [asyncio.create_task(arrive(others, n)) for n in (2, 3)]
            await asyncio.sleep(1.0)  # both hold a public seat now, waiting on the row
            placed = asyncio.create_task(arrive(visitor, 1))
            new = await arrive(others, 4)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(holder.rollback)  # the row is free: the seats free up
            await asyncio.gather(*stuck)
            return new, await placed
        finally:
            await asyncio.to_thread(holder.close)
