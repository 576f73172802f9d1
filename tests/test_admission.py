"""The server's admission of HTTP requests (config/admission.py): at most so
many hold a thread; staff go first and keep a reserve; the rest are refused
once their wait runs out, without keeping a seat."""

from __future__ import annotations

import asyncio

import pytest

from config.admission import Admission, ahead_of_arrivals, has_credentials, holds_place

LONG = 60.0  # a wait that never runs out within a test


def run(coroutine):
    return asyncio.run(coroutine)


async def settle():
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_request_over_the_limit_waits_and_gets_the_seat_that_frees():
    async def scenario():
        gate = Admission(limit=2, reserve=0)
        assert await gate.enter(staff=False, wait=0)
        assert await gate.enter(staff=False, wait=0)
        third = asyncio.create_task(gate.enter(staff=False, wait=LONG))
        await settle()
        assert not third.done() and gate.waiting == 1
        gate.leave()
        assert await third is True
        return gate.inside, gate.waiting

    assert run(scenario()) == (2, 0)


def test_anonymous_requests_never_take_the_staff_reserve():
    async def scenario():
        gate = Admission(limit=3, reserve=1)
        public = [await gate.enter(staff=False, wait=0) for _ in range(3)]
        staff = await gate.enter(staff=True, wait=0)
        more_staff = await gate.enter(staff=True, wait=0)
        return public, staff, more_staff, gate.inside, gate.refused

    assert run(scenario()) == ([True, True, False], True, False, 3, 2)


def test_waiting_staff_go_before_anonymous_requests_that_came_first():
    async def scenario():
        gate = Admission(limit=2, reserve=0)
        await gate.enter(staff=False, wait=0)
        await gate.enter(staff=False, wait=0)
        order = []

        async def request(name, staff):
            if await gate.enter(staff=staff, wait=LONG):
                order.append(name)

        tasks = [asyncio.create_task(request("public 1", False))]
        await settle()
        tasks.append(asyncio.create_task(request("staff", True)))
        await settle()
        tasks.append(asyncio.create_task(request("public 2", False)))
        await settle()
        gate.leave()
        await settle()
        gate.leave()
        await settle()
        assert order == ["staff", "public 1"] and gate.waiting == 1
        gate.leave()
        await asyncio.gather(*tasks)
        return order

    assert run(scenario()) == ["staff", "public 1", "public 2"]


def test_a_request_whose_wait_runs_out_is_refused_and_holds_no_seat():
    async def scenario():
        gate = Admission(limit=1, reserve=0)
        await gate.enter(staff=False, wait=0)
        refused = await gate.enter(staff=False, wait=0.01)
        state = (gate.inside, gate.waiting, gate.refused)
        gate.leave()
        return refused, state, await gate.enter(staff=False, wait=0)

    assert run(scenario()) == (False, (1, 0, 1), True)


def test_a_request_given_up_by_its_client_while_waiting_leaves_no_seat_taken():
    async def scenario():
        gate = Admission(limit=1, reserve=0)
        await gate.enter(staff=False, wait=0)
        gone = asyncio.create_task(gate.enter(staff=False, wait=LONG))
        behind = asyncio.create_task(gate.enter(staff=False, wait=LONG))
        await settle()
        gate.leave()  # the seat goes to `gone`, whose client is leaving at the same moment
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert await behind is True  # the seat passed on
        return gate.inside, gate.waiting

    assert run(scenario()) == (1, 0)


def test_the_reserve_must_leave_seats_for_anonymous_requests():
    with pytest.raises(ValueError, match="reserve"):
        Admission(limit=2, reserve=2)


@pytest.mark.parametrize("headers, expected", [
    ([(b"authorization", b"Bearer qk_x")], True),
    ([(b"cookie", b"csrftoken=a; sessionid=" + b"k3" * 16)], True),
    ([(b"cookie", b"csrftoken=a; queue_browser=b; notsessionid=" + b"k3" * 16)], False),
    # not the shape of a session key: made up, never a login
    ([(b"cookie", b"csrftoken=a; sessionid=abc")], False),
    ([(b"cookie", b"sessionid=" + b"K3" * 16)], False),
    ([(b"cookie", b"sessionid=" + b"k3" * 17)], False),
    ([(b"accept", b"text/html")], False),
])
def test_credentials_are_an_authorization_header_or_the_session_cookie(headers, expected):
    assert has_credentials({"headers": headers}, "sessionid") is expected


def test_a_visitor_holding_a_place_goes_before_new_arrivals_but_never_into_the_staff_reserve():
    async def scenario():
        gate = Admission(limit=3, reserve=1)
        await gate.enter(staff=False, wait=0)
        await gate.enter(staff=False, wait=0)
        assert not await gate.enter(staff=False, placed=True, wait=0)  # the last seat is staff's
        order = []

        async def request(name, placed):
            if await gate.enter(staff=False, placed=placed, wait=LONG):
                order.append(name)

        tasks = [asyncio.create_task(request("new 1", False))]
        await settle()
        tasks.append(asyncio.create_task(request("placed", True)))
        await settle()
        gate.leave()
        await settle()
        assert order == ["placed"]
        gate.leave()
        await asyncio.gather(*tasks)
        return order

    assert run(scenario()) == ["placed", "new 1"]


@pytest.mark.django_db
def test_a_place_is_the_room_page_with_that_rooms_cookie_as_the_server_signed_it(location):
    from django.test import Client

    from queueapp.services.rooms import do_create_waiting_room

    for slug in ("concert", "other"):
        do_create_waiting_room(location=location, name=slug, slug=slug, prefix="W",
                               target_url="https://shop.example.com/", admit_per_minute=60, max_inside=1)
    browser = Client()
    browser.get("/wait/concert/?return=/buy", HTTP_X_FORWARDED_FOR="10.0.0.1")
    signed = browser.cookies["waitroom-concert"].value

    def scope(path, cookie):
        return {"path": path, "headers": [(b"cookie", cookie.encode())]}

    assert holds_place(scope("/wait/concert/", f"csrftoken=a; waitroom-concert={signed}"))
    assert not holds_place(scope("/wait/concert/", f"waitroom-concert={signed[:-2]}xx"))  # forged
    assert not holds_place(scope("/wait/other/", f"waitroom-other={signed}"))  # another room's
    assert not holds_place(scope("/wait/other/", f"waitroom-concert={signed}"))  # for another page
    assert not holds_place(scope("/api/queues", f"waitroom-concert={signed}"))
    assert not holds_place({"path": "/wait/concert/", "headers": [(b"accept", b"text/html")]})


def test_the_protected_sites_key_fetch_goes_before_new_arrivals():
    from django.urls import reverse

    # Refused under a crowd, the site could check no admitted visitor's token.
    assert ahead_of_arrivals({"path": reverse("jwks"), "headers": []})
    assert not ahead_of_arrivals({"path": "/wait/concert/", "headers": []})  # an arrival without a place
    assert not ahead_of_arrivals({"path": reverse("jwks") + "x", "headers": []})
