"""QueueEvent is append-only: the database itself refuses UPDATE and DELETE.

PostgreSQL: a row-level BEFORE UPDATE OR DELETE trigger raises. TRUNCATE fires
no row trigger, so Django's test flush (TRUNCATE ...) still empties the table;
nothing in the application truncates.

SQLite: BEFORE UPDATE and BEFORE DELETE triggers. Django empties SQLite tables
with row DELETEs (`manage.py flush`, transactional test teardown), so the
DELETE trigger lets rows go only while `queueapp_flushing()` says Django's
flush is running (a function each connection gets in
`queueapp.dbfunctions.register_sqlite_functions`; the sqlite3 shell lacks it,
so it cannot delete events at all). A later migration that rebuilds the table
on SQLite drops its triggers: `tests/test_admin_events_append_only.py` would
then fail and say so.
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
# The sqlite3 driver runs one statement per execute().
SQLITE_FORWARD = [
    """CREATE TRIGGER IF NOT EXISTS queueevent_no_update
    BEFORE UPDATE ON queueapp_queueevent
    BEGIN
        SELECT RAISE(ABORT, 'queueapp_queueevent is append-only: UPDATE refused');
    END""",
    """CREATE TRIGGER IF NOT EXISTS queueevent_no_delete
    BEFORE DELETE ON queueapp_queueevent
    WHEN NOT queueapp_flushing()
    BEGIN
        SELECT RAISE(ABORT, 'queueapp_queueevent is append-only: DELETE refused');
    END""",
]
SQLITE_BACKWARD = ["DROP TRIGGER IF EXISTS queueevent_no_update",
                   "DROP TRIGGER IF EXISTS queueevent_no_delete"]


def _run(schema_editor, by_vendor: dict) -> None:
    for statement in by_vendor.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement, params=None)


def forward(apps, schema_editor):
    _run(schema_editor, {"postgresql": [PG_FORWARD], "sqlite": SQLITE_FORWARD})


def backward(apps, schema_editor):
    _run(schema_editor, {"postgresql": [PG_BACKWARD], "sqlite": SQLITE_BACKWARD})


class Migration(migrations.Migration):
    dependencies = [("queueapp", "0001_initial")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
