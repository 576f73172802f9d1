# The AlertRule.template help text said "the default English text"; the defaults
# speak the ticket's language. Drop and switch-off reasons were stored as English
# sentences; they are stored as codes now (`models.REASONS`), said in the reader's
# language: the sentences already stored become their codes.

import queueapp.alerts.models
from django.db import migrations, models

DROP_REASONS = {
    "the recipient's subscription was removed": "subscription_removed",
    "the recipient stopped alerts": "alerts_stopped",
    "the address was erased": "address_erased",
    "the webhook endpoint is switched off": "endpoint_off",
    "the staff member has no e-mail address": "no_email",
    "the ticket no longer exists": "ticket_gone",
    "the push subscription is gone": "push_gone",
}
# "the ticket is <status label, lowercased> now"
STATUS_OF_LABEL = {"waiting": "waiting", "called": "called", "being served": "serving", "completed": "completed",
                   "no-show": "no_show", "cancelled": "cancelled", "transferred": "transferred",
                   "offered a place": "offered", "confirmed": "confirmed", "declined": "declined",
                   "offer expired": "expired"}


def to_codes(apps, schema_editor):
    OutboxMessage = apps.get_model("alerts", "OutboxMessage")
    WebhookEndpoint = apps.get_model("alerts", "WebhookEndpoint")
    for sentence, code in DROP_REASONS.items():
        OutboxMessage.objects.filter(drop_reason=sentence).update(drop_reason=code)
    for label, status in STATUS_OF_LABEL.items():
        OutboxMessage.objects.filter(drop_reason=f"the ticket is {label} now").update(
            drop_reason=f"ticket_status:{status}")
    for endpoint in WebhookEndpoint.objects.filter(disabled_reason__startswith="failing since "):
        since = endpoint.disabled_reason.removeprefix("failing since ")
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(disabled_reason=f"failing_since:{since}")


class Migration(migrations.Migration):

    dependencies = [
        ('alerts', '0005_verbose_names'),
    ]

    operations = [
        migrations.AlterField(
            model_name='alertrule',
            name='template',
            field=models.CharField(blank=True, help_text="Empty: the default text, in each ticket's language. A text written here is sent as written, whatever the ticket's language. Fields: {number}, {queue}, {counter}, {ahead}, {time}, {new_number}, {location}.", max_length=400, validators=[queueapp.alerts.models.validate_template], verbose_name='template'),
        ),
        migrations.RunPython(to_codes, migrations.RunPython.noop),
    ]
