"""validate_queue_integrity finds each kind of corruption, and the command reports it.

Corruption is written with raw SQL. Where a database constraint would refuse
it, the test drops that constraint inside its own transaction first (rolled
back afterwards), to show the checker catches what a weaker database, a
restored backup or a manual fix-up could leave behind.
"""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone, translation

from queueapp.integrity import validate_queue_integrity
from queueapp.models import Queue, QueueEvent, Ticket
from queueapp.services import do_call_next, do_join
from tests.conftest import make_counter, make_queue

pytestmark = pytest.mark.django_db

TICKETS = Ticket._meta.db_table


def sql(statement, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def drop_constraint(name: str, table: str = TICKETS) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Django's foreign keys are deferred; ALTER TABLE refuses to run
            # while their checks are pending, so run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SELECT 1 FROM pg_constraint WHERE conname = %s", [name])
            if cursor.fetchone():
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            else:
                cursor.execute(f'DROP INDEX "{name}"')
            return
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = %s", [name])
        if cursor.fetchone():
            cursor.execute(f'DROP INDEX "{name}"')
        elif f'CONSTRAINT "{name}" CHECK' in _sqlite_table_sql(cursor, table):
            # A CHECK inside the table definition: SQLite lets a connection ignore them.
            cursor.execute("PRAGMA ignore_check_constraints = ON")
        else:
            pytest.skip(f"SQLite keeps {name} inside the table definition; checked on PostgreSQL")


def _sqlite_table_sql(cursor, table):
    cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", [table])
    return cursor.fetchone()[0]


@pytest.fixture(autouse=True)
def _restore_sqlite_checks():
    yield
    if connection.vendor == "sqlite":
        sql("PRAGMA ignore_check_constraints = OFF")


def codes(queue=None):
    return sorted({p.code for p in validate_queue_integrity(queue)})


@pytest.fixture
def busy_queue(queue, counter):
    for _ in range(4):
        do_join(queue)
    do_call_next(counter=counter)
    return queue


def test_a_queue_in_use_is_clean(busy_queue):
    assert validate_queue_integrity(busy_queue) == []
    assert validate_queue_integrity() == []


def test_missing_numbers_are_reported(busy_queue):
    ticket = Ticket.objects.get(queue=busy_queue, number=2)
    sql(f"UPDATE {TICKETS} SET number = 9 WHERE id = %s", [ticket.pk])
    problems = validate_queue_integrity(busy_queue)
    assert {"missing_number", "number_counter"} <= {p.code for p in problems}
    missing = next(p for p in problems if p.code == "missing_number")
    assert "2, 5, 6, 7, 8" in missing.message


def test_duplicate_numbers_are_reported(busy_queue):
    drop_constraint("ticket_unique_number_per_day")
    ticket = Ticket.objects.get(queue=busy_queue, number=2)
    sql(f"UPDATE {TICKETS} SET number = 1 WHERE id = %s", [ticket.pk])
    problems = validate_queue_integrity(busy_queue)
    assert any(p.code == "duplicate_number" and "A-001 issued 2 times" in p.message for p in problems)


def test_version_gaps_are_reported(busy_queue):
    sql(f"INSERT INTO {QueueEvent._meta.db_table} (queue_id, version, kind, status_after, created_at, data) "
        "VALUES (%s, %s, 'paused', '', %s, '{}')", [busy_queue.pk, busy_queue.version + 9, timezone.now()])
    busy_queue.refresh_from_db()
    assert codes(busy_queue) == ["version_counter", "version_gap"]


def test_a_status_its_events_do_not_explain_is_reported(busy_queue):
    ticket = Ticket.objects.filter(queue=busy_queue, status="waiting").first()
    sql(f"UPDATE {TICKETS} SET status = 'completed' WHERE id = %s", [ticket.pk])
    problems = validate_queue_integrity(busy_queue)
    assert [(p.code, p.ticket_id) for p in problems] == [("status_mismatch", ticket.pk)]
    assert "is completed but its events say waiting" in problems[0].message
    # The admin's report speaks its reader's language; the code stays for machines.
    with translation.override("de"):
        problem, = validate_queue_integrity(busy_queue)
    assert problem.code == "status_mismatch"
    assert problem.message == f"{ticket.display_number} ist abgeschlossen, aber seine Ereignisse sagen wartend."
    with translation.override("ar"):
        problem, = validate_queue_integrity(busy_queue)
    assert problem.message == f"التذكرة {ticket.display_number} حالتها مكتمل لكن أحداثها تقول في الانتظار."


def test_a_ticket_written_without_any_event_is_reported(busy_queue):
    sql(f"UPDATE {Queue._meta.db_table} SET last_number = 5 WHERE id = %s", [busy_queue.pk])
    sql(f"INSERT INTO {TICKETS} (queue_id, business_day, number, token, priority, seq, status, party_size, "
        "call_count, no_show_count, note, created_at, queued_at) "
        "VALUES (%s, %s, 5, 'sneaky-token-000000000', 0, 99, 'waiting', 1, 0, 0, '', %s, %s)",
        [busy_queue.pk, Ticket.objects.first().business_day, timezone.now(), timezone.now()])
    assert codes(busy_queue) == ["no_events"]


def test_a_ticket_waiting_and_at_a_counter_is_reported(busy_queue, counter):
    drop_constraint("ticket_counter_matches_status")
    ticket = Ticket.objects.filter(queue=busy_queue, status="waiting").first()
    sql(f"UPDATE {TICKETS} SET counter_id = %s WHERE id = %s", [counter.pk, ticket.pk])
    assert codes(busy_queue) == ["waiting_at_counter"]


def test_a_counter_with_two_tickets_is_reported(busy_queue, counter):
    drop_constraint("ticket_one_active_per_counter")
    ticket = Ticket.objects.filter(queue=busy_queue, status="waiting").first()
    sql(f"UPDATE {TICKETS} SET status = 'called', counter_id = %s WHERE id = %s", [counter.pk, ticket.pk])
    problems = validate_queue_integrity(busy_queue)
    assert {"counter_overfull", "status_mismatch"} == {p.code for p in problems}
    assert any("Counter 1 holds 2 called/serving tickets" in p.message for p in problems)


def test_two_waiting_tickets_on_one_place_are_reported(busy_queue):
    drop_constraint("ticket_unique_place_while_waiting")
    first, second = Ticket.objects.filter(queue=busy_queue, status="waiting")[:2]
    sql(f"UPDATE {TICKETS} SET seq = %s WHERE id = %s", [first.seq, second.pk])
    assert codes(busy_queue) == ["shared_place"]


def test_a_seat_counter_that_disagrees_with_the_confirmed_requests_is_reported(location):
    train = make_queue(location, "Train 101", "T", kind="capacity", capacity=10)
    do_join(train, party_size=3)
    assert validate_queue_integrity(train) == []
    sql(f"UPDATE {Queue._meta.db_table} SET seats_taken = 5 WHERE id = %s", [train.pk])
    problems = validate_queue_integrity(train)
    assert [p.code for p in problems] == ["seat_counter"]
    assert "says 5 taken" in problems[0].message and "hold 3" in problems[0].message


def test_checking_one_queue_ignores_another(location, busy_queue):
    other = make_queue(location, "Lab", "L")
    make_counter(location, "Lab desk", [other])
    do_join(other)
    sql(f"UPDATE {TICKETS} SET number = 7 WHERE queue_id = %s", [other.pk])
    assert validate_queue_integrity(busy_queue) == []
    assert "missing_number" in codes(other)
    assert "missing_number" in codes(None)


def test_command_exit_status_and_report(busy_queue, capsys):
    call_command("validate_queue_integrity")
    assert "All queues are consistent." in capsys.readouterr().out
    ticket = Ticket.objects.get(queue=busy_queue, number=3)
    sql(f"UPDATE {TICKETS} SET number = 8 WHERE id = %s", [ticket.pk])
    with pytest.raises(SystemExit) as exited:
        call_command("validate_queue_integrity")
    assert exited.value.code == 1
    out = capsys.readouterr().out
    assert f"queue {busy_queue.pk}: [missing_number]" in out and "problems found." in out
    with translation.override("de"), pytest.raises(SystemExit):
        call_command("validate_queue_integrity")
    out = capsys.readouterr().out
    assert f"Warteschlange {busy_queue.pk}: [missing_number]" in out and "Probleme gefunden." in out
    with pytest.raises(SystemExit):
        call_command("validate_queue_integrity", "--json", "--queue", str(busy_queue.pk))
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert {"missing_number", "number_counter"} <= {p["code"] for p in report["problems"]}


def test_command_names_an_unknown_queue():
    with pytest.raises(CommandError, match="no queue with id 4242"):
        call_command("validate_queue_integrity", "--queue", "4242")
