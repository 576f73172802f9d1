"""A join written in one statement (PostgreSQL, `services._take`) writes what the
locked path writes: the same ticket, the same event, the same refusals.

On SQLite every join takes the locked path; these tests then check that path
against the same expectations, so the two paths are held to one description.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from queueapp.alerts.models import WebhookEndpoint
from queueapp.events import instant_us, ticket_snapshot
from queueapp.integrity import validate_queue_integrity
from queueapp.models import Priority, Queue, QueueEvent, Ticket
from queueapp.services import QueueFull, QueuePaused, do_call_next, do_join
from queueapp.models import line_clock

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("numbers_before", [0, 998, 12345])
def test_a_join_writes_the_ticket_and_event_record_event_would(location, queue, staff, numbers_before):
    type(location).objects.filter(pk=location.pk).update(languages=["de"])
    Queue.objects.filter(pk=queue.pk).update(last_number=numbers_before,
                                             number_day=queue.location.business_day())
    before = timezone.now()
    joined = do_join(queue.pk, priority=Priority.HIGH, acting_user=staff, note="wheelchair", language="de")
    ticket = Ticket.objects.select_related("queue").get(pk=joined.pk)
    assert (ticket.status, ticket.number, ticket.token, ticket.priority, ticket.note, ticket.language) == (
        "waiting", numbers_before + 1, joined.token, Priority.HIGH, "wheelchair", "de")
    assert (joined.number, joined.seq, joined.business_day) == (ticket.number, ticket.seq, ticket.business_day)
    assert ticket.seq >= line_clock(before)  # the line clock's now: a booking can stand between two joins
    event = QueueEvent.objects.get(ticket=ticket)
    assert (event.kind, event.status_after, event.actor) == (QueueEvent.Kind.JOINED, "waiting", staff)
    assert event.data == {"entered": [ticket.priority, ticket.seq], "entered_at": instant_us(ticket.queued_at),
                          "ticket": ticket_snapshot(ticket)}
    assert event.version == Queue.objects.get(pk=queue.pk).version == 1


def test_joins_in_one_number_and_place_in_order(location, queue, counter):
    tickets = [do_join(queue) for _ in range(3)] + [do_join(queue, priority=Priority.HIGH)]
    assert [t.display_number for t in tickets] == ["A-001", "A-002", "A-003", "A-004"]
    assert tickets[0].seq < tickets[1].seq < tickets[2].seq
    assert do_call_next(queue, counter=counter).pk == tickets[3].pk  # priority first
    assert validate_queue_integrity(queue) == []


def test_a_paused_queue_refuses_a_join_and_writes_nothing(queue):
    do_join(queue)
    Queue.objects.filter(pk=queue.pk).update(is_paused=True)
    with pytest.raises(QueuePaused):
        do_join(queue.pk)
    assert Ticket.objects.count() == 1 and Queue.objects.get(pk=queue.pk).version == 1
    assert validate_queue_integrity(queue) == []


def test_a_waiting_limit_is_counted_exactly(queue):
    Queue.objects.filter(pk=queue.pk).update(max_waiting=2)
    do_join(queue.pk)
    do_join(queue.pk)
    with pytest.raises(QueueFull):
        do_join(queue.pk)
    assert Ticket.objects.count() == 2 and validate_queue_integrity(queue) == []


def test_a_join_a_webhook_wants_writes_its_outbox_row_in_the_same_commit(location, queue):
    from queueapp.alerts.models import OutboxMessage

    WebhookEndpoint.objects.create(location=location, url="http://127.0.0.1:9/hook", event_types=["joined"])
    ticket = do_join(queue.pk)
    row = OutboxMessage.objects.get()
    assert (row.ticket_id, row.subject) == (ticket.pk, "joined")


def test_a_new_business_day_starts_the_numbers_again(queue):
    yesterday = queue.location.business_day() - timedelta(days=1)
    Queue.objects.filter(pk=queue.pk).update(last_number=41, number_day=yesterday)
    assert do_join(queue.pk).display_number == "A-001"


def test_a_compiled_read_builds_the_instances_the_orm_builds(location, queue, django_assert_num_queries):
    # The join's queue read and the API's token read are compiled once per process
    # (dbfunctions.CompiledSelect.first): same fields, related objects and annotations.
    from django.db import connection
    from django.db.models import Exists, OuterRef

    from queueapp.api.auth import issue_token
    from queueapp.dbfunctions import CompiledSelect
    from queueapp.models import ApiToken

    WebhookEndpoint.objects.create(location=location, url="http://127.0.0.1:9/hook", is_active=False)
    Queue.objects.filter(pk=queue.pk).update(is_paused=True, max_waiting=7, last_number=3)

    def build(queue_id):
        return (Queue.objects.select_related("location", "waiting_room")
                .annotate(has_webhooks=Exists(WebhookEndpoint.objects.filter(location_id=OuterRef("location_id"),
                                                                             is_active=True)))
                .filter(pk=queue_id))

    read = CompiledSelect(build, queue_id=-(2**40) - 1)
    for _ in range(2):  # compiled, then reused
        with django_assert_num_queries(1):
            got = read.first(connection.alias, queue_id=queue.pk)
            # (no query: the location and the absent waiting room were read with it)
            assert (got.location.business_day(), got.room_slug) == (location.business_day(), None)
        want = build(queue.pk).get()
        assert [getattr(got, f.attname) for f in Queue._meta.concrete_fields] == [
            getattr(want, f.attname) for f in Queue._meta.concrete_fields]
        assert got.location.__dict__.keys() >= {"name", "timezone", "languages"}
        assert (got.location.languages, got.location.timezone) == (location.languages, location.timezone)
        assert got.has_webhooks is False  # (the only endpoint is switched off)
        assert not got._state.adding and got._state.db == connection.alias
    assert read.first(connection.alias, queue_id=queue.pk + 1000) is None

    token, key = issue_token(location=location, kind="kiosk", name="Door")
    tokens = CompiledSelect(lambda digest: ApiToken.objects.select_related("user", "location").filter(digest=digest),
                            digest="not a digest")
    found = tokens.first(connection.alias, digest=token.digest)
    assert (found.pk, found.user, found.location.slug, found.last_used_at) == (
        token.pk, None, location.slug, token.last_used_at)


def test_a_join_inside_a_callers_transaction_is_refused_as_before(queue):
    # Every join is its own durable transaction; the one-statement path must not
    # quietly run inside a caller's (it would hold the queue row until that commits).
    from django.db import transaction
    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        do_join(queue.pk)
    assert not Ticket.objects.filter(queue=queue).exists()


@pytest.mark.django_db(transaction=True)
def test_the_read_sent_with_a_take_runs_after_the_take_committed(queue):
    """`run_take_and_read`: one round trip, two transactions. The read runs in
    one of its own (no transaction id of the take's), so the take's lock on
    the queue row is not held while the read runs, and it sees the take."""
    from django.db import connection

    from queueapp.services._take import run_take_and_read

    if connection.vendor != "postgresql":
        pytest.skip("pipeline mode is PostgreSQL's")
    take = f"UPDATE {Queue._meta.db_table} SET last_number = last_number + 1 WHERE id = %(queue)s " \
           "RETURNING txid_current(), last_number"
    read = (f"SELECT txid_current_if_assigned(), last_number FROM {Queue._meta.db_table} WHERE id = %s", [queue.pk])
    (take_xid, number), (read_xid, seen) = run_take_and_read(take, {"queue": queue.pk}, read)
    assert take_xid is not None and read_xid is None and seen == number == 1
