"""The virtual waiting room: places, admission at a rate with a maximum inside,
release by the protected site or by expiry, tokens, and the abuse it refuses."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from django.utils import timezone

from queueapp import admission
from queueapp.integrity import validate_queue_integrity
from queueapp.models import Queue, QueueEvent, Ticket, TicketStatus
from queueapp.services import InvalidTransition
from queueapp.services.rooms import (
    PACE_SECONDS,
    do_create_waiting_room,
    do_enter_line,
    do_expire_admissions,
    do_issue_room_key,
    do_release_visitor,
    run_room_cycles,
)
from queueapp.views.rooms import cookie_name

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

Kind = QueueEvent.Kind


def make_room(location, slug="concert", rate=60, inside=2, lifetime=600):
    return do_create_waiting_room(location=location, name=f"Tickets {slug}", slug=slug, prefix="W",
                                  target_url="https://shop.example.com/", admit_per_minute=rate,
                                  max_inside=inside, admission_seconds=lifetime)


@pytest.fixture
def room(location):
    return make_room(location)


def statuses(room):
    return list(Ticket.objects.filter(queue_id=room.queue_id).order_by("pk").values_list("status", flat=True))


def test_admissions_are_spaced_at_the_rate_and_never_exceed_max_inside(room):
    t0 = timezone.now()
    first = do_enter_line(room, now=t0)
    assert first.status == TicketStatus.CONFIRMED  # an empty room lets the first in at once
    others = [do_enter_line(room, now=t0) for _ in range(4)]
    assert [t.status for t in others] == ["waiting"] * 4  # the next slot is a second away (60/min)
    assert run_room_cycles(now=t0 + timedelta(seconds=0.5)) == 0
    assert run_room_cycles(now=t0 + timedelta(seconds=1)) == 1
    # Two inside = the maximum: however long we wait, nobody else enters...
    assert run_room_cycles(now=t0 + timedelta(seconds=30)) == 0
    assert statuses(room) == ["confirmed", "confirmed", "waiting", "waiting", "waiting"]
    # ...until the site reports one done; the freed place goes at once (the slot is due).
    do_release_visitor(room, first.pk, outcome="done", now=t0 + timedelta(seconds=31))
    assert statuses(room) == ["completed", "confirmed", "confirmed", "waiting", "waiting"]
    queue = Queue.objects.get(pk=room.queue_id)
    assert queue.seats_taken == 2
    assert validate_queue_integrity(queue) == []


def test_an_idle_room_does_not_save_up_a_burst(location):
    room = make_room(location, rate=60, inside=50)
    t0 = timezone.now()
    for _ in range(20):
        do_enter_line(room, now=t0)
    # 100 s later only one slot is good (one a second), not 100.
    assert run_room_cycles(now=t0 + timedelta(seconds=100)) == 1
    assert run_room_cycles(now=t0 + timedelta(seconds=100.5)) == 0
    assert run_room_cycles(now=t0 + timedelta(seconds=101)) == 1


def admission_instants(room):
    return sorted(Ticket.objects.filter(queue_id=room.queue_id, confirmed_at__isnull=False)
                  .values_list("confirmed_at", flat=True))


def assert_no_window_above_the_rate(room, per_second):
    """Any `per_second + 1` admissions in a row span at least a second: no
    window of a second (half-open) holds more than the rate allows."""
    admitted = admission_instants(room)
    crowded = [(a, b) for a, b in zip(admitted, admitted[per_second:]) if b - a < timedelta(seconds=1)]
    assert crowded == [], f"{len(crowded)} windows of a second above {per_second}: first {crowded[:1]}"
    return admitted


def test_an_idle_room_then_a_crowd_admits_at_the_rate(location):
    # 600 a minute = 10 in any second. The room admitted its last visitor long
    # ago; then a crowd arrives (one every 6 ms) while the worker runs its cycle
    # at its pace: the kept slots must not add up to a burst.
    room = make_room(location, rate=600, inside=500)
    t0 = timezone.now()
    do_enter_line(room, now=t0 - timedelta(seconds=100))
    at = lambda seconds: t0 + timedelta(seconds=seconds)  # noqa: E731
    cycle = 0.0
    for i in range(300):
        arrival = i * 0.006
        while cycle <= arrival:
            run_room_cycles(now=at(cycle))
            cycle += PACE_SECONDS
        do_enter_line(room, now=at(arrival))
    while cycle < 3.0:
        run_room_cycles(now=at(cycle))
        cycle += PACE_SECONDS
    admitted = assert_no_window_above_the_rate(room, 10)
    # ...and at the full rate: 10 a second from the crowd's first arrival.
    assert len([a for a in admitted if a >= t0]) >= 30


def test_a_full_room_emptied_at_once_admits_at_the_rate(location):
    # The protected site reports all 30 inside done at the same instant after
    # the room was full for a while: the freed places go at the rate.
    room = make_room(location, rate=600, inside=30)
    t0 = timezone.now()
    at = lambda seconds: t0 + timedelta(seconds=seconds)  # noqa: E731
    for i in range(100):
        do_enter_line(room, now=at(i * 0.01))
    cycle = 0.0
    while cycle < 5.0:
        run_room_cycles(now=at(cycle))
        cycle += PACE_SECONDS
    inside = list(Ticket.objects.filter(queue_id=room.queue_id, status=TicketStatus.CONFIRMED).values_list("pk", flat=True))
    assert len(inside) == 30
    for pk in inside:
        do_release_visitor(room, pk, outcome="done", now=at(20))
    cycle = 20.0
    while cycle < 25.0:
        run_room_cycles(now=at(cycle))
        do_expire_admissions(now=at(cycle))
        cycle += PACE_SECONDS
    admitted = assert_no_window_above_the_rate(room, 10)
    assert len([a for a in admitted if a >= at(20)]) == 30  # the 30 freed places are filled again
    assert validate_queue_integrity(room.queue_id) == []


@pytest.mark.parametrize("gap", [PACE_SECONDS, 0.13, 0.37, 1.0])
def test_late_worker_cycles_still_admit_at_the_full_rate(location, gap):
    # 600 a minute = 10 a second, whatever the spacing of the worker's cycles
    # (it runs other jobs too; under load they come late): over 12 s, 120 slots
    # (+1, the one at t0), and never more than 10 in a second.
    room = make_room(location, rate=600, inside=500)
    t0 = timezone.now()
    for _ in range(200):
        do_enter_line(room, now=t0)
    admitted, elapsed = 1, 0.0  # the first was let in at once
    while elapsed + gap <= 12.0:
        elapsed += gap
        admitted += run_room_cycles(now=t0 + timedelta(seconds=elapsed))
    assert_no_window_above_the_rate(room, 10)
    if round(1 / gap, 6).is_integer():  # cycles that divide the second: every slot is used
        assert admitted == int(elapsed * 10 + 1e-9) + 1
    else:
        # Cycles that do not divide it lose what the window must refuse: n
        # cycles less than a second apart hold at most 10 together (0.37 s: 3
        # cycles, 10 per 1.11 s; 0.13 s: 8 cycles, 10 per 1.04 s).
        together = math.ceil(1 / gap)
        assert admitted >= int(elapsed * 10 / (together * gap))


def test_every_admission_and_release_is_an_event(room):
    t0 = timezone.now()
    a = do_enter_line(room, now=t0)
    b = do_enter_line(room, now=t0)
    run_room_cycles(now=t0 + timedelta(seconds=1))
    do_release_visitor(room, a.pk, outcome="done", now=t0 + timedelta(seconds=2))
    do_release_visitor(room, b.pk, outcome="abandoned", now=t0 + timedelta(seconds=2))
    kinds = list(QueueEvent.objects.filter(queue_id=room.queue_id).order_by("version")
                 .values_list("kind", "ticket_id"))
    assert kinds == [(Kind.JOINED, a.pk), (Kind.CONFIRMED, a.pk), (Kind.JOINED, b.pk),
                     (Kind.CONFIRMED, b.pk), (Kind.COMPLETED, a.pk), (Kind.CANCELLED, b.pk)]


def test_an_unreported_admission_frees_itself_when_it_expires(location):
    room = make_room(location, inside=1, lifetime=60)
    t0 = timezone.now()
    a = do_enter_line(room, now=t0)
    b = do_enter_line(room, now=t0)
    assert do_expire_admissions(now=t0 + timedelta(seconds=59)) == 0
    assert do_expire_admissions(now=t0 + timedelta(seconds=60)) == 1
    a.refresh_from_db(), b.refresh_from_db()
    assert (a.status, b.status) == (TicketStatus.EXPIRED, TicketStatus.CONFIRMED)
    event = QueueEvent.objects.filter(queue_id=room.queue_id, ticket=a).latest("version")
    assert (event.kind, event.data["reason"]) == (Kind.EXPIRED, "not reported")
    # Reporting it afterwards is refused: it is no longer inside.
    with pytest.raises(InvalidTransition, match="expired"):
        do_release_visitor(room, a.pk, outcome="done")
    assert validate_queue_integrity(room.queue_id) == []


def test_a_visitor_is_released_once(room):
    a = do_enter_line(room)
    do_release_visitor(room, a.pk, outcome="done")
    with pytest.raises(InvalidTransition, match="already reported done"):
        do_release_visitor(room, a.pk, outcome="abandoned")


def test_integrity_sees_an_inside_count_that_disagrees_with_admissions(room):
    do_enter_line(room)
    Queue.objects.filter(pk=room.queue_id).update(seats_taken=0)
    codes = {p.code for p in validate_queue_integrity(room.queue_id)}
    assert "room_inside_count" in codes


def test_integrity_sees_a_release_without_its_event(room):
    # The counts agree (nobody inside, seat counter 0), but the visitor left
    # without a release event: the events say one is still inside.
    visitor = do_enter_line(room)
    assert visitor.status == TicketStatus.CONFIRMED
    Ticket.objects.filter(pk=visitor.pk).update(status=TicketStatus.COMPLETED)
    Queue.objects.filter(pk=room.queue_id).update(seats_taken=0)
    problems = validate_queue_integrity(room.queue_id)
    assert "room_events" in {p.code for p in problems}
    assert "room_inside_count" not in {p.code for p in problems}


def test_staff_confirm_and_the_waitlist_cycle_never_bypass_the_rate(room):
    from queueapp.services import InvalidInput, do_confirm_waitlist, run_waitlist_cycles

    t0 = timezone.now()
    do_enter_line(room, now=t0)
    do_enter_line(room, now=t0)
    assert run_waitlist_cycles() == 0
    with pytest.raises(InvalidInput, match="own rate"):
        do_confirm_waitlist(room.queue_id)


def test_staff_cannot_move_a_visitor_to_the_front_of_a_room(location):
    from queueapp.services import InvalidInput, do_move_to_front

    room = make_room(location, inside=1)
    t0 = timezone.now()
    inside = do_enter_line(room, now=t0)
    first, last = do_enter_line(room, now=t0), do_enter_line(room, now=t0)
    with pytest.raises(InvalidInput, match="own rate"):
        do_move_to_front(last)
    assert inside.status == TicketStatus.CONFIRMED
    do_release_visitor(room, inside.pk, outcome="done", now=t0 + timedelta(seconds=5))
    first.refresh_from_db(), last.refresh_from_db()
    assert (first.status, last.status) == (TicketStatus.CONFIRMED, TicketStatus.WAITING)  # arrival order


# --- the page ------------------------------------------------------------------

def test_reloads_and_tabs_keep_one_place_and_a_forged_cookie_gets_none(client, room):
    Queue.objects.filter(pk=room.queue_id).update(capacity=0, seats_taken=0)  # nobody gets in
    page = client.get("/wait/concert/?return=/checkout?event=12")
    assert page.status_code == 200
    assert b"You are <strong class=\"position-number\">1</strong>st in line" in page.content
    assert client.get("/wait/concert/").status_code == 200  # a reload, a second tab
    assert client.get("/wait/concert/?return=/other").status_code == 200
    assert Ticket.objects.filter(queue_id=room.queue_id).count() == 1
    client.cookies[cookie_name(room)] = json.dumps({"t": "x" * 22, "r": "/"})  # unsigned: ignored
    client.get("/wait/concert/")
    assert Ticket.objects.filter(queue_id=room.queue_id).count() == 2


def test_each_page_from_the_shared_shell_is_its_visitors_own_in_its_language(room):
    """The page is one cached shell per room and language with each visitor's
    place, socket token and CSRF token put in: nothing of another visitor's page
    shows, and the fragment is exactly what the live socket would push."""
    from django.test import Client
    from django.utils import translation

    from queueapp.live import reads, render

    Queue.objects.filter(pk=room.queue_id).update(capacity=0, seats_taken=0)  # nobody gets in
    pages = []
    for address, language in [("10.0.0.1", "de"), ("10.0.0.2", "de"), ("10.0.0.3", "es")]:
        visitor = Client(REMOTE_ADDR=address, HTTP_ACCEPT_LANGUAGE=language)
        answer = visitor.get("/wait/concert/")
        assert answer.status_code == 200
        pages.append((answer.content.decode(), visitor.cookies["csrftoken"].value, language))
    tickets = list(Ticket.objects.filter(queue_id=room.queue_id).order_by("seq"))
    for place, (ticket, (html, csrf_cookie, language)) in enumerate(zip(tickets, pages), start=1):
        assert f'hx-ws:connect="/ws/ticket/{ticket.token}/"' in html
        assert sum(t.token in html for t in tickets) == 1  # no other visitor's token
        assert "__WAIT_" not in html
        assert f'<html lang="{language}"' in html
        token = html.split('"X-CSRFToken": "')[1].split('"')[0]
        assert len(token) == 64  # a masked token of this visitor's own secret (its cookie)
        assert csrf_cookie
        view = reads.ticket_view(ticket.token)
        view.language = language
        assert view.position == place
        with translation.override(language):
            assert render.ticket_status(view) in html  # the first paint is the live frame
    assert all("Keep this page open" not in html for html, _, _ in pages)  # German and Spanish, not English
    assert len({html.split('"X-CSRFToken": "')[1][:64] for html, _, _ in pages}) == 3


def test_an_arrivals_page_shows_the_place_and_pace_its_socket_reads(room):
    """An arrival's page takes its place and the room's recent stays from the
    arrival's own read (on PostgreSQL sent with its place statement), a reload
    from the ordinary reads: both equal the live socket's first view, here with
    stays long enough to set the room's pace (10 minutes a place with no place
    inside counted, not the rate's second)."""
    from django.test import Client

    from queueapp.live import reads, render

    inside = [do_enter_line(room, now=timezone.now() - timedelta(seconds=5 * i)) for i in range(2)]
    run_room_cycles(now=timezone.now() + timedelta(seconds=5))
    for ticket in inside:
        Ticket.objects.filter(pk=ticket.pk).update(confirmed_at=timezone.now() - timedelta(minutes=10))
        do_release_visitor(room, ticket.pk, outcome="done")
    Queue.objects.filter(pk=room.queue_id).update(capacity=0, seats_taken=0)  # nobody gets in
    visitors = [Client(REMOTE_ADDR=f"10.0.1.{n}") for n in range(3)]
    firsts = [visitor.get("/wait/concert/").content.decode() for visitor in visitors]
    reloads = [visitor.get("/wait/concert/").content.decode() for visitor in visitors]
    waiting = list(Ticket.objects.filter(queue_id=room.queue_id, status=TicketStatus.WAITING).order_by("seq"))
    assert len(waiting) == 3
    for place, (ticket, first, reload) in enumerate(zip(waiting, firsts, reloads), start=1):
        view = reads.ticket_view(ticket.token)
        assert (view.position, round(view.service_seconds)) == (place, 600)  # 10 min stays
        assert render.ticket_status(view) in first
        assert render.ticket_status(view) in reload
    assert "about 25 min" in firsts[2]  # 2.5 places ahead at 10 minutes each


def test_nobody_joins_a_room_but_through_its_page(room, staff):
    """A room admits at its rate only and its visitors share one priority (its
    pages read no "placed ahead"): a join, even by staff with a priority, is refused."""
    from queueapp.services import InvalidInput, do_join

    with pytest.raises(InvalidInput, match="is a waiting room"):
        do_join(room.queue_id, priority=20, acting_user=staff)
    assert not Ticket.objects.filter(queue_id=room.queue_id).exists()


def test_an_admitted_visitor_is_redirected_with_a_token_for_this_room(client, room):
    answer = client.get("/wait/concert/?return=/checkout?event=12")
    assert answer.status_code == 302
    url = urlsplit(answer["Location"])
    assert (url.scheme, url.netloc, url.path) == ("https", "shop.example.com", "/checkout")
    query = parse_qs(url.query)
    assert query["event"] == ["12"]
    token = query["queue_token"][0]
    keys = jwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").json())
    kid = jwt.get_unverified_header(token)["kid"]
    claims = jwt.decode(token, keys[kid].key, algorithms=["EdDSA"], audience="concert", issuer="queueapp")
    visitor = Ticket.objects.get(queue_id=room.queue_id)
    assert claims["sub"] == str(visitor.pk) and claims["room"] == "concert"
    # exp rounded up to the second (iat down): never before the admission ends, less than a second after
    ends = (visitor.confirmed_at + timedelta(seconds=room.admission_seconds)).timestamp()
    assert ends <= claims["exp"] < ends + 1
    assert client.get("/wait/concert/").status_code == 302  # the same admission again


def test_a_token_never_expires_before_its_admission(room):
    """JWT times are whole seconds: an admission made at x.9 s must not get a token
    that a site refuses 0.9 s before the admission ends (it was rounded down)."""
    visitor = do_enter_line(room)
    made = visitor.confirmed_at.replace(microsecond=900_000)
    Ticket.objects.filter(pk=visitor.pk).update(confirmed_at=made)
    visitor.refresh_from_db()
    claims = jwt.decode(admission.issue(room, visitor), options={"verify_signature": False})
    assert claims["exp"] >= (made + timedelta(seconds=room.admission_seconds)).timestamp()


@pytest.mark.parametrize("left", [admission.TOKEN_MIN_SECONDS - 0.5, 0.2, -3])
def test_an_admission_too_short_to_reach_the_site_gets_no_token_but_says_it_ended(client, location, left):
    """A visitor coming for the token with less than TOKEN_MIN_SECONDS of the
    admission left (or none, the worker not yet there) is not sent to the site
    with a token it would refuse: the admission ends now (an event), the page
    says it expired and offers to join again, and the place goes to the next."""
    room = make_room(location, inside=1, lifetime=60)
    assert client.get("/wait/concert/?return=/buy").status_code == 302  # admitted at once
    visitor = Ticket.objects.get(queue_id=room.queue_id)
    nxt = do_enter_line(room)
    Ticket.objects.filter(pk=visitor.pk).update(
        confirmed_at=timezone.now() - timedelta(seconds=room.admission_seconds - left))
    answer = client.get("/wait/concert/")
    assert answer.status_code == 200
    page = answer.content.decode()
    assert "queue_token" not in page and 'data-status="expired"' in page
    assert "the admission expired" in page and 'http-equiv="refresh"' not in page  # no automatic rejoin
    run_room_cycles(now=timezone.now() + timedelta(seconds=2))  # (the rate's next slot)
    visitor.refresh_from_db(), nxt.refresh_from_db()
    assert (visitor.status, nxt.status) == (TicketStatus.EXPIRED, TicketStatus.CONFIRMED)
    event = QueueEvent.objects.filter(queue_id=room.queue_id, ticket=visitor).latest("version")
    assert (event.kind, event.data["reason"]) == (Kind.EXPIRED, "too late to enter")
    # The link to join again gives a new place (not the ended admission again).
    again = client.get("/wait/concert/")
    assert again.status_code == 200 and 'data-status="waiting"' in again.content.decode()
    assert validate_queue_integrity(room.queue_id) == []


def test_an_admission_with_enough_time_left_still_gets_its_token(client, location):
    room = make_room(location, inside=1, lifetime=60)
    assert client.get("/wait/concert/?return=/buy").status_code == 302
    visitor = Ticket.objects.get(queue_id=room.queue_id)
    Ticket.objects.filter(pk=visitor.pk).update(
        confirmed_at=timezone.now() - timedelta(seconds=room.admission_seconds - admission.TOKEN_MIN_SECONDS - 2))
    assert client.get("/wait/concert/").status_code == 302


@pytest.mark.parametrize("bad", ["https://evil.example/", "//evil.example/x", "/\\evil", "checkout", "/a\nb"])
def test_a_return_that_could_leave_the_site_is_refused(client, room, bad):
    answer = client.get("/wait/concert/", {"return": bad})
    assert answer.status_code == 400
    assert b"return must be a path" in answer.content
    assert not Ticket.objects.exists()


def test_new_places_are_rate_limited_per_client(client, room, settings):
    settings.TICKET_RATE_LIMITS = {**settings.TICKET_RATE_LIMITS, "wait": (2, 60)}
    from django.core.cache import cache

    cache.clear()
    for _ in range(2):
        client.cookies.clear()
        assert client.get("/wait/concert/").status_code in (200, 302)
    client.cookies.clear()
    answer = client.get("/wait/concert/")
    assert answer.status_code == 429 and answer["Retry-After"]


def test_rotated_keys_stay_published_until_their_tokens_expire(room):
    old = admission.signing_key()
    new = admission.rotate()
    kids = {k["kid"] for k in admission.jwks()["keys"]}
    assert kids == {old.kid, new.kid}
    later = timezone.now() + timedelta(seconds=room.admission_seconds + 61)
    assert {k["kid"] for k in admission.jwks(later)["keys"]} == {new.kid}
    assert admission.signing_key() == new


# --- the API of the protected site ------------------------------------------------

def _release(client, room_slug, visitor, key, outcome="done"):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.post(f"/api/rooms/{room_slug}/visitors/{visitor}/release", {"outcome": outcome},
                       content_type="application/json", headers=headers)


def test_the_site_reports_with_its_room_key_only(client, location, room):
    other = make_room(location, slug="museum")
    key, other_key = do_issue_room_key(room), do_issue_room_key(other)
    visitor = do_enter_line(room)
    assert _release(client, "concert", visitor.pk, None).status_code == 401
    assert _release(client, "concert", visitor.pk, other_key).status_code == 403
    assert _release(client, "concert", visitor.pk, "qr_guess").status_code == 403
    bad = _release(client, "concert", visitor.pk, key, outcome="finished")
    assert bad.status_code == 400 and bad.json()["field"] == "outcome"
    assert _release(client, "concert", 10**6, key).status_code == 404
    ok = _release(client, "concert", visitor.pk, key)
    assert ok.status_code == 200 and ok.json()["status"] == "completed" and ok.json()["inside"] == 0
    again = _release(client, "concert", visitor.pk, key)
    assert again.status_code == 409
    # Another room's visitor cannot be released with this room's key either.
    stranger = do_enter_line(other)
    assert _release(client, "concert", stranger.pk, key).status_code == 404


def test_the_command_creates_a_room_and_prints_its_key_once(location, capsys):
    from django.core.management import call_command

    call_command("create_waiting_room", "--location", location.slug, "--slug", "expo", "--name", "Expo",
                 "--target", "https://shop.example.com/", "--rate", "120", "--max-inside", "30")
    key = capsys.readouterr().out.strip()
    from queueapp.models import WaitingRoom
    from queueapp.services.rooms import room_key_matches

    room = WaitingRoom.objects.get(slug="expo")
    assert (room.max_inside, room.admit_per_minute) == (30, 120) and room_key_matches(room, key)


@pytest.mark.parametrize("changes, field", [({"slug": "bad slug"}, "slug"), ({"target_url": "javascript:x"}, "target_url"),
                                            ({"slug": "concert"}, "slug"), ({"prefix": "w!"}, "prefix"),
                                            ({"admit_per_minute": 0}, "admit_per_minute")])
def test_a_room_with_bad_settings_is_refused_naming_the_field(location, room, changes, field):
    from queueapp.services import InvalidInput

    settings = {"location": location, "name": "Other", "slug": "other", "prefix": "W",
                "target_url": "https://shop.example.com/", "admit_per_minute": 60, "max_inside": 5, **changes}
    with pytest.raises(InvalidInput) as refused:
        do_create_waiting_room(**settings)
    assert refused.value.field == field


@pytest.mark.parametrize("numbers_before", [0, 998, 12345])
def test_an_arrival_writes_the_ticket_and_event_any_other_join_would(room, numbers_before):
    # PostgreSQL writes the arrival in one statement (services.rooms._TAKE_IN_ONE): its
    # event must be what record_event writes, so screens, webhooks and replay agree.
    from queueapp.events import instant_us, ticket_snapshot

    Queue.objects.filter(pk=room.queue_id).update(last_number=numbers_before,
                                                  number_day=room.queue.location.business_day())
    do_enter_line(room)  # the first is let in at once
    arrival = do_enter_line(room)
    ticket = Ticket.objects.select_related("queue").get(pk=arrival.pk)
    assert (ticket.status, ticket.number, ticket.token) == ("waiting", numbers_before + 2, arrival.token)
    event = QueueEvent.objects.get(ticket=ticket)
    assert (event.kind, event.status_after) == (Kind.JOINED, "waiting")
    assert event.data == {"entered": [ticket.priority, ticket.seq], "entered_at": instant_us(ticket.queued_at),
                          "ticket": ticket_snapshot(ticket)}
    assert event.version == Queue.objects.get(pk=room.queue_id).version
    if numbers_before == 0:  # (otherwise the numbers skipped here are a gap it reports)
        assert validate_queue_integrity(room.queue_id) == []


def test_a_paused_or_full_room_refuses_an_arrival_and_writes_nothing(room):
    from queueapp.services import QueueFull, QueuePaused

    do_enter_line(room)
    Queue.objects.filter(pk=room.queue_id).update(is_paused=True)
    before = (Ticket.objects.count(), QueueEvent.objects.count(), Queue.objects.get(pk=room.queue_id).version)
    with pytest.raises(QueuePaused):
        do_enter_line(room)
    Queue.objects.filter(pk=room.queue_id).update(is_paused=False, max_waiting=1)
    assert do_enter_line(room).status == "waiting"  # the next slot is a second away
    with pytest.raises(QueueFull):
        do_enter_line(room)  # one waiting is the most
    after = (Ticket.objects.count(), QueueEvent.objects.count())
    assert after[0] == before[0] + 1 and Queue.objects.get(pk=room.queue_id).version == before[2] + after[1] - before[1]
    assert validate_queue_integrity(room.queue_id) == []


@pytest.mark.parametrize("event_types, wanted", [([], True), (["called"], False), (["joined"], True)])
def test_an_arrival_reaches_the_webhooks_that_want_joins_only(room, event_types, wanted):
    """An arrival's place statement checks the location's endpoints itself (on
    PostgreSQL it takes no place while one is active, then the endpoints are
    read): an endpoint that wants joins gets each arrival, one that does not,
    none; the place and the page's position are the same either way."""
    from django.test import Client

    from queueapp.alerts.models import OutboxMessage, WebhookEndpoint

    Queue.objects.filter(pk=room.queue_id).update(capacity=0, seats_taken=0)  # nobody gets in
    endpoint = WebhookEndpoint.objects.create(location=room.queue.location, url="http://127.0.0.1:9/hook",
                                              event_types=event_types)
    answers = [Client(REMOTE_ADDR=f"10.0.2.{n}").get("/wait/concert/") for n in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert b"<strong class=\"position-number\">2</strong>" in answers[1].content
    joins = Ticket.objects.filter(queue_id=room.queue_id, status=TicketStatus.WAITING)
    assert joins.count() == 2
    assert OutboxMessage.objects.filter(endpoint=endpoint, subject=Kind.JOINED).count() == (2 if wanted else 0)
    assert validate_queue_integrity(room.queue_id) == []


def test_an_admissions_event_is_stamped_with_the_instant_the_rate_judged_it_at(room):
    """The rate holds at the instant an admission is decided (its ticket's
    `confirmed_at`, the token's `iat`); its event must say the same instant, or
    the events of a busy server (written up to 1.8 s later) show a second with
    more admissions than the rate allows."""
    at = timezone.now() - timedelta(minutes=5)
    ticket = do_enter_line(room, now=at)  # a place free, no slot taken yet: let in on arriving
    ticket.refresh_from_db()
    event = QueueEvent.objects.get(ticket=ticket, kind=QueueEvent.Kind.CONFIRMED)
    assert ticket.status == TicketStatus.CONFIRMED and ticket.confirmed_at == at
    assert event.created_at == at
