# Counters: open, on a break (with a reason) or closed, and their history.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def closed_where_not_open(apps, schema_editor):
    # `is_open` becomes `state`: a counter that was not open is closed.
    Counter = apps.get_model("queueapp", "Counter")
    Counter.objects.filter(is_open=False).update(state="closed")


def open_where_open(apps, schema_editor):
    Counter = apps.get_model("queueapp", "Counter")
    Counter.objects.exclude(state="open").update(is_open=False)


class Migration(migrations.Migration):

    dependencies = [
        ('queueapp', '0009_languages'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='CounterStateChange',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('state', models.CharField(choices=[('open', 'Open'), ('break', 'On break'), ('closed', 'Closed')], max_length=8)),
                ('reason', models.CharField(blank=True, choices=[('lunch', 'Lunch'), ('short', 'Short break'), ('meeting', 'Meeting'), ('other', 'Other')], max_length=16)),
                ('previous_state', models.CharField(choices=[('open', 'Open'), ('break', 'On break'), ('closed', 'Closed')], max_length=8)),
                ('at', models.DateTimeField(default=django.utils.timezone.now)),
                ('held_action', models.CharField(blank=True, choices=[('finish', 'Finish it (completed)'), ('requeue', 'Put it back at the front of its queue'), ('transfer', 'Transfer it to another queue')], max_length=8)),
            ],
            options={
                'ordering': ['counter', 'at', 'pk'],
            },
        ),
        migrations.AddField(
            model_name='counter',
            name='break_reason',
            field=models.CharField(blank=True, choices=[('lunch', 'Lunch'), ('short', 'Short break'), ('meeting', 'Meeting'), ('other', 'Other')], help_text='Why the counter is on a break (only while on a break).', max_length=16),
        ),
        migrations.AddField(
            model_name='counter',
            name='state',
            field=models.CharField(choices=[('open', 'Open'), ('break', 'On break'), ('closed', 'Closed')], default='open', help_text='Open counters call tickets and count in wait estimates.', max_length=8),
        ),
        migrations.RunPython(closed_where_not_open, open_where_open),
        migrations.RemoveField(
            model_name='counter',
            name='is_open',
        ),
        migrations.AlterField(
            model_name='queueevent',
            name='kind',
            field=models.CharField(choices=[('joined', 'Joined'), ('called', 'Called'), ('recalled', 'Recalled'), ('started', 'Started'), ('completed', 'Completed'), ('no_show', 'No Show'), ('requeued', 'Requeued'), ('cancelled', 'Cancelled'), ('transferred_out', 'Transferred Out'), ('transferred_in', 'Transferred In'), ('paused', 'Paused'), ('resumed', 'Resumed'), ('confirmed', 'Confirmed'), ('offered', 'Offered'), ('accepted', 'Accepted'), ('declined', 'Declined'), ('expired', 'Expired'), ('capacity_changed', 'Capacity Changed'), ('booked', 'Booked'), ('booking_moved', 'Booking Moved'), ('booking_cancelled', 'Booking Cancelled'), ('booking_missed', 'Booking Missed'), ('counter_state', 'Counter State')], max_length=32),
        ),
        migrations.AddConstraint(
            model_name='counter',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('state', 'break'), models.Q(('break_reason', ''), _negated=True)), models.Q(models.Q(('state', 'break'), _negated=True), ('break_reason', '')), _connector='OR'), name='counter_break_has_reason'),
        ),
        migrations.AddField(
            model_name='counterstatechange',
            name='counter',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='state_changes', to='queueapp.counter'),
        ),
        migrations.AddField(
            model_name='counterstatechange',
            name='held_ticket',
            field=models.ForeignKey(blank=True, help_text='The ticket the counter held, if any.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='queueapp.ticket'),
        ),
        migrations.AddField(
            model_name='counterstatechange',
            name='staff',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='counter_state_changes', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddIndex(
            model_name='counterstatechange',
            index=models.Index(fields=['counter', 'at'], name='counterstate_by_counter_time'),
        ),
    ]
