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
    with pytest.raises(IntegrityError, match="append-only"):
        raw("DELETE FROM queueapp_queueevent")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        QueueEvent.objects.all()._raw_delete(QueueEvent.objects.db)
    assert QueueEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_flush_still_empties_the_events_table(queue):
    # PostgreSQL: TRUNCATE fires no row trigger; SQLite: the trigger lets Django's flush through.
    do_join(queue)
    do_join(queue)
    call_command("flush", interactive=False, verbosity=0)
    assert QueueEvent.objects.count() == 0


@pytest.mark.django_db
def test_a_connection_without_our_functions_cannot_delete_events(queue):
    """The sqlite3 shell, say: the trigger's guard function is unknown there."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only: the PostgreSQL trigger needs no helper function")
    import sqlite3

    shell = sqlite3.connect(connection.settings_dict["NAME"], timeout=1)
    try:
        with pytest.raises(sqlite3.OperationalError, match="no such function: queueapp_flushing"):
            shell.execute("DELETE FROM queueapp_queueevent WHERE id < 0")
    finally:
        shell.close()
