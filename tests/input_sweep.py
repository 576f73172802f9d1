"""The hostile-input sweep (issue 10): every URL pattern and every form field, tried
with hostile values: never a 5xx, never a partial write. The sweep is split by kind
of route into tests/test_input_sweep_{pages,api,admin}.py so that parallel test
workers share it; this module holds the values, the world and the sweep itself.

The URL map is walked (pages, the API and the admin), each route is requested
with GET and POST by an anonymous visitor, a superuser (who may reach every
page) and, for the API, a kiosk token; each hostile value goes in turn into
each path parameter, into every known form and query field, and into API JSON
bodies. Runs on the database of the test run (SQLite or PostgreSQL: PostgreSQL
is where a NUL byte or half a surrogate pair used to become a 500).
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from urllib.parse import quote

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from django.test import Client
from django.urls import URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

from queueapp.api.auth import issue_token
from queueapp.integrity import validate_queue_integrity
from queueapp.models import ApiToken, Booking, OpeningHours, Queue
from queueapp.services import do_book, do_call_next, do_join
from tests.bookings_support import make_schedule
from tests.conftest import make_counter, make_queue

def enc(text: str) -> str:
    """Percent-encoded UTF-8, surrogates kept as their (invalid) bytes."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


# Each value as it goes on the wire (percent-encoded).
HOSTILE = {
    "NUL": enc("\x00"),
    "NUL inside": enc("ab\x00cd"),
    "overlong": "A" * 5000,
    "superscript digit": enc("²"),
    "full-width digits": enc("１２"),
    "Arabic-Indic digits": enc("١٢"),
    "lone surrogate": enc("\ud800"),
    "invalid UTF-8": "%FF%FE",
    "SQL": enc("1' OR '1'='1; DROP TABLE queueapp_ticket; --"),
    "HTML": enc('<script>alert(1)</script>"\'>'),
    "huge number": "9" * 40,
    "float": "1e309",
    "path tricks": enc("../../etc/passwd"),
    "empty": "",
}
# The admin's pages share Django's code per kind of page: fewer values there keep the sweep short.
ADMIN_VALUES = ("NUL", "full-width digits", "lone surrogate", "SQL")
# /readyz answers 503 by design while a dependency is down (here: no live server runs).
MAY_BE_UNAVAILABLE = ("/readyz",)
# Every field name a page or query reads (forms.py, reports, stats, login, admin lists).
FIELDS = ["queue", "ticket", "action", "capacity", "start", "end", "location", "by", "format",
          "username", "password", "next", "q", "p", "o", "all", "e", "_changelist_filters",
          "status", "kind", "limit", "location_id", "csrfmiddlewaretoken",
          "starts_at", "day", "code", "booking", "priority", "note", "alert_contact", "alert_consent",
          "language", "lang", "state", "reason", "held", "held_ticket", "to_queue", "rating", "comment"]
API_BODIES = [
    '{"priority": NaN}', '{"capacity": 1e309}', '{"party_size": 123456789012345678901234567890}',
    '{"note": "\\ud800"}', '{"note": "a\\u0000b"}', '{"counter_id": "1"}', '{"to_queue": -1}',
    '{"queue_id": 9223372036854775808}', '{"to_front": "yes"}', "[]", "null", '"x"', "{", "",
    '{"starts_at": "9999-12-31T23:59:00+00:00"}', '{"code": "a\\u0000b"}',
    '{"state": "a\\u0000b"}', '{"state": "break", "reason": "\\u0661"}', '{"state": "closed", "held_ticket": "1"}',
    '{"state": "closed", "held": "transfer", "to_queue": 9223372036854775808}',
]


def routes():
    """(route, pattern) for every URL pattern, prefixes joined."""
    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            else:
                yield prefix + str(p.pattern), p

    return list(walk(get_resolver().url_patterns))


PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


@pytest.fixture
def world(location, other_location):
    general = make_queue(location, "General", "A")
    train = make_queue(location, "Train", "T", kind=Queue.Kind.CAPACITY, capacity=4, offer_seconds=600)
    desk = make_counter(location, "Desk 1", [general])
    tickets = [do_join(general) for _ in range(3)] + [do_join(train, party_size=2)
                                                            for _ in range(3)]
    do_call_next(counter=desk)
    # A booking that answers to the same token as the first ticket, so that the
    # booking pages' routes (b/<token>/...) reach a real booking with the valid token.
    make_schedule(general, hours=((time(0), time(23, 45)),))
    for weekday in (5, 6):
        OpeningHours.objects.create(schedule=general.booking_schedule, weekday=weekday, opens=time(0),
                                    closes=time(23, 45))
    start = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    Booking.objects.filter(pk=do_book(general, starts_at=start).pk).update(token=tickets[0].token)
    boss = get_user_model().objects.create_superuser("root", password="pw-root")
    kiosk_key = issue_token(location=location, kind=ApiToken.Kind.KIOSK, name="Kiosk")[1]
    valid = {"location_slug": location.slug, "counter_id": str(desk.pk), "queue_id": str(general.pk),
             "ticket_id": str(tickets[0].pk), "token": tickets[0].token, "object_id": str(general.pk),
             "content_type_id": "1", "id": str(boss.pk), "location_id": str(location.pk)}
    return {"valid": valid, "boss": boss, "kiosk_key": kiosk_key}


def fingerprint() -> tuple:
    """Row counts of every queueapp table and the users, and the sum of queue versions:
    one query, taken around every refused request."""
    tables = [m._meta.db_table for m in apps.get_app_config("queueapp").get_models()]
    tables.append(get_user_model()._meta.db_table)
    counts = ", ".join(f"(SELECT COUNT(*) FROM {t})" for t in tables)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts}, (SELECT SUM(version) FROM {Queue._meta.db_table})")
        return cursor.fetchone()


def concrete(route: str, valid: dict, override: tuple[str, str] | None = None) -> str | None:
    """The route with each parameter filled (one of them, maybe, with a hostile value)."""
    def fill(match):
        name = match["name"]
        if override and override[0] == name:
            return override[1]
        return valid.get(name, "1")

    return "/" + PARAM.sub(fill, route)


def kind_of(route: str) -> str:
    """Which part of the sweep a route belongs to: "admin", "api" or "pages"."""
    if route.startswith("admin/"):
        return "admin"
    if route.startswith("api/"):
        return "api"
    return "pages"


def sweep(world: dict, capsys, kind: str) -> int:
    """Every route of one kind with every hostile value; fails the test on a 5xx or a
    refused request that wrote. Returns how many requests were sent."""
    boss = Client(raise_request_exception=False)
    boss.force_login(world["boss"])
    callers = {"anonymous": Client(raise_request_exception=False), "superuser": boss}
    failures, sent = [], 0

    def send(who: str, method: str, path: str, *, body: str = "", content_type: str = "", headers=None):
        nonlocal sent
        client = callers[who]
        before = fingerprint() if method == "post" else None
        if method == "get":
            response = client.get(path, headers=headers or {})
        else:
            response = client.generic("POST", path, body.encode("latin-1", "ignore") if body else b"",
                                      content_type=content_type or "application/x-www-form-urlencoded",
                                      headers=headers or {})
        sent += 1
        if response.status_code == 503 and path.startswith(MAY_BE_UNAVAILABLE):
            pass
        elif response.status_code >= 500:
            failures.append(f"{who} {method.upper()} {path[:120]} {body[:80]!r} -> {response.status_code}")
        elif before is not None and response.status_code >= 400 and fingerprint() != before:
            failures.append(f"{who} {method.upper()} {path[:120]} {body[:80]!r} -> "
                            f"{response.status_code} but it wrote")

    for route, pattern in routes():
        if kind_of(route) != kind:
            continue
        if not isinstance(pattern.pattern, RoutePattern):
            paths = {"regex": ["/admin/queueapp/", "/admin/" + HOSTILE["NUL"] + "/"]}
        else:
            paths = {}
        is_admin = route.startswith("admin/")
        is_api = route.startswith("api/")
        values = {k: v for k, v in HOSTILE.items() if not is_admin or k in ADMIN_VALUES}
        base = concrete(route, world["valid"]) if isinstance(pattern.pattern, RoutePattern) else None
        whos = ["superuser"] if is_admin else ["anonymous", "superuser"]
        for label, value in values.items():
            targets = []
            if base is not None:
                query = "&".join(f"{f}={value}" for f in FIELDS)
                targets.append((f"{base}?{query}", "&".join(f"{f}={value}" for f in FIELDS)))
                for match in PARAM.finditer(route):
                    targets.append((concrete(route, world["valid"], (match["name"], value)), ""))
            for path in paths.get("regex", []):
                targets.append((path, ""))
            for who in whos:
                for path, form in targets:
                    send(who, "get", path)
                    send(who, "post", path, body=form)
        if is_api and base is not None:
            for raw in API_BODIES:
                send("superuser", "post", base, body=raw, content_type="application/json")
                send("anonymous", "post", base, body=raw, content_type="application/json",
                     headers={"Authorization": f"Bearer {world['kiosk_key']}"})
            send("superuser", "post", base, body="\xff\xfe", content_type="application/json")

    with capsys.disabled():
        print(f"\nhostile-input sweep of the {kind} routes: {sent} requests, {len(failures)} failures")
    assert failures == [], f"{len(failures)} of {sent} requests failed:\n" + "\n".join(failures[:40])
    assert validate_queue_integrity() == []  # what was done (a cancel by a good token) was done whole
    return sent
