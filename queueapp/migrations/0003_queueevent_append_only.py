"""QueueEvent is append-only: the database itself refuses UPDATE and DELETE.

PostgreSQL: a row-level BEFORE UPDATE OR DELETE trigger raises. TRUNCATE fires
no row trigger, so Django's test flush (TRUNCATE ...) still empties the table;
nothing in the application truncates.

SQLite: a BEFORE UPDATE trigger only. Django flushes SQLite test databases with
`DELETE FROM <table>` (row deletes, in an order that changes from run to run),
so a DELETE trigger would break every transactional test; the admin and the
PROTECT foreign keys already keep the application from deleting events.
A later migration that rebuilds the table on SQLite drops its trigger: the test
`test_event_rows_refuse_raw_update` would then fail and say so.
"""

from django.db import migrations

PG_FORWARD = """
CREATE OR REPLACE FUNCTION queueapp_queueevent_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'queueapp_queueevent is append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;
CREATE TRIGGER queueevent_append_only
    BEFORE UPDATE OR DELETE ON queueapp_queueevent
    FOR EACH ROW EXECUTE FUNCTION queueapp_queueevent_append_only();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS queueevent_append_only ON queueapp_queueevent;
DROP FUNCTION IF EXISTS queueapp_queueevent_append_only();
"""
SQLITE_FORWARD = """
CREATE TRIGGER IF NOT EXISTS queueevent_no_update
BEFORE UPDATE ON queueapp_queueevent
BEGIN
    SELECT RAISE(ABORT, 'queueapp_queueevent is append-only: UPDATE refused');
END;
"""
SQLITE_BACKWARD = "DROP TRIGGER IF EXISTS queueevent_no_update;"


def forward(apps, schema_editor):
    sql = {"postgresql": PG_FORWARD, "sqlite": SQLITE_FORWARD}.get(schema_editor.connection.vendor)
    if sql:
        schema_editor.execute(sql, params=None)


def backward(apps, schema_editor):
    sql = {"postgresql": PG_BACKWARD, "sqlite": SQLITE_BACKWARD}.get(schema_editor.connection.vendor)
    if sql:
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("queueapp", "0001_initial")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
