"""A counter queue's join as one statement: the queue row's next number,
place and version, the waiting ticket and its JOINED event.

Used by `do_join` when nothing else needs deciding under the queue's lock and
no webhook wants the join, and by the waiting room's arrival
(`services.rooms._TAKE_IN_ONE`, with its own conditions and the room's reads
pipelined after it). In autocommit the server locks the queue row, writes and commits
within the one statement: no Python runs while the row is held, so a busy web
process (a request thread waiting for the GIL) never holds the line up.
bench/join_throughput.py --waits found the locked ORM path's row held across
six round trips and the Python between them (the holder idle in transaction).
"""

from __future__ import annotations

from datetime import date

from django.db import DatabaseError, connection

from ..dbfunctions import prepared_cursor
from ..events import instant_us
from ..models import Queue, QueueEvent, Ticket, TicketStatus
from ._events import announce_event, event_payload

Kind = QueueEvent.Kind

# The right-hand sides read the row as it was: a new business day starts the
# numbers at 1 again.
_NEW_DAY = "number_day IS NULL OR number_day < %(day)s"


def take_update(seq: str) -> str:
    """The update that hands out the next number, place (`seq`: the SQL of the
    new `last_seq`) and event version. No row: paused or full. `max_waiting` is
    counted in the same statement; on PostgreSQL an update that waited for the
    row re-checks the row, not the count, so a burst may pass `max_waiting` by
    the joins that were in flight together (SQLite serialises them: exact
    there)."""
    return (f"UPDATE {Queue._meta.db_table} SET "
            f"number_day = CASE WHEN {_NEW_DAY} THEN %(day)s ELSE number_day END, "
            f"last_number = CASE WHEN {_NEW_DAY} THEN 1 ELSE last_number + 1 END, "
            f"last_seq = {seq}, version = version + 1 "
            "WHERE id = %(queue)s AND NOT is_paused AND (max_waiting IS NULL OR max_waiting > "
            f"(SELECT COUNT(*) FROM {Ticket._meta.db_table} WHERE queue_id = %(queue)s AND status = %(waiting)s)) "
            "RETURNING number_day, last_number, last_seq, version, seats_taken, capacity, prefix")


def take_in_one(seq: str, *, unless: str = "", also: str = "") -> str:
    """PostgreSQL: the update, the ticket and its JOINED event in one statement.
    The event's data is `record_event`'s: {"entered": [priority, seq],
    "entered_at": events.instant_us(queued_at), "ticket": events.ticket_snapshot(ticket)}
    (tests/test_join_in_one.py and tests/test_waiting_room.py compare the two).
    `unless`: more conditions of the update (` AND ...`: no row, no place);
    `also`: more columns after the row's (`, ...`; the event is `e`)."""
    update = take_update(seq)
    if unless:
        update = update.replace(" RETURNING ", unless + " RETURNING ")
    return (
        f"WITH q AS ({update}), "
        f"t AS (INSERT INTO {Ticket._meta.db_table} (business_day, number, token, priority, seq, status, "
        "party_size, call_count, no_show_count, note, created_at, queued_at, queue_id, language) "
        "SELECT number_day, last_number, %(token)s, %(priority)s, last_seq, %(waiting)s, %(party_size)s, 0, 0, "
        "%(note)s, %(now)s, %(now)s, %(queue)s, %(language)s FROM q RETURNING id, number, seq), "
        f"e AS (INSERT INTO {QueueEvent._meta.db_table} (version, kind, status_after, created_at, data, "
        "queue_id, ticket_id, actor_id) "
        "SELECT q.version, %(kind)s, %(waiting)s, %(now)s, jsonb_build_object("
        "'entered', jsonb_build_array(%(priority)s, t.seq), 'entered_at', %(entered_at)s::bigint, "
        "'ticket', jsonb_build_object('id', t.id, "
        "'display', q.prefix || '-' || lpad(t.number::text, greatest(3, length(t.number::text)), '0'), "
        "'number', t.number, 'priority', %(priority)s, 'seq', t.seq, 'status', %(waiting)s, "
        "'party_size', %(party_size)s, 'counter', NULL, 'counter_id', NULL, 'call_count', 0)), %(queue)s, t.id, "
        "%(actor)s FROM q, t RETURNING id, data) "
        "SELECT q.number_day, q.last_number, q.last_seq, q.version, q.seats_taken, q.capacity, "
        f"q.prefix, t.id, e.id{also} "
        "FROM q, t, e")


def take_params(queue: Queue, ticket: Ticket, *, actor=None) -> dict:
    """The statement's values for `ticket` (unsaved: its queue, priority,
    party size, note, language and times set) joining `queue`."""
    return {"day": queue.location.business_day(), "queue": queue.pk, "waiting": TicketStatus.WAITING,
            "token": ticket.token, "priority": ticket.priority, "party_size": ticket.party_size,
            "note": ticket.note, "now": ticket.queued_at, "kind": Kind.JOINED, "language": ticket.language,
            "entered_at": instant_us(ticket.queued_at),
            "actor": actor.pk if getattr(actor, "is_authenticated", False) else None}


def run_take(sql: str, params: dict) -> tuple | None:
    """The statement's row; None when the queue refused (paused or full)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def run_take_and_read(sql: str, params: dict, read: tuple[str, list]) -> tuple[tuple | None, tuple]:
    """`run_take`, and `read` (sql, params) in the same round trip (psycopg's
    pipeline mode) as a transaction of its own after the take's, so it sees
    the new place committed, as a read sent after the take returned would.
    The take's row (None: refused) and the read's (None: it failed after the
    take committed).

    A Sync goes between the two: without it, the statements of a pipeline
    share one implicit transaction and the take's lock on the queue row is held
    until the read (a count that grows with the line) has run too.

    `arun_take_and_read` is the same on an async connection (the kiosk's join
    in the event loop): the two differ only by their awaits."""
    # Prepared (`dbfunctions.prepared_cursor`): planned once per connection.
    with prepared_cursor(connection.alias) as take, prepared_cursor(connection.alias) as line:
        try:
            # Errors surface when the pipeline syncs, outside Django's cursor: wrapped
            # as Django's, so a lost or busy server still answers 503, not 500.
            with connection.wrap_database_errors, connection.connection.pipeline() as pipeline:
                take.execute(sql, params)
                # psycopg's own step for a Sync, queued without waiting for the
                # results (`Pipeline.sync()` would wait: a round trip); psycopg is
                # pinned and tests/test_join_in_one.py checks the two transactions.
                pipeline._enqueue_sync()
                line.execute(*read)
        except DatabaseError as failed:
            # The read failed after the take committed: the ticket exists, so it
            # is announced and answered (its place read the ordinary way), not a 500.
            try:
                return take.fetchone(), None
            except DatabaseError:  # the take itself failed (or never ran): nothing written
                raise failed from None
        return take.fetchone(), line.fetchone()


async def arun_take_and_read(conn, sql: str, params: dict, read: tuple[str, list]) -> tuple[tuple | None, tuple]:
    """`run_take_and_read` on psycopg's AsyncConnection `conn` (in autocommit;
    its caller wraps psycopg's errors as Django's): the same steps, awaited."""
    from psycopg import Error

    take, line = conn.cursor(), conn.cursor()
    try:
        async with conn.pipeline() as pipeline:
            await take.execute(sql, params)
            pipeline._enqueue_sync()
            await line.execute(*read)
    except Error as failed:
        try:
            return await take.fetchone(), None
        except Error:
            raise failed from None
    return await take.fetchone(), await line.fetchone()


def apply_place(queue: Queue, ticket: Ticket, row: tuple) -> list:
    """Copy what the update handed out onto the queue and the ticket; return
    the rest of the row."""
    number_day, ticket.number, ticket.seq, queue.version, queue.seats_taken, queue.capacity, \
        _prefix, *rest = row
    if isinstance(number_day, str):  # SQLite returns the column's text
        number_day = date.fromisoformat(number_day)
    ticket.business_day = queue.number_day = number_day
    queue.last_number, queue.last_seq = ticket.number, ticket.seq
    return rest


def written_in_one(queue: Queue, ticket: Ticket, row: tuple, *, actor=None, alias: str | None = None) -> QueueEvent:
    """After `take_in_one` committed: the ticket and queue as written, its
    event announced (no webhook wanted it: the caller has just read that; the
    live push goes out at once, the statement having committed). The event's
    data is built here as `record_event` builds it (the stored jsonb has equal
    values, its keys in PostgreSQL's order, not the screens')."""
    ticket.pk, event_id = apply_place(queue, ticket, row)
    ticket._state.adding, ticket._state.db = False, alias or connection.alias
    entered = (ticket.priority, ticket.seq)
    event = QueueEvent(pk=event_id, queue=queue, version=queue.version, kind=Kind.JOINED, ticket=ticket,
                       status_after=TicketStatus.WAITING, created_at=ticket.queued_at,
                       actor=actor if getattr(actor, "is_authenticated", False) else None,
                       data=event_payload(ticket=ticket, entered_line=entered))
    event._state.adding, event._state.db = False, ticket._state.db
    # The alerts' decision runs here in autocommit, after the statement
    # committed, where `record_event` runs it inside the transaction. Right for
    # a JOINED event, which makes no outbox row, so there is nothing to commit
    # with it: no webhook wants it (the caller has just read that; a location
    # with one takes the locked path), the new ticket has no contact yet (and
    # `alerts.decide.PATIENT_MESSAGE` has no JOINED), and `on_event` skips the
    # "ahead" thresholds for a join (it enters at the back; nobody moves up).
    # Should a join ever make rows, they must be written by the statement (as
    # the webhook's would be on the locked path) or the join take that path.
    # `alias`: written on an async connection of its own (services/_join_async.py),
    # committed, with Django's connection never asked (a blocking call in the loop).
    announce_event(event, queue=queue, ticket=ticket, entered_line=entered, webhooks=[],
                   committed=alias is not None)
    return event
