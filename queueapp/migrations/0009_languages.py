"""Languages (issue 15): the display's BCP 47 `Location.language` becomes
`default_language` (one fact: the display's speech and page, and a visitor's
fallback), plus the languages a location offers, each ticket's language and
each staff member's preference."""

from django.conf import settings
from django.db import migrations, models

import queueapp.models

SHIPPED = ("en", "de", "es", "ar")


def to_language_code(apps, schema_editor):
    """'en-US' -> 'en', 'de-DE' -> 'de'; a language we do not ship -> 'en'.
    Each location offers its default; its tickets take it."""
    Location = apps.get_model("queueapp", "Location")
    Ticket = apps.get_model("queueapp", "Ticket")
    for location in Location.objects.all():
        code = (location.default_language or "").split("-")[0].lower()
        code = code if code in SHIPPED else "en"
        location.default_language = code
        location.languages = [code]
        location.save(update_fields=["default_language", "languages"])
        if code != "en":
            Ticket.objects.filter(queue__location=location).update(language=code)


def to_bcp47(apps, schema_editor):
    Location = apps.get_model("queueapp", "Location")
    regions = {"en": "en-US", "de": "de-DE", "es": "es-ES", "ar": "ar"}
    for location in Location.objects.all():
        location.default_language = regions.get(location.default_language, "en-US")
        location.save(update_fields=["default_language"])


class Migration(migrations.Migration):
    dependencies = [
        ("queueapp", "0008_bookings"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RenameField("location", "language", "default_language"),
        migrations.AddField(
            model_name="location",
            name="languages",
            field=models.JSONField(
                blank=True, default=queueapp.models.default_languages,
                help_text="The languages visitors may pick on the kiosk, the join page and their "
                          "ticket page (the default language is always offered).",
                validators=[queueapp.models.validate_languages],
            ),
        ),
        migrations.AddField(
            model_name="ticket",
            name="language",
            field=models.CharField(
                choices=[("en", "English"), ("de", "Deutsch"), ("es", "Español"), ("ar", "العربية")],
                default="en", db_default="en",
                help_text="The holder's language: their ticket page and their alerts speak it.",
                max_length=8,
            ),
        ),
        migrations.RunPython(to_language_code, to_bcp47),
        migrations.AlterField(
            model_name="location",
            name="default_language",
            field=models.CharField(
                choices=[("en", "English"), ("de", "Deutsch"), ("es", "Español"), ("ar", "العربية")],
                default="en",
                help_text="The lobby display's language (page and announcements) and a visitor's "
                          "language when their browser asks for none the location offers.",
                max_length=8,
            ),
        ),
        migrations.CreateModel(
            name="StaffPreference",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("language", models.CharField(
                    blank=True, choices=[("en", "English"), ("de", "Deutsch"), ("es", "Español"),
                                         ("ar", "العربية")],
                    help_text="Empty: follow the browser's language.", max_length=8)),
                ("user", models.OneToOneField(on_delete=models.deletion.CASCADE, related_name="preference",
                                              to=settings.AUTH_USER_MODEL)),
            ],
        ),
    ]
