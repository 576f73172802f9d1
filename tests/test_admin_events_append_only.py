"""The audit trail is append-only in the database itself, not only in the admin."""

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from queueapp.models import QueueEvent
from queueapp.services import do_join


def raw(sql: str, *params) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.django_db
def test_event_rows_refuse_raw_update(queue):
    do_join(queue)
    event = QueueEvent.objects.get()
    with pytest.raises(IntegrityError, match="append-only"):
        raw("UPDATE queueapp_queueevent SET kind = %s WHERE id = %s", "cancelled", event.pk)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        QueueEvent.objects.filter(pk=event.pk).update(status_after="completed")
    event.refresh_from_db()
    assert (event.kind, event.status_after) == ("joined", "waiting")


@pytest.mark.django_db
def test_event_rows_refuse_raw_delete(queue):
    do_join(queue)
    if connection.vendor != "postgresql":
        # SQLite test flushes are row DELETEs: a trigger would break them (see migration 0003).
        pytest.skip("DELETE is refused by a trigger on PostgreSQL only")
    with pytest.raises(IntegrityError, match="append-only"):
        raw("DELETE FROM queueapp_queueevent")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        QueueEvent.objects.all()._raw_delete(QueueEvent.objects.db)
    assert QueueEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_flush_still_empties_the_events_table(queue):
    # Django's test flush (TRUNCATE on PostgreSQL) fires no row trigger.
    do_join(queue)
    do_join(queue)
    call_command("flush", interactive=False, verbosity=0)
    assert QueueEvent.objects.count() == 0
