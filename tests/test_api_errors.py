"""Every API error case answers with its status code, code, field and a message a
person understands, and writes nothing (issue 2, "must show")."""

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from queueapp.api.auth import issue_token
from queueapp.models import ApiToken, OpeningHours, QueueEvent, Ticket
from queueapp.services import do_book, do_call_next, do_call_ticket, do_join, do_pause, do_set_counter_state
from tests.api_support import Api, as_staff, fast_password_hashing  # noqa: F401 (fixtures)
from tests.bookings_support import make_schedule
from tests.conftest import make_counter, make_queue, make_user

pytestmark = pytest.mark.django_db
HUGE = 2**70


@dataclass
class Scene:
    """One clinic in the states the error cases need, plus a second location."""

    queue: object
    paused: object
    full: object
    counter: object
    busy_counter: object
    idle_counter: object
    waiting: object
    called: object
    elsewhere: object
    callers: dict
    past: object = None  # a dated waitlist whose date has passed
    texts: dict = None  # "{name}" in paths and bodies for what is not an id (a slot, a booking's token)
    break_counter: object = None  # serves General, on a lunch break


@pytest.fixture
def scene(location, other_location, staff, manager, other_staff):
    queue = make_queue(location, "General", "A")
    paused = make_queue(location, "Pharmacy", "P")
    full = make_queue(location, "Lab", "L", max_waiting=1)
    counter = make_counter(location, "Counter 1", [queue, paused])
    busy_counter = make_counter(location, "Counter 2", [queue])
    idle_counter = make_counter(location, "Desk 9", [])
    elsewhere = make_queue(other_location, "Elsewhere", "E")
    waiting = do_join(queue)
    called = do_join(queue)
    do_call_ticket(called, counter=busy_counter)
    do_join(full)
    do_pause(paused)
    inactive = make_user("dora", location, is_active=False)
    callers = {
        "staff": Api(user=staff),
        "manager": Api(user=manager),
        "other_staff": Api(user=other_staff),
        "anonymous": Api(),
        "kiosk": Api(key=issue_token(location=location, kind=ApiToken.Kind.KIOSK, name="Door")[1]),
        "bad_token": Api(key="qk_not-a-real-key"),
        "inactive_token": Api(key=issue_token(location=location, kind=ApiToken.Kind.STAFF,
                                              name="Old", user=inactive)[1]),
        "staff_csrf": Api(user=staff, enforce_csrf=True),
    }
    past = make_queue(location, "Train 99", "T", kind="capacity", capacity=4,
                      service_date=location.business_day() - timedelta(days=1))
    # Appointments on General: one place per slot; tomorrow 10:00 is taken.
    make_schedule(queue, per_slot=1, hours=((time(0), time(23, 45)),))
    for weekday in (5, 6):
        OpeningHours.objects.create(schedule=queue.booking_schedule, weekday=weekday, opens=time(0),
                                    closes=time(23, 45))
    taken = datetime.combine(location.business_day() + timedelta(days=1), time(10), ZoneInfo(location.timezone))
    booking = do_book(queue, starts_at=taken)
    texts = {"taken_slot": taken.isoformat(), "booking_token": booking.token}
    break_counter = make_counter(location, "Desk 5", [queue])
    do_set_counter_state(break_counter, state="break", reason="lunch")
    return Scene(queue, paused, full, counter, busy_counter, idle_counter, waiting, called,
                 elsewhere, callers, past, texts, break_counter)


# (id, caller, method, path template, body (a dict) or raw body (str, bytes),
#  status, code, field, start of the message)
CASES = [
    # Bad input: 400 naming the field.
    ("bad priority", "staff", "post", "/queues/{queue}/tickets", {"priority": 7}, 400, "invalid",
     "priority", "priority: must be one of 0 (normal), 10 (high), 20 (urgent)."),
    ("bad party size", "staff", "post", "/queues/{queue}/tickets", {"party_size": 2}, 400, "invalid",
     "party_size", "A counter queue serves one person per ticket; party size must be 1."),
    ("party size zero", "staff", "post", "/queues/{queue}/tickets", {"party_size": 0}, 400, "invalid",
     "party_size", "party_size: must be at least 1."),
    ("priority of the wrong type", "staff", "post", "/queues/{queue}/tickets", {"priority": "high"},
     400, "invalid", "priority", "priority: must be a whole number."),
    ("number given as a string", "staff", "post", "/queues/{queue}/tickets", {"priority": "10"},
     400, "invalid", "priority", "priority: must be a whole number."),
    ("boolean of the wrong type", "staff", "post", "/tickets/{waiting}/transfer",
     {"to_queue": "{full}", "to_front": "yes"}, 400, "invalid", "to_front",
     "to_front: must be true or false."),
    ("misspelt field", "staff", "post", "/queues/{queue}/tickets", {"priorty": 10}, 400, "invalid",
     "priorty", "priorty: is not a field of this request."),
    ("missing field", "staff", "post", "/tickets/{waiting}/call", {}, 400, "invalid", "counter_id",
     "counter_id: is required."),
    ("missing body", "staff", "post", "/tickets/{waiting}/call", None, 400, "invalid", "body",
     "body: is required."),
    ("malformed JSON", "staff", "post", "/queues/{queue}/tickets", "{priority: 10", 400, "invalid",
     "body", "The request body is not valid JSON (Expecting property name enclosed in double quotes"),
    ("body that is not UTF-8", "staff", "post", "/queues/{queue}/tickets", b'{"note": "\xff"}', 400,
     "invalid", "body", "The request body is not valid JSON ('utf-8' codec can't decode byte 0xff"),
    ("body too large", "staff", "post", "/queues/{queue}/tickets", '{"note": "' + "x" * 3_000_000 + '"}',
     413, "too_large", "body", "The request body is larger than 2621440 bytes."),
    ("note too long", "staff", "post", "/queues/{queue}/tickets", {"note": "x" * 201}, 400, "invalid",
     "note", "note: must have at most 200 characters."),
    ("JSON that is not an object", "staff", "post", "/queues/{queue}/tickets", "[10]", 400,
     "invalid", "body", "body: must be a JSON object."),
    ("note with a control character", "staff", "post", "/queues/{queue}/tickets", {"note": "a\u0000b"},
     400, "invalid", "note", "note: must not contain control characters."),
    ("id that is not a number", "staff", "post", "/tickets/abc/recall", None, 400, "invalid",
     "ticket_id", "ticket_id: must be a whole number"),
    ("id beyond 64 bits", "staff", "post", f"/tickets/{HUGE}/recall", None, 400, "invalid",
     "ticket_id", "ticket_id: must be at most 9223372036854775807."),
    ("id beyond 64 bits in the body", "staff", "post", "/tickets/{waiting}/call", {"counter_id": HUGE},
     400, "invalid", "counter_id", "counter_id: must be at most"),
    ("limit out of range", "staff", "get", "/queues/{queue}/waiting?limit=0", None, 400, "invalid",
     "limit", "limit: must be at least 1."),
    ("counter does not serve the ticket's queue", "staff", "post", "/tickets/{waiting}/call",
     {"counter_id": "{idle_counter}"}, 400, "invalid", "counter_id", "Desk 9 does not serve General."),
    ("call next from a queue the counter does not serve", "staff", "post",
     "/counters/{counter}/call-next", {"queue_id": "{full}"}, 400, "invalid", "queue_id",
     "This counter does not serve that queue."),
    ("call next at a counter without queues", "staff", "post", "/counters/{idle_counter}/call-next",
     None, 400, "invalid", "counter_id", "This counter serves no queue yet"),
    ("transfer to its own queue", "staff", "post", "/tickets/{waiting}/transfer",
     {"to_queue": "{queue}"}, 400, "invalid", "to_queue", "The ticket is already in that queue."),
    # Unknown things: 404.
    ("unknown queue", "staff", "post", "/queues/999999/tickets", {}, 404, "not_found", None,
     "Queue 999999 does not exist."),
    ("unknown ticket", "staff", "post", "/tickets/999999/complete", None, 404, "not_found", None,
     "Ticket 999999 does not exist."),
    ("unknown counter", "staff", "post", "/counters/999999/call-next", None, 404, "not_found", None,
     "Counter 999999 does not exist."),
    ("unknown counter to call to", "staff", "post", "/tickets/{waiting}/call", {"counter_id": 999999},
     404, "not_found", None, "Counter 999999 does not exist."),
    ("unknown transfer target", "staff", "post", "/tickets/{waiting}/transfer", {"to_queue": 999999},
     404, "not_found", None, "Queue 999999 does not exist."),
    ("unknown token", "anonymous", "get", "/tickets/by-token/not-a-token", None, 404, "not_found",
     "token", "No ticket has this token; check the link or QR code."),
    ("token with characters no token has", "anonymous", "post", "/tickets/by-token/a%00b/cancel", None,
     404, "not_found", "token", "No ticket has this token"),
    # Wrong state: 409.
    ("join a paused queue", "staff", "post", "/queues/{paused}/tickets", {}, 409, "queue_paused", None,
     "Pharmacy is not taking new tickets right now (paused)."),
    ("request seats on a date that has passed", "staff", "post", "/queues/{past}/tickets", {}, 409,
     "date_passed", "queue_id", "Train 99 on "),
    ("book the last place someone just took", "anonymous", "post", "/queues/{queue}/bookings",
     {"starts_at": "{taken_slot}"}, 409, "slot_full", "starts_at", "The 10:00 slot is fully booked (1 place)"),
    ("check in before the window opens", "anonymous", "post", "/bookings/by-token/{booking_token}/check-in",
     None, 409, "check_in_not_open", "booking", "Check-in for your 10:00 appointment opens at 09:45."),
    ("join a full queue", "staff", "post", "/queues/{full}/tickets", {}, 409, "queue_full", None,
     "Lab is full (1 waiting); please try again later."),
    ("call next while the counter is busy", "staff", "post", "/counters/{busy_counter}/call-next",
     None, 409, "counter_busy", None,
     "Counter 2 still has A-002 (called); complete it, mark it a no-show or transfer it first."),
    ("call next at a counter on a break", "staff", "post", "/counters/{break_counter}/call-next",
     None, 409, "counter_not_open", "counter_id", "Desk 5 is on a lunch break; open it before calling tickets."),
    ("call a ticket to a counter on a break", "staff", "post", "/tickets/{waiting}/call",
     {"counter_id": "{break_counter}"}, 409, "counter_not_open", "counter_id", "Desk 5 is on a lunch break"),
    ("close a counter holding a ticket without saying what to do with it", "staff", "post",
     "/counters/{busy_counter}/state", {"state": "closed"}, 409, "counter_holds_ticket", "held",
     "Counter 2 holds A-002 (called): choose what to do with it first: finish it, put it back"),
    ("a break without a reason", "staff", "post", "/counters/{counter}/state", {"state": "break"}, 400,
     "invalid", "reason", "Say why the counter is on a break: one of lunch, short, meeting, other."),
    ("a counter state nobody knows", "staff", "post", "/counters/{counter}/state", {"state": "gone"}, 400,
     "invalid", "state", "state: must be one of open, break, closed."),
    ("transfer a closing counter's ticket without a queue", "staff", "post", "/counters/{busy_counter}/state",
     {"state": "closed", "held": "transfer"}, 400, "invalid", "to_queue",
     "Choose the queue to transfer the counter's ticket to."),
    ("open an open counter", "staff", "post", "/counters/{counter}/state", {"state": "open"}, 409,
     "invalid_transition", "state", "Counter 1 is already open."),
    ("call next from a paused queue only", "staff", "post", "/counters/{counter}/call-next",
     {"queue_id": "{paused}"}, 409, "queue_paused", None, "Pharmacy: paused, so no ticket can be called."),
    ("complete a ticket never called", "staff", "post", "/tickets/{waiting}/complete", None, 409,
     "invalid_transition", None, "A-001 was never called; call it before completing it."),
    ("recall a waiting ticket", "staff", "post", "/tickets/{waiting}/recall", None, 409,
     "invalid_transition", None, "Cannot recall A-001: it is waiting."),
    ("start a waiting ticket", "staff", "post", "/tickets/{waiting}/start", None, 409,
     "invalid_transition", None, "Cannot start serving A-001: it is waiting."),
    ("no-show of a waiting ticket", "staff", "post", "/tickets/{waiting}/no-show", None, 409,
     "invalid_transition", None, "Cannot mark as no-show A-001: it is waiting."),
    ("call a ticket already called", "staff", "post", "/tickets/{called}/call",
     {"counter_id": "{counter}"}, 409, "invalid_transition", None,
     "A-002 is called, not waiting; it may just have been called by a colleague."),
    ("pause a paused queue", "manager", "post", "/queues/{paused}/pause", None, 409,
     "invalid_transition", None, "Pharmacy is already paused."),
    ("resume a running queue", "manager", "post", "/queues/{queue}/resume", None, 409,
     "invalid_transition", None, "General is not paused."),
    # Not logged in: 401.
    ("anonymous joins", "anonymous", "post", "/queues/{queue}/tickets", {}, 401, "unauthenticated",
     None, "Log in, or send an API token as 'Authorization: Bearer <key>'."),
    ("anonymous calls next", "anonymous", "post", "/counters/{counter}/call-next", None, 401,
     "unauthenticated", None, "Log in, or send an API token"),
    ("anonymous reads the line", "anonymous", "get", "/queues/{queue}/waiting", None, 401,
     "unauthenticated", None, "Log in, or send an API token"),
    ("unknown API token", "bad_token", "get", "/queues/{queue}", None, 401, "unauthenticated", None,
     "This API token is not valid: it is mistyped or was revoked."),
    ("token of a deactivated user", "inactive_token", "get", "/queues/{queue}", None, 401,
     "unauthenticated", None, "This API token is not valid"),
    # Not allowed: 403.
    ("kiosk calls next", "kiosk", "post", "/counters/{counter}/call-next", None, 403, "forbidden",
     None, "A kiosk token may only create tickets."),
    ("kiosk completes", "kiosk", "post", "/tickets/{called}/complete", None, 403, "forbidden", None,
     "A kiosk token may only create tickets."),
    ("kiosk reads the line", "kiosk", "get", "/queues/{queue}/waiting", None, 403, "forbidden", None,
     "A kiosk token may only create tickets."),
    ("kiosk pauses", "kiosk", "post", "/queues/{queue}/pause", None, 403, "forbidden", None,
     "A kiosk token may only create tickets."),
    ("kiosk writes a staff note", "kiosk", "post", "/queues/{queue}/tickets", {"note": "VIP"}, 403,
     "forbidden", "note", "A kiosk token cannot write staff notes."),
    ("kiosk at another location", "kiosk", "post", "/queues/{elsewhere}/tickets", {}, 403, "forbidden",
     None, "This API token is for Riverside Clinic; it cannot act at another location."),
    ("staff of another location joins", "other_staff", "post", "/queues/{queue}/tickets", {}, 403,
     "forbidden", None, "You are not staff at this location."),
    ("staff of another location completes", "other_staff", "post", "/tickets/{called}/complete", None,
     403, "forbidden", None, "You are not staff at this location."),
    ("staff of another location calls to our counter", "other_staff", "post",
     "/counters/{counter}/call-next", None, 403, "forbidden", None, "You are not staff at this location."),
    ("transfer to another location", "staff", "post", "/tickets/{waiting}/transfer",
     {"to_queue": "{elsewhere}"}, 403, "forbidden", None, "You are not staff at this location."),
    ("staff pauses", "staff", "post", "/queues/{queue}/pause", None, 403, "forbidden", None,
     "Only a manager at this location may do this."),
    ("session write without CSRF token", "staff_csrf", "post", "/tickets/{called}/complete", None, 403,
     "forbidden", None, "CSRF check failed: send the csrftoken cookie's value in the X-CSRFToken header."),
]


def _fill(value, scene: Scene):
    """Replace "{name}" placeholders by the scene object's id (as a JSON number in bodies)."""
    ids = {name: getattr(scene, name).pk for name in
           ("queue", "paused", "full", "counter", "busy_counter", "idle_counter", "waiting", "called",
            "elsewhere", "past", "break_counter")}
    texts = scene.texts or {}
    if isinstance(value, dict):
        return {k: ids[v[1:-1]] if isinstance(v, str) and v[1:-1] in ids
                else texts.get(v[1:-1], v) if isinstance(v, str) else v for k, v in value.items()}
    return value.format(**ids, **texts) if isinstance(value, str) else value


@pytest.mark.parametrize(
    "caller,method,path,body,status,code,field,message",
    [case[1:] for case in CASES], ids=[case[0] for case in CASES],
)
def test_api_error_case(scene, caller, method, path, body, status, code, field, message):
    before = (Ticket.objects.count(), QueueEvent.objects.count(),
              list(Ticket.objects.order_by("pk").values_list("status", "counter_id", "call_count")))
    api = scene.callers[caller]
    path = _fill(path, scene)
    body = _fill(body, scene) if isinstance(body, dict) else body
    if method == "get":
        response = api.client.get("/api" + path, headers=api.headers)
    elif isinstance(body, (str, bytes)):
        response = api.post(path, raw=body)
    else:
        response = api.post(path, body)
    answer = response.json()
    assert (response.status_code, answer["code"], answer["field"]) == (status, code, field), answer
    assert answer["detail"].startswith(message), answer["detail"]
    after = (Ticket.objects.count(), QueueEvent.objects.count(),
             list(Ticket.objects.order_by("pk").values_list("status", "counter_id", "call_count")))
    assert after == before, "a refused request must write nothing"


def test_every_service_error_class_has_a_case():
    """A new QueueActionError subclass must come with an API case above."""
    from queueapp.services import errors

    covered = {case[6] for case in CASES}
    classes = {cls.code for cls in vars(errors).values()
               if isinstance(cls, type) and issubclass(cls, errors.QueueActionError)}
    # Raised only by the capacity-waitlist actions, whose endpoints the waitlist router owns.
    classes -= {"nothing_waiting", "offer_expired", "conflict"}
    assert classes <= covered, classes - covered


def test_unauthenticated_answer_says_how_to_authenticate(scene):
    response = scene.callers["anonymous"].post(f"/queues/{scene.queue.pk}/tickets", {})
    assert response["WWW-Authenticate"] == "Bearer"


def test_patient_cannot_cancel_twice(scene):
    anonymous = scene.callers["anonymous"]
    assert anonymous.post(f"/tickets/by-token/{scene.waiting.token}/cancel").status_code == 200
    response = anonymous.post(f"/tickets/by-token/{scene.waiting.token}/cancel")
    assert response.status_code == 409
    assert response.json()["detail"] == "Cannot cancel A-001: it is cancelled."


def test_call_next_with_nobody_waiting_is_not_an_error(location, queue, counter, as_staff):
    response = as_staff.post(f"/counters/{counter.pk}/call-next")
    assert response.status_code == 200
    assert response.json() == {"ticket": None, "detail": "Nobody is waiting."}


def test_staff_token_acts_only_at_its_own_location(location, other_location, staff):
    # alice works at both places, but this token was issued for Riverside.
    from queueapp.models import StaffMembership

    StaffMembership.objects.create(user=staff, location=other_location)
    key = issue_token(location=location, kind=ApiToken.Kind.STAFF, name="Desk", user=staff)[1]
    elsewhere = make_queue(other_location, "Elsewhere", "E")
    response = Api(key=key).post(f"/queues/{elsewhere.pk}/tickets", {})
    assert response.status_code == 403
    assert response.json()["detail"] == ("This API token is for Riverside Clinic; "
                                         "it cannot act at another location.")
    assert Api(user=staff).post(f"/queues/{elsewhere.pk}/tickets", {}).status_code == 201


def test_counter_busy_refusal_leaves_the_waiting_line_alone(queue, counter, as_staff):
    do_join(queue)
    waiting = do_join(queue)
    do_call_next(counter=counter)
    response = as_staff.post(f"/tickets/{waiting.pk}/call", {"counter_id": counter.pk})
    assert response.status_code == 409 and response.json()["code"] == "counter_busy"
    assert Ticket.objects.get(pk=waiting.pk).status == "waiting"


@pytest.mark.parametrize("language,body,field,expected", [
    ("de", {"priority": "high"}, "priority", "priority: muss eine ganze Zahl sein."),
    ("de", {"note": "x" * 201}, "note", "note: darf höchstens 200 Zeichen haben."),
    ("de", {"priorty": 10}, "priorty", "priorty: ist kein Feld dieser Anfrage."),
    ("de", {"party_size": 0}, "party_size", "party_size: muss mindestens 1 sein."),
    ("ar", {"priority": "high"}, "priority", "priority: يجب أن يكون عددًا صحيحًا."),
    ("ar", {"language": "xx"}, "language", "language: يجب أن يكون واحدًا من "),
    ("ar", "[10]", "body", "body: يجب أن يكون كائن JSON."),
])
def test_validation_errors_speak_the_callers_language(scene, language, body, field, expected):
    """pydantic's own messages are English only: the API says them in the
    caller's Accept-Language, naming the field, in the usual error shape."""
    api = scene.callers["staff"]
    headers = {"Accept-Language": language}
    if isinstance(body, str):
        response = api.post(f"/queues/{scene.queue.pk}/tickets", raw=body, headers=headers)
    else:
        response = api.post(f"/queues/{scene.queue.pk}/tickets", body, headers=headers)
    answer = response.json()
    assert (response.status_code, answer["code"], answer["field"]) == (400, "invalid", field), answer
    assert answer["detail"].startswith(expected), answer["detail"]
    assert "should" not in answer["detail"] and "Input" not in answer["detail"]


def test_missing_field_in_german(scene):
    response = scene.callers["staff"].post(f"/tickets/{scene.waiting.pk}/call", {},
                                           headers={"Accept-Language": "de"})
    assert response.json()["detail"] == "counter_id: ist erforderlich."
