"""`WaitingCount` and the triggers that keep it (see its docstring).

The triggers are the count's only writers, so they live in the database: on
PostgreSQL one row trigger function; on SQLite three triggers (it has no
trigger functions). A ticket changing status, priority or queue is taken
out of the old (queue, priority) count if it was waiting and added to the new
one if it waits now. A decrement only updates a row that exists: deleting a
queue (Django's collector deletes its counts and tickets in either order)
never writes a count back. Existing lines are counted once at the end.
"""

import django.db.models.deletion
from django.db import migrations, models

_OUT = ("UPDATE queueapp_waitingcount SET waiting = waiting - 1 "
        "WHERE queue_id = OLD.queue_id AND priority = OLD.priority")
_IN = ("INSERT INTO queueapp_waitingcount (queue_id, priority, waiting) {source} "
       "ON CONFLICT (queue_id, priority) DO UPDATE SET waiting = queueapp_waitingcount.waiting + 1")
_MOVED = ("(OLD.status = 'waiting' OR NEW.status = 'waiting') AND (OLD.status IS DISTINCT FROM NEW.status "
          "OR OLD.priority IS DISTINCT FROM NEW.priority OR OLD.queue_id IS DISTINCT FROM NEW.queue_id)")

POSTGRESQL = [
    f"""CREATE FUNCTION queueapp_count_waiting() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' AND OLD.status = 'waiting' THEN
            {_OUT};
        END IF;
        IF TG_OP <> 'DELETE' AND NEW.status = 'waiting' THEN
            {_IN.format(source="VALUES (NEW.queue_id, NEW.priority, 1)")};
        END IF;
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER queueapp_ticket_waiting_in AFTER INSERT ON queueapp_ticket FOR EACH ROW "
    "WHEN (NEW.status = 'waiting') EXECUTE FUNCTION queueapp_count_waiting()",
    "CREATE TRIGGER queueapp_ticket_waiting_out AFTER DELETE ON queueapp_ticket FOR EACH ROW "
    "WHEN (OLD.status = 'waiting') EXECUTE FUNCTION queueapp_count_waiting()",
    "CREATE TRIGGER queueapp_ticket_waiting_moved AFTER UPDATE OF status, priority, queue_id ON queueapp_ticket "
    f"FOR EACH ROW WHEN ({_MOVED}) EXECUTE FUNCTION queueapp_count_waiting()",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS queueapp_ticket_waiting_in ON queueapp_ticket",
    "DROP TRIGGER IF EXISTS queueapp_ticket_waiting_out ON queueapp_ticket",
    "DROP TRIGGER IF EXISTS queueapp_ticket_waiting_moved ON queueapp_ticket",
    "DROP FUNCTION IF EXISTS queueapp_count_waiting()",
]
SQLITE = [
    "CREATE TRIGGER queueapp_ticket_waiting_in AFTER INSERT ON queueapp_ticket "
    f"WHEN NEW.status = 'waiting' BEGIN {_IN.format(source='VALUES (NEW.queue_id, NEW.priority, 1)')}; END",
    f"CREATE TRIGGER queueapp_ticket_waiting_out AFTER DELETE ON queueapp_ticket "
    f"WHEN OLD.status = 'waiting' BEGIN {_OUT}; END",
    # SQLite has no IS DISTINCT FROM: IS NOT is its null-safe inequality.
    "CREATE TRIGGER queueapp_ticket_waiting_moved AFTER UPDATE OF status, priority, queue_id ON queueapp_ticket "
    f"WHEN {_MOVED.replace('IS DISTINCT FROM', 'IS NOT')} BEGIN "
    f"{_OUT} AND OLD.status = 'waiting'; "
    f"{_IN.format(source='SELECT NEW.queue_id, NEW.priority, 1 WHERE NEW.status = ' + chr(39) + 'waiting' + chr(39))}; "
    "END",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS queueapp_ticket_waiting_in",
    "DROP TRIGGER IF EXISTS queueapp_ticket_waiting_out",
    "DROP TRIGGER IF EXISTS queueapp_ticket_waiting_moved",
]
COUNT_EXISTING = ("INSERT INTO queueapp_waitingcount (queue_id, priority, waiting) "
                  "SELECT queue_id, priority, COUNT(*) FROM queueapp_ticket WHERE status = 'waiting' "
                  "GROUP BY queue_id, priority")


def _run(statements):
    def run(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        chosen = statements.get(vendor)
        if chosen is None:
            raise RuntimeError(f"queueapp keeps its waiting counts by trigger on PostgreSQL and SQLite, not {vendor}")
        for statement in chosen:
            schema_editor.execute(statement)
    return run


class Migration(migrations.Migration):

    dependencies = [
        ('queueapp', '0015_ticket_left_line_idx'),
    ]

    operations = [
        migrations.CreateModel(
            name='WaitingCount',
            fields=[
                ('pk', models.CompositePrimaryKey('queue', 'priority', blank=True, editable=False, primary_key=True, serialize=False)),
                ('priority', models.SmallIntegerField(choices=[(0, 'Normal'), (10, 'High'), (20, 'Urgent')], verbose_name='priority')),
                ('waiting', models.IntegerField(default=0, verbose_name='waiting')),
                ('queue', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='waiting_counts', to='queueapp.queue', verbose_name='queue')),
            ],
            options={
                'verbose_name': 'waiting count',
                'verbose_name_plural': 'waiting counts',
            },
        ),
        migrations.RunPython(
            _run({"postgresql": [*POSTGRESQL, COUNT_EXISTING], "sqlite": [*SQLITE, COUNT_EXISTING]}),
            _run({"postgresql": POSTGRESQL_DROP, "sqlite": SQLITE_DROP}),
        ),
    ]
