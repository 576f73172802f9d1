"""The staff waitlist board: the console's design, live over its WebSocket, per-row
actions, what *Confirm the waitlist* will do, and the effect of a capacity change."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.test import Client

from queueapp.live import hub
from queueapp.models import Queue, QueueEvent, Ticket, TicketStatus
from queueapp.services import do_confirm_waitlist, do_join
from queueapp.waitlist_board import confirm_preview
from tests.conftest import make_queue
from tests.live_helpers import ORIGIN, next_frame, screen

S = TicketStatus
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def train(location):
    return make_queue(location, "Train 101", "T", kind=Queue.Kind.CAPACITY, capacity=6)


def _numbers(queue, status):
    return list(Ticket.objects.filter(queue=queue, status=status).order_by("-priority", "seq")
                .values_list("number", flat=True))


@pytest.mark.django_db
def test_the_board_is_in_the_console_design_live_and_linked_from_the_console(client, staff, train):
    client.force_login(staff)
    page = client.get(f"/waitlist/{train.pk}/").content.decode()
    assert 'class="topbar"' in page and "app.css" in page  # the console's layout
    assert f'hx-ws:connect="/ws/waitlist/{train.pk}/"' in page
    assert ">Refresh<" not in page
    home = client.get("/console/").content.decode()
    assert f'href="/waitlist/{train.pk}/"' in home


@pytest.mark.django_db
@pytest.mark.parametrize("allow_skip", [False, True])
def test_confirm_says_what_it_will_do_and_then_does_exactly_that(location, allow_skip):
    queue = make_queue(location, "Tables", "R", kind=Queue.Kind.CAPACITY, capacity=8, allow_skip=allow_skip,
                       batch_size=10)  # only the button admits
    for size in (5, 4, 2, 1, 1):
        do_join(queue, party_size=size)
    queue.refresh_from_db()
    if allow_skip:  # 5 fits; 4 does not fit the 3 left; 2 and 1 do
        assert confirm_preview(queue) == "Confirms R-001, R-003 and R-004: 8 seats."
        expected = ["R-001", "R-003", "R-004"]
    else:  # strict order stops at the head that does not fit
        assert confirm_preview(queue) == "Confirms R-001: 5 seats."
        expected = ["R-001"]
    admitted = do_confirm_waitlist(queue)
    assert [t.display_number for t in admitted] == expected
    queue.refresh_from_db()
    if not allow_skip:
        assert confirm_preview(queue) == "Nobody now: R-002 needs 4 seats, 3 free."


@pytest.mark.django_db
def test_row_actions_without_javascript(client, staff, location):
    queue = make_queue(location, "Show", "S", kind=Queue.Kind.CAPACITY, capacity=4, offer_seconds=600)
    do_join(queue, party_size=4)  # offered: all seats held
    a, b, c = (do_join(queue, party_size=2) for _ in range(3))
    client.force_login(staff)
    url = f"/waitlist/{queue.pk}/row"
    full = client.post(url, {"action": "confirm", "ticket": a.pk})
    assert full.status_code == 409 and "needs 2 seats and only 0 are free" in full.content.decode()
    moved = client.post(url, {"action": "front", "ticket": c.pk})
    assert moved.status_code == 302
    assert "S-004 is now first in line." in client.get(moved.url).content.decode()
    offered = Ticket.objects.get(queue=queue, number=1)
    cancelled = client.post(url, {"action": "cancel", "ticket": offered.pk})
    assert "Cancelled S-001: 4 seats free again." in client.get(cancelled.url).content.decode()
    # The freed seats went to the new head (S-004) and the next (S-002), as offers.
    assert sorted(_numbers(queue, S.OFFERED)) == [2, 4]
    d = do_join(queue, party_size=1)
    bad = client.post(url, {"action": "teleport", "ticket": d.pk})
    assert bad.status_code == 400 and 'data-field="action"' in bad.content.decode()
    assert client.post(url, {"action": "offer", "ticket": "x"}).status_code == 400


@pytest.mark.django_db
def test_confirm_now_and_offer_from_a_row_with_htmx(client, staff, location):
    queue = make_queue(location, "Show", "S", kind=Queue.Kind.CAPACITY, capacity=3, offer_seconds=600,
                       max_open_offers=1)
    first = do_join(queue, party_size=3)
    second = do_join(queue, party_size=1)
    client.force_login(staff)
    client.post(f"/waitlist/{queue.pk}/row", {"action": "cancel", "ticket": first.pk})
    second.refresh_from_db()
    assert second.status == S.OFFERED  # the admission cycle offered it
    third = do_join(queue, party_size=2)
    answer = client.post(f"/waitlist/{queue.pk}/row", {"action": "confirm", "ticket": third.pk}, **HTMX)
    html = answer.content.decode()
    assert answer.status_code == 200 and "Confirmed S-003 (2 seats)." in html
    assert '<hx-partial hx-target="#waitlist-board"' in html
    third.refresh_from_db()
    assert third.status == S.CONFIRMED and third.offer_expires_at is None
    event = QueueEvent.objects.filter(ticket=third).latest("version")
    assert (event.kind, event.actor) == ("confirmed", staff)


@pytest.mark.django_db
def test_a_capacity_change_says_its_effect(client, manager, staff, train):
    do_join(train, party_size=6)
    do_join(train, party_size=2)
    do_join(train, party_size=3)
    client.force_login(staff)
    assert client.post(f"/waitlist/{train.pk}/capacity", {"capacity": "9"}).status_code == 403
    client.force_login(manager)
    answer = client.post(f"/waitlist/{train.pk}/capacity", {"capacity": "9"}, **HTMX)
    assert "Capacity 6 → 9 seats; 1 free now. Confirmed T-002 (2 seats)." in answer.content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_board_follows_changes_over_its_websocket(train, staff, other_staff):
    do_join(train, party_size=6)
    client = Client()
    client.force_login(staff)
    cookie = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    stranger = Client()
    stranger.force_login(other_staff)
    other = (b"cookie", f"sessionid={stranger.cookies['sessionid'].value}".encode())

    async def scenario():
        try:
            for headers, code in (([ORIGIN], 4401), ([ORIGIN, other], 4403)):
                async with screen(f"/ws/waitlist/{train.pk}/", headers=headers) as (comm, connected, _):
                    assert connected  # accepted, then closed with the reason (daphne shows the code)
                    assert (await comm.receive_output(timeout=5))["code"] == code
            async with screen(f"/ws/waitlist/{train.pk}/", headers=[ORIGIN, cookie]) as (comm, connected, _):
                assert connected
                board = await next_frame(comm, contains='id="waitlist-board"')
                assert 'data-testid="waiting-count">0<' in board
                await database_sync_to_async(do_join)(train, party_size=2)
                board = await next_frame(comm, contains='data-testid="waiting-count">1<')
                assert "T-002" in board and "No seat is free: T-002 and the others wait." in board
        finally:
            await hub.close_current()

    async_to_sync(scenario)()
