"""Every invariant the database enforces, broken on purpose with raw SQL writes.

Each test writes around the service layer, straight to the table, and expects
the named constraint to refuse it — on SQLite and on PostgreSQL.
"""

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from queueapp.models import Queue, QueueEvent, Ticket
from queueapp.services import do_call_next, do_join
from tests.conftest import make_counter, make_queue

pytestmark = pytest.mark.django_db

TICKETS = Ticket._meta.db_table
QUEUES = Queue._meta.db_table
EVENTS = QueueEvent._meta.db_table


def refused(sql: str, params=(), constraint: str = "") -> str:
    """Run `sql`, expect the database to refuse it; return the error text."""
    with pytest.raises(IntegrityError) as excinfo:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
    message = str(excinfo.value)
    # PostgreSQL names the constraint; SQLite names it for CHECKs and lists the
    # columns for UNIQUE indexes.
    if constraint and connection.vendor == "postgresql":
        assert constraint in message
    return message


def insert_ticket_sql(**overrides):
    row = {"queue_id": None, "business_day": timezone.now().date(), "number": 1,
           "token": "t" * 22, "priority": 0, "seq": 1, "status": "waiting", "party_size": 1,
           "call_count": 0, "no_show_count": 0, "note": "", "created_at": timezone.now(),
           "queued_at": timezone.now(), "counter_id": None, "offer_expires_at": None}
    row.update(overrides)
    cols = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    return f"INSERT INTO {TICKETS} ({cols}) VALUES ({marks})", list(row.values())


def test_ticket_numbers_are_unique_per_queue_and_day(queue):
    first = do_join(queue)
    sql, params = insert_ticket_sql(queue_id=queue.pk, business_day=first.business_day, number=first.number,
                                    seq=99)
    refused(sql, params, "ticket_unique_number_per_day")


def test_the_same_number_on_another_day_is_allowed(queue):
    first = do_join(queue)
    sql, params = insert_ticket_sql(queue_id=queue.pk, number=first.number, seq=99,
                                    business_day=first.business_day.replace(year=2001))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_ticket_numbers_are_positive(queue):
    ticket = do_join(queue)
    refused(f"UPDATE {TICKETS} SET number = 0 WHERE id = %s", [ticket.pk], "ticket_number_positive")


def test_two_waiting_tickets_cannot_share_a_place(queue):
    a, b = do_join(queue), do_join(queue)
    refused(f"UPDATE {TICKETS} SET seq = %s WHERE id = %s", [a.seq, b.pk], "ticket_unique_place_while_waiting")


def test_a_counter_holds_at_most_one_called_ticket(queue, counter):
    do_join(queue)
    second = do_join(queue)
    do_call_next(counter=counter)
    refused(f"UPDATE {TICKETS} SET status = 'called', counter_id = %s WHERE id = %s",
            [counter.pk, second.pk], "ticket_one_active_per_counter")


def test_a_waiting_ticket_stands_at_no_counter(queue, counter):
    ticket = do_join(queue)
    refused(f"UPDATE {TICKETS} SET counter_id = %s WHERE id = %s", [counter.pk, ticket.pk],
            "ticket_counter_matches_status")


def test_a_called_ticket_stands_at_a_counter(queue):
    ticket = do_join(queue)
    refused(f"UPDATE {TICKETS} SET status = 'serving' WHERE id = %s", [ticket.pk],
            "ticket_counter_matches_status")


def test_an_offer_has_an_expiry(queue):
    ticket = do_join(queue)
    refused(f"UPDATE {TICKETS} SET status = 'offered' WHERE id = %s", [ticket.pk], "ticket_offer_has_expiry")


def test_party_size_is_positive(queue):
    ticket = do_join(queue)
    refused(f"UPDATE {TICKETS} SET party_size = 0 WHERE id = %s", [ticket.pk])


def test_confirmed_seats_never_exceed_capacity(location):
    train = make_queue(location, "Train 101", "T", kind="capacity", capacity=10)
    refused(f"UPDATE {QUEUES} SET seats_taken = 11 WHERE id = %s", [train.pk], "queue_seats_within_capacity")
    with connection.cursor() as cursor:  # exactly full is fine
        cursor.execute(f"UPDATE {QUEUES} SET seats_taken = 10 WHERE id = %s", [train.pk])


def test_counter_queues_have_no_seats(queue):
    refused(f"UPDATE {QUEUES} SET seats_taken = 1 WHERE id = %s", [queue.pk], "queue_seats_within_capacity")
    refused(f"UPDATE {QUEUES} SET capacity = 5 WHERE id = %s", [queue.pk], "queue_capacity_iff_capacity_kind")


def test_event_versions_are_unique_per_queue(queue):
    do_join(queue)
    refused(f"INSERT INTO {EVENTS} (queue_id, version, kind, status_after, created_at, data) "
            "VALUES (%s, 1, 'paused', '', %s, '{}')", [queue.pk, timezone.now()],
            "event_unique_version_per_queue")


def test_event_versions_are_positive(queue):
    refused(f"INSERT INTO {EVENTS} (queue_id, version, kind, status_after, created_at, data) "
            "VALUES (%s, 0, 'paused', '', %s, '{}')", [queue.pk, timezone.now()], "event_version_positive")


def test_the_same_version_in_two_queues_is_fine(location, queue):
    other = make_queue(location, "Lab", "L")
    do_join(queue)
    do_join(other)
    assert set(QueueEvent.objects.values_list("queue_id", "version")) == {(queue.pk, 1), (other.pk, 1)}


def test_counter_names_are_unique_per_location(location):
    make_counter(location, "Counter 1")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_counter(location, "Counter 1")
