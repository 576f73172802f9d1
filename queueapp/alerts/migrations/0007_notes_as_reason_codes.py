# A manager's reset note in a message's attempt log was stored tab-separated
# ("reset", who, attempts, last error), a second encoding beside the reasons'
# "code:param". Notes are reason codes now (`models.REASONS`: "reset:3:bob",
# "reset_error:3:bob:HTTP 500"), said by the one `say_reason`: the notes already
# stored are rewritten into that shape. Anything else (an English note from
# before the codes) is left as it is and still shows as stored.

from django.db import migrations


def tabbed_to_code(note: str) -> str | None:
    """The reason code of an old tab-separated reset note, or None if it is not one."""
    kind, *rest = note.split("\t", 3)
    if kind != "reset" or len(rest) != 3 or not rest[1].isdigit():
        return None
    who, attempts, error = rest
    who = who.replace(":", " ")  # as `reason_code` stores a parameter before the last
    return (f"reset_error:{attempts}:{who}:{error}" if error else f"reset:{attempts}:{who}")[:200]


def to_codes(apps, schema_editor):
    DeliveryAttempt = apps.get_model("alerts", "DeliveryAttempt")
    for attempt in DeliveryAttempt.objects.filter(note__startswith="reset\t").only("pk", "note"):
        code = tabbed_to_code(attempt.note)
        if code is not None:
            DeliveryAttempt.objects.filter(pk=attempt.pk).update(note=code)


class Migration(migrations.Migration):

    dependencies = [
        ("alerts", "0006_reasons_as_codes"),
    ]

    operations = [
        migrations.RunPython(to_codes, migrations.RunPython.noop),
    ]
