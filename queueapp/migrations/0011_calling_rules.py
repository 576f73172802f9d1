# Calling rules per queue (ratio, maximum wait, weight) and across a counter's queues (queueapp.calling).

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('queueapp', '0010_counter_state'),
    ]

    operations = [
        migrations.AddField(
            model_name='counter',
            name='across_queues',
            field=models.CharField(choices=[('priority', 'Highest priority, then longest waiting'), ('longest_wait', 'Longest waiting'), ('weight', "Waiting time times the queue's weight")], default='priority', help_text='How Call next chooses between the queues this counter serves (each queue first applies its own rule).', max_length=16),
        ),
        migrations.AddField(
            model_name='queue',
            name='call_streak',
            field=models.IntegerField(default=0, help_text="The ratio rule's run: > 0 priority calls in a row, < 0 normal ones."),
        ),
        migrations.AddField(
            model_name='queue',
            name='call_weight',
            field=models.PositiveSmallIntegerField(default=1, help_text='For counters that pick across their queues by weight: waiting time counts this many times.', validators=[django.core.validators.MinValueValidator(1)]),
        ),
        migrations.AddField(
            model_name='queue',
            name='calling_rule',
            field=models.CharField(choices=[('priority', 'Strict priority, then line order'), ('ratio', 'A ratio of priority and normal tickets')], default='priority', max_length=16),
        ),
        migrations.AddField(
            model_name='queue',
            name='max_wait_minutes',
            field=models.PositiveIntegerField(blank=True, help_text='Anyone waiting longer than this is called first, whatever their priority. Empty: no limit.', null=True, validators=[django.core.validators.MinValueValidator(1)]),
        ),
        migrations.AddField(
            model_name='queue',
            name='ratio_normal',
            field=models.PositiveSmallIntegerField(default=1, help_text='... then this many normal ones.', validators=[django.core.validators.MinValueValidator(1)]),
        ),
        migrations.AddField(
            model_name='queue',
            name='ratio_priority',
            field=models.PositiveSmallIntegerField(default=2, help_text='With the ratio rule: this many priority (high or urgent) tickets in a row ...', validators=[django.core.validators.MinValueValidator(1)]),
        ),
    ]
