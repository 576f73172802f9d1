"""Virtual waiting rooms: admit visitors to another site at a rate, never more inside than allowed.

A waiting room (`models.WaitingRoom`) is a capacity queue whose visitors are
one-seat tickets. Inside = CONFIRMED tickets = `queue.seats_taken`, which the
check constraint keeps within `queue.capacity` (the most inside at once).

- Admission (`admit_room_locked`, queue row locked): evenly spaced at the
  room's rate. `next_admission_at` is the earliest instant of the next
  admission; a cycle admits everyone whose slot has come (never more than the
  free places), and moves it on by one interval per admission. Slots nobody
  used are kept for at most one rate window and never make a window hold more
  than the rate allows (`admission_allowance`). Runs on a join, on a release
  and in the worker's cycle (`run_room_cycles`, every `PACE_SECONDS`).
- Release: the protected site reports "done" (COMPLETED) or "abandoned"
  (CANCELLED) over the API; an admission nobody reported frees itself
  `admission_seconds` after it was made (EXPIRED, `do_expire_admissions`).

Every admission and every release is a QueueEvent of the room's queue.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models.base import ModelState
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext as _

from ..dbfunctions import CompiledSelect
from ..estimates import RECENT_WINDOW, recent_stays, service_seconds
from ..models import Location, Priority, Queue, QueueEvent, Ticket, TicketStatus, WaitingRoom, status_in_sentence
from ..alerts.decide import webhook_endpoints
from ..alerts.models import WebhookEndpoint
from ..selectors import room_position_sql
from ._events import announce_event, record_event
from ._locks import lock_queue
from ._take import apply_place, run_take_and_read, take_in_one, take_params, take_update
from .errors import InvalidInput, InvalidTransition, NotFound, QueueFull, QueuePaused
from .waitlist import _each_queue, _set_seats, admit_locked

Kind = QueueEvent.Kind
# How often the worker runs every room's admission cycle (queueapp.jobs). Short,
# so a room whose only trigger is the worker (places free, nobody arriving or
# leaving) admits at its pace, not in one batch a second: a batch a second
# cannot keep both the rate over every window of a second and the full rate
# when the worker's cycles jitter (two batches 0.99 s apart are 2x the rate).
PACE_SECONDS = 0.1
# The worker's other waiting-room job (expiring unreported admissions).
CYCLE_SECONDS = 1.0
ROOM_KEY_PREFIX = "qr_"
OUTCOMES = {"done": (TicketStatus.COMPLETED, Kind.COMPLETED),
            "abandoned": (TicketStatus.CANCELLED, Kind.CANCELLED)}


def _room_of(queue: Queue) -> WaitingRoom:
    room = WaitingRoom.objects.get(queue_id=queue.pk)
    room.queue = queue
    return room


def rate_window(room: WaitingRoom) -> tuple[int, timedelta]:
    """(quota, window): the room never admits more than `quota` in any window
    of `window`, which is a second or one interval, whichever is longer,
    rounded up to whole intervals, and `quota` those intervals (600 a minute:
    10 a second; 30 a minute: 1 in 2 s; 100 a minute: 2 in 1.2 s). So no
    longer window holds more than the rate either (a minute holds at most the
    rate plus `quota - 1`)."""
    quota = -(-room.admit_per_minute // 60)  # ceil
    return quota, timedelta(seconds=quota * room.admission_interval)


def admission_allowance(room: WaitingRoom, now: datetime) -> tuple[int, datetime]:
    """How many the rate lets in at `now`, and the slot the first of them takes.

    Two rules, both needed. The pace: admissions are evenly spaced, one slot
    per interval from `next_admission_at`; slots nobody used are kept for at
    most one window (a late worker cycle catches up) and dropped when an
    admission finds nobody to take them (`admit_room_locked`). The window:
    at most `quota` admissions in any `window` (`recent_admissions`), so the
    slots kept never add up to a burst above the rate: an idle room then a
    crowd, or a full room whose visitors all leave at once, admit at the rate
    (the kept credit let one second hold 27 at 10 a second; docs/benchmarks.md)."""
    interval = timedelta(seconds=room.admission_interval)
    quota, window = rate_window(room)
    slot = max(room.next_admission_at or now, now - window)
    if slot > now:
        return 0, slot
    since = (now - window).timestamp()
    in_window = sum(1 for instant in room.recent_admissions or () if instant > since)
    return min(int((now - slot) / interval) + 1, quota - in_window), slot


def admit_room_locked(room: WaitingRoom, queue: Queue, *, now: datetime) -> list[Ticket]:
    """Admit whoever the rate and the free places allow (queue row locked by the caller)."""
    allowed, slot = admission_allowance(room, now)
    if allowed <= 0 or queue.seats_free <= 0:
        return []
    admitted = admit_locked(queue, now=now, cycle=True, budget=allowed)
    if admitted:
        interval = timedelta(seconds=room.admission_interval)
        # All of the allowance used: the next slot follows the last one taken.
        # Less (the line or the free places ran out): the slots up to now that
        # nobody could use are dropped, so they cannot make a burst later.
        room.next_admission_at = (slot + len(admitted) * interval if len(admitted) == allowed
                                  else now + interval)
        quota, window = rate_window(room)
        room.recent_admissions = ([t for t in room.recent_admissions or () if t > (now - window).timestamp()]
                                  + [now.timestamp()] * len(admitted))[-quota:]
        WaitingRoom.objects.filter(pk=room.pk).update(next_admission_at=room.next_admission_at,
                                                      recent_admissions=room.recent_admissions)
    return admitted


@transaction.atomic(durable=True)
def do_create_waiting_room(*, location, name: str, slug: str, prefix: str, target_url: str,
                           admit_per_minute: int, max_inside: int,
                           admission_seconds: int = 600) -> WaitingRoom:
    """A waiting room and its queue (a capacity queue of `max_inside` places that
    admits only through the room's cycle: `batch_size` is set for that)."""
    for field, value, least in (("admit_per_minute", admit_per_minute, 1), ("max_inside", max_inside, 1),
                                ("admission_seconds", admission_seconds, 10)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InvalidInput(_("%(field)s must be a whole number of at least %(least)s.") % {
                "field": field, "least": least}, field=field)
    from django.core.exceptions import ValidationError
    from django.core.validators import URLValidator, validate_slug

    try:
        validate_slug(slug)
    except ValidationError:
        raise InvalidInput(_("slug may only hold letters, digits, - and _."), field="slug") from None
    try:
        URLValidator(schemes=["http", "https"])(target_url)
    except ValidationError:
        raise InvalidInput(_("target_url must be an http(s) address such as https://shop.example.com/."),
                           field="target_url") from None
    if WaitingRoom.objects.filter(slug=slug).exists() or Queue.objects.filter(location=location, slug=slug).exists():
        raise InvalidInput(_("A waiting room or queue called %(slug)s exists already.") % {"slug": repr(slug)},
                           field="slug")
    if not re.fullmatch(r"[A-Z0-9]{1,4}", prefix):
        raise InvalidInput(_("prefix must be 1-4 capital letters or digits."), field="prefix")
    queue = Queue.objects.create(location=location, name=name, slug=slug, prefix=prefix,
                                 kind=Queue.Kind.CAPACITY, capacity=max_inside, batch_size=max_inside)
    return WaitingRoom.objects.create(queue=queue, slug=slug, target_url=target_url,
                                      admit_per_minute=admit_per_minute, admission_seconds=admission_seconds)


def do_enter_line(room: WaitingRoom | int, *, now: datetime | None = None) -> Ticket:
    """A visitor arrives: a place at the back of the line, admitted at once if the
    rate and the free places allow.

    The place is taken on its own (`_take_place`: on PostgreSQL one statement
    that updates the queue row's counters and writes the ticket and its JOINED
    event), so the queue row is held for that statement, not for the whole
    arrival: 10,000 visitors a minute do not queue behind each other.

    When that statement finds a place free inside and the room's next
    admission slot has come, the arrival leads to an admission at once
    (`_admit_now`): it lets in the head of the line, who is not
    necessarily this arrival. An earlier rule (only the head of an empty line
    tried, and gave up when another arrival held the row at that instant) left
    an empty room closed until the worker's next cycle.
    """
    if not (isinstance(room, WaitingRoom) and WaitingRoom.queue.is_cached(room)
            and Queue.location.is_cached(room.queue)):
        # The arrival's page read the room with its queue and location a moment
        # ago: that read serves (one statement fewer per arrival). Its
        # `next_admission_at` only decides whether to try an admission, which
        # re-reads the room under the lock.
        room_id = room if isinstance(room, int) else room.pk
        room = WaitingRoom.objects.select_related("queue__location").filter(pk=room_id).first()
        if room is None:
            raise NotFound(_("Waiting room %(id)s does not exist.") % {"id": room_id})
    ticket = _take_place(room.queue, fingerprint=getattr(room, "settings_fingerprint", None))
    queue = ticket.queue
    if hasattr(ticket, "next_admission_at"):  # the statement's, not the (cached) room's
        room.next_admission_at = ticket.next_admission_at
    # `seats_taken` is the row as this arrival's statement left it (exact);
    # once full or once the slot has moved on, arrivals leave it to the
    # releases and the worker's cycle.
    if queue.seats_taken < (queue.capacity or 0) and (
            room.next_admission_at is None or room.next_admission_at <= (now or timezone.now())):
        if any(t.pk == ticket.pk for t in _admit_now(queue.pk, now=now)):
            ticket.refresh_from_db(fields=["status", "confirmed_at"])
            ticket.queue = queue
    return ticket


# The per-room lock of "an arrival or a release is admitting": (this class, the queue's id).
ARRIVAL_ADMISSION_LOCK = 0x51_41_44_4D  # "QADM"


@transaction.atomic(durable=True)
def _admit_now(queue_id: int, *, now: datetime | None) -> list[Ticket]:
    """An admission cycle run right after an arrival that found a place free and
    the slot come, or after a release.

    It waits for the room's row (whoever holds it: another arrival's statement,
    a release, the worker), so the admission happens now, not a cycle later.
    Only one arrival or release per room waits so at a time (a PostgreSQL
    advisory lock, tried without waiting): the others, committed meanwhile,
    leave it to that one, which reads the line after they took their places
    or freed theirs (their statements needed the row it is waiting for, or
    committed before it got it), so 10,000 arrivals, or a protected site
    reporting 50 visitors at once, do not queue for the row to find nothing
    to do. The time is read under the lock, so a slot that came while it
    waited counts.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s::int, %s::int)", [ARRIVAL_ADMISSION_LOCK, queue_id])
            if not cursor.fetchone()[0]:
                return []
    queue = lock_queue(queue_id)
    return admit_room_locked(_room_of(queue), queue, now=now or timezone.now())


# The update that hands out the next number, place and event version (no row:
# paused or full; a burst may pass a room's `max_waiting` by the arrivals in
# flight together, see `_take.take_update`).
_TAKE = take_update("last_seq + 1")
# PostgreSQL: the update, the ticket and its JOINED event in one statement, so the
# queue row is held for that statement and the commit only. The event's data is
# `record_event`'s: {"entered": [priority, seq], "entered_at": events.instant_us(queued_at),
# "ticket": events.ticket_snapshot(ticket)}
# (tests/test_waiting_room.py compares the two).
#
# It takes no place while the location has an active webhook endpoint and
# %(unless_hooked)s is true: arrivals then need not read the endpoints first (one
# round trip fewer); `_take_place` reads which of them want a join only then.
_UNLESS_HOOKED = (f" AND NOT (%(unless_hooked)s AND EXISTS (SELECT 1 FROM {WebhookEndpoint._meta.db_table} "
                  "WHERE location_id = %(location)s AND is_active))")
# The counters of a queue (what arrivals, calls and admissions change), and of a
# room its next slot: everything else of the room, its queue and its location is
# a setting an arrival may use, and is in the fingerprint (`_SETTINGS`), so a
# column added later is in it without anyone remembering to add it.
_COUNTERS = [Queue._meta.get_field(name).column for name in (
    "version", "seats_taken", "call_streak", "number_day", "last_number", "last_seq", "first_seq")]
_ROOM_COUNTERS = [WaitingRoom._meta.get_field(name).column for name in ("next_admission_at", "recent_admissions")]


def _settings_sql(queue_id: str) -> str:
    """A hash of the settings of the room of the queue `queue_id` (an SQL
    expression), its queue and its location, computed by PostgreSQL: the one
    definition behind the cached room's fingerprint (`room_for_arrival`) and the
    place statement's check of it. NULL when the queue has no room."""
    return ("(SELECT md5((to_jsonb(r) - ARRAY[" + ", ".join(f"'{c}'" for c in _ROOM_COUNTERS) + "]::text[])::text"
            " || (to_jsonb(q) - ARRAY[" + ", ".join(f"'{c}'" for c in _COUNTERS) + "]::text[])::text"
            " || to_jsonb(l)::text) "
            f"FROM {Queue._meta.db_table} q JOIN {WaitingRoom._meta.db_table} r ON r.queue_id = q.id "
            f"JOIN {Location._meta.db_table} l ON l.id = q.location_id WHERE q.id = {queue_id})")


# With a cached room (%(fingerprint)s not NULL) the place is taken only while
# its settings are still those the cache holds: no place in a queue whose room
# changed, went, or whose name now belongs to another room.
_IF_CURRENT = (" AND (%(fingerprint)s::text IS NULL OR %(fingerprint)s::text = "
               + _settings_sql("%(queue)s") + ")")
# Also returned: the event's data and the room's next slot (the statement's, not a cached room's).
_TAKE_IN_ONE = take_in_one("last_seq + 1", unless=_UNLESS_HOOKED + _IF_CURRENT, also=(
    f", e.data, (SELECT next_admission_at FROM {WaitingRoom._meta.db_table} WHERE queue_id = %(queue)s)"))


class RoomChanged(Exception):
    """A cached room's settings are no longer the room's (or it is gone): no
    place was taken; read the room again (`room_for_arrival(fresh=True)`)."""


# Each room an arrival used, by slug, with its settings' fingerprint: one read
# fewer per arrival (the room read was the largest wait left in one;
# docs/benchmarks.md). Never trusted on its own: the place statement checks the
# fingerprint (`_IF_CURRENT`), so a change by staff in any process takes effect
# on the next arrival. PostgreSQL only (the statement computes the hash).
_ROOMS: dict[str, tuple[WaitingRoom, str]] = {}
_ROOMS_KEPT = 256


def room_for_arrival(slug: str, *, fresh: bool = False) -> WaitingRoom | None:
    """The room called `slug` with its queue and location for an arrival: a copy
    of the cached one (its `settings_fingerprint` set; `do_enter_line` then
    raises `RoomChanged` if it is stale) or, when `fresh` or not cached, read
    now (`settings_fingerprint` None: used as read)."""
    rooms = WaitingRoom.objects.select_related("queue__location").filter(slug=slug)
    if connection.vendor != "postgresql":
        return rooms.first()
    cached = None if fresh else _ROOMS.get(slug)
    if cached is not None:
        room = _own_copy(cached[0])  # each arrival changes its queue's counters
        room.settings_fingerprint = cached[1]
        return room
    room = rooms.annotate(fingerprint=RawSQL(_settings_sql(f"{WaitingRoom._meta.db_table}.queue_id"), ())).first()
    if room is None:
        _ROOMS.pop(slug, None)
        return None
    if len(_ROOMS) >= _ROOMS_KEPT:
        _ROOMS.clear()
    _ROOMS[slug] = (_own_copy(room), room.fingerprint)
    room.settings_fingerprint = None
    return room


def _own_copy(room: WaitingRoom) -> WaitingRoom:
    """The room, its queue and its location as new instances holding the same
    values (an arrival sets its queue's counters and its room's next slot on
    its own copy, never on the cache's, which other threads copy meanwhile).
    Field values are replaced, never changed in place, by the code an arrival
    runs, so the values themselves are shared. `copy.deepcopy` did the same in
    85-104 µs of CPU an arrival, this in 7-8 µs (bench/room_copy.py;
    docs/benchmarks.md, development, session 7)."""
    copied, queue = _instance_copy(room), _instance_copy(room.queue)
    copied._state.fields_cache["queue"] = queue
    # (select_related also cached the queue's way back to its room: this copy)
    queue._state.fields_cache.update(location=_instance_copy(room.queue.location), waiting_room=copied)
    return copied


def _instance_copy(instance):
    """A model instance with the same attributes and a fresh state (no related
    instances cached: the caller sets those it copies)."""
    copied = instance.__class__.__new__(instance.__class__)
    copied.__dict__ = {**instance.__dict__, "_state": ModelState()}
    copied._state.adding, copied._state.db = instance._state.adding, instance._state.db
    return copied


def _take_place(queue: Queue, *, fingerprint: str | None = None) -> Ticket:
    """The next number, place and version, the waiting ticket and its JOINED
    event; `queue` gets the row's counters as the update left them. Refuses a
    paused or full room.

    On PostgreSQL, when no webhook wants the join, one statement in autocommit
    (`_TAKE_IN_ONE`): the queue row is locked and released by the server
    within that statement, with no Python in between, so a busy web process
    (a thread waiting for the GIL) never holds the line's row. Otherwise the
    update, the inserts and the webhook's outbox rows share one transaction
    (SQLite serialises writers anyway).
    """
    now = timezone.now()
    ticket = Ticket(queue=queue, priority=Priority.NORMAL, created_at=now, queued_at=now,
                    language=queue.location.default_language)
    params = {**take_params(queue, ticket), "location": queue.location_id, "unless_hooked": True,
              "fingerprint": fingerprint}
    hooks = []
    if connection.vendor == "postgresql":
        row, ticket.line_read = _take_and_read(params, queue, ticket)
        if row is None and fingerprint is not None:
            raise RoomChanged  # (or paused, full, hooked: the fresh room's try tells)
        if row is None and not (hooks := webhook_endpoints(queue.location_id, Kind.JOINED)):
            # Refused: paused, full, or endpoints at the location that want no joins.
            row, ticket.line_read = _take_and_read({**params, "unless_hooked": False}, queue, ticket)
        if not hooks:
            ticket.pk, event_id, data, ticket.next_admission_at = apply_place(queue, ticket, _checked(row, queue))
            ticket._state.adding, ticket._state.db = False, connection.alias
            event = QueueEvent(pk=event_id, queue=queue, version=queue.version, kind=Kind.JOINED, ticket=ticket,
                               status_after=TicketStatus.WAITING, created_at=now,
                               data=json.loads(data) if isinstance(data, str) else data)
            announce_event(event, queue=queue, ticket=ticket, entered_line=(ticket.priority, ticket.seq),
                           webhooks=[])  # none wants it (the statement's check, or read just now)
            return ticket
    ticket.line_read = None  # (a refused try's read, if any: not this place's)
    with transaction.atomic(durable=True):
        apply_place(queue, ticket, _execute(_TAKE, params, queue))
        ticket.save(force_insert=True)
        record_event(queue, Kind.JOINED, ticket=ticket, entered_line=(ticket.priority, ticket.seq),
                     version_taken=True)
    return ticket


class LineRead(NamedTuple):
    """What an arrival's page needs of the line, read with its place: the
    position (`selectors.room_position_sql`, the arithmetic equal to
    `selectors.position_at`) and the room's recent stays
    (`estimates.recent_stays`, for the wait)."""

    position: int | None  # (None: no place was taken)
    stays: list[float]


# The arrival's line read: its place by arithmetic (`selectors.room_position_sql`)
# and the room's stays, compiled once per process (`dbfunctions.CompiledSelect`).
_PLACE_OF_TOKEN = room_position_sql(f"SELECT seq FROM {Ticket._meta.db_table} WHERE token = %s")
_STAYS = CompiledSelect(recent_stays, queue_id=-(2**40) - 1, since=datetime(1900, 1, 2, tzinfo=UTC))


def _take_and_read(params: dict, queue: Queue, ticket: Ticket) -> tuple[tuple | None, LineRead | None]:
    """`_TAKE_IN_ONE` and the arrival's line read in one round trip
    (`_take.run_take_and_read`); no row: no place taken (bench/waiting_room.py:
    an arrival was 6 statements, each a round trip to a busy server). No line
    read: it failed after the place was taken; the page reads the line itself
    (`pages`), the visitor keeps the place."""
    stays = _STAYS.sql(connection.alias, queue_id=queue.pk, since=params["now"] - RECENT_WINDOW)
    read = "SELECT " + _PLACE_OF_TOKEN + ", ARRAY(SELECT s.took FROM (" + stays[0] + ") s)"
    row, line = run_take_and_read(_TAKE_IN_ONE, params, (read, [ticket.token, queue.pk, *stays[1]]))
    if line is None:
        return row, None
    position, took = line
    return row, LineRead(position, [t for t in took if t is not None])


def _execute(sql: str, params: dict, queue: Queue) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return _checked(cursor.fetchone(), queue)


def _checked(row: tuple | None, queue: Queue) -> tuple:
    """The take's row; none: refused (paused or full)."""
    if row is None:
        queue.refresh_from_db(fields=["is_paused", "max_waiting"])
        if queue.is_paused:
            raise QueuePaused(_("%(queue)s is closed for now; please come back later.") % {"queue": queue.name})
        raise QueueFull(_("%(queue)s is full; please come back later.") % {"queue": queue.name})
    return row


def do_release_visitor(room: WaitingRoom, visitor_id: int, *, outcome: str,
                       now: datetime | None = None) -> Ticket:
    """The protected site says a visitor is done or abandoned: their place inside
    goes to the next in line (at the room's rate).

    Two short transactions, not one long one: the release (the room's queue
    row is held for it only), then an admission cycle (`_admit_now`: one
    per room at a time). A site reporting its visitors together made each
    report hold the row for the release and an admission (19 statements);
    under load the reports queued behind one another and the arrivals
    behind them (bench/waiting_room.py at 1,000 visitors: py-spy found the
    reports waiting in `lock_queue` and the arrivals' place statements
    waiting for the row; admissions ran at 2.2/s for a set 10/s)."""
    if outcome not in OUTCOMES:
        raise InvalidInput(_("outcome must be one of %(allowed)s, not %(value)s.") % {
            "allowed": ", ".join(OUTCOMES), "value": repr(outcome)}, field="outcome")
    ticket = _release_reported(room, visitor_id, outcome=outcome, now=now or timezone.now())
    _admit_now(room.queue_id, now=now)
    return ticket


@transaction.atomic(durable=True)
def _release_reported(room: WaitingRoom, visitor_id: int, *, outcome: str, now: datetime) -> Ticket:
    queue = lock_queue(room.queue_id)  # (the room's slug below never changes: no re-read)
    ticket = Ticket.objects.filter(queue=queue, pk=visitor_id).first()
    if ticket is None:
        raise NotFound(_("Visitor %(visitor)s never entered %(room)s.") % {"visitor": visitor_id, "room": room.slug},
                       field="visitor_id")
    if ticket.status != TicketStatus.CONFIRMED:
        raise InvalidTransition(_not_inside(ticket, visitor_id), field="visitor_id")
    ticket.queue = queue
    status, kind = OUTCOMES[outcome]
    _release(queue, ticket, status=status, kind=kind, now=now, reason=outcome)
    return ticket


def _not_inside(ticket: Ticket, visitor_id: int) -> str:
    """Why a visitor cannot be released, a whole sentence per status."""
    values = {"visitor": visitor_id, "status": status_in_sentence(ticket.status)}
    sentence = {TicketStatus.WAITING: _("Visitor %(visitor)s is not inside: still waiting in line."),
                TicketStatus.COMPLETED: _("Visitor %(visitor)s is not inside: already reported done."),
                TicketStatus.CANCELLED: _("Visitor %(visitor)s is not inside: already left."),
                TicketStatus.EXPIRED: _("Visitor %(visitor)s is not inside: the admission expired."),
                }.get(ticket.status)
    return (sentence or _("Visitor %(visitor)s is not inside: %(status)s.")) % values


def _release(queue: Queue, ticket: Ticket, *, status: str, kind: str, now: datetime, reason: str) -> None:
    ticket.status = status
    ticket.finished_at = now
    ticket.save(update_fields=["status", "finished_at"])
    _set_seats(queue, -1)
    # A stay that ends can change the room's pace (`estimates.room_interval`)
    # and so every wait shown: the event carries it, as a completion does.
    record_event(queue, kind, ticket=ticket,
                 data={"reason": reason, "seats_released": 1, "seats_taken": queue.seats_taken,
                       "capacity": queue.capacity, "service_seconds": service_seconds(queue)})


def do_end_late_admission(room: WaitingRoom, ticket_id: int, *, now: datetime | None = None) -> Ticket | None:
    """A visitor came for their token with too little of the admission left for
    it to reach the site alive (`admission.has_time_for_token`): the admission
    ends now, as it would have a few seconds later (EXPIRED, reason "too late
    to enter"), and its place goes to the next in line. Returns the ticket as
    it now is (None if it is gone); a ticket no longer inside is left as it is."""
    with transaction.atomic(durable=True):
        queue = lock_queue(room.queue_id)
        ticket = Ticket.objects.filter(queue=queue, pk=ticket_id).first()
        if ticket is None or ticket.status != TicketStatus.CONFIRMED:
            return ticket
        ticket.queue = queue
        _release(queue, ticket, status=TicketStatus.EXPIRED, kind=Kind.EXPIRED, now=now or timezone.now(),
                 reason="too late to enter")
    _admit_now(room.queue_id, now=now)
    return ticket


def do_expire_admissions(*, now: datetime | None = None) -> int:
    """Free every admission not reported within its lifetime; one transaction per
    room. Candidates are read without a lock and re-read under the queue lock,
    so two workers never release the same visitor twice."""
    seen = now or timezone.now()
    rooms = WaitingRoom.objects.values_list("queue_id", "admission_seconds")
    due = [queue_id for queue_id, seconds in rooms
           if Ticket.objects.filter(queue_id=queue_id, status=TicketStatus.CONFIRMED,
                                    confirmed_at__lte=seen - timedelta(seconds=seconds)).exists()]
    return sum(_each_queue(due, lambda queue_id: _expire_room(queue_id, now=now)))


@transaction.atomic(durable=True)
def _expire_room(queue_id: int, *, now: datetime | None) -> int:
    queue = lock_queue(queue_id)
    # The clock is read once the room's row is held (unless a test gives the
    # instant), as in the worker's cycle: the admissions made below count at
    # the instant they are made, not before the wait for the row.
    now = now or timezone.now()
    room = _room_of(queue)
    lapsed = list(Ticket.objects.filter(
        queue=queue, status=TicketStatus.CONFIRMED,
        confirmed_at__lte=now - timedelta(seconds=room.admission_seconds)).order_by("confirmed_at", "pk"))
    for ticket in lapsed:
        ticket.queue = queue
        _release(queue, ticket, status=TicketStatus.EXPIRED, kind=Kind.EXPIRED, now=now, reason="not reported")
    admit_room_locked(room, queue, now=now)
    return len(lapsed)


def run_room_cycles(*, now: datetime | None = None) -> int:
    """The worker's admission cycle over every room whose next slot has come,
    with someone waiting and a place free (run every `PACE_SECONDS`: one
    cheap read when nothing is due; the line's partial index answers the
    EXISTS, where a join over the waiting tickets read all 10,000)."""
    from django.db.models import Exists, F, OuterRef, Q

    due = now or timezone.now()
    waiting = Ticket.objects.filter(queue_id=OuterRef("pk"), status=TicketStatus.WAITING)
    candidates = (Queue.objects.filter(Q(waiting_room__next_admission_at__isnull=True)
                                       | Q(waiting_room__next_admission_at__lte=due),
                                       waiting_room__isnull=False, is_paused=False,
                                       seats_taken__lt=F("capacity"))
                  .filter(Exists(waiting)).values_list("pk", flat=True).order_by("pk"))
    # Each room's cycle reads the clock once it holds the room's row (unless a
    # test gives the instant): under a crowd it may wait there behind arrivals
    # and releases, and the rate's window applied to an instant taken before
    # that wait let one second hold more than the rate (official run, session 7).
    return sum(_each_queue(list(candidates), lambda queue_id: len(_room_cycle(queue_id, now=now))))


@transaction.atomic(durable=True)
def _room_cycle(queue_id: int, *, now: datetime | None) -> list[Ticket]:
    """One admission cycle of a room (waits for the room's queue row)."""
    queue = lock_queue(queue_id)
    return admit_room_locked(_room_of(queue), queue, now=now or timezone.now())


# --- the room's API key ---------------------------------------------------------

def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def do_issue_room_key(room: WaitingRoom) -> str:
    """A new API key for the protected site (replaces the old one); only its
    digest is kept, so it is shown once."""
    key = ROOM_KEY_PREFIX + secrets.token_urlsafe(32)
    WaitingRoom.objects.filter(pk=room.pk).update(token_digest=_digest(key))
    room.token_digest = _digest(key)
    return key


def room_key_matches(room: WaitingRoom, key: str) -> bool:
    return bool(room.token_digest) and hmac.compare_digest(room.token_digest, _digest(key))
