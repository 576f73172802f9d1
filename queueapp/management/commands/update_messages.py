"""`manage.py update_messages` (`make messages`): bring every shipped language's
catalogs up to date with the code, the way tests/test_translations.py extracts.

It runs Django's makemessages (GNU gettext's xgettext/msgmerge) for the Python
and template messages (`django`) and the JavaScript ones (`djangojs`); new
messages appear with an empty `msgstr` for you to translate (README,
"Languages").
"""

import re
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from queueapp.management.translations import DOMAINS, catalogs

STAMP = re.compile(r'^"POT-Creation-Date: [^"]*"$', re.M)
FIXED_STAMP = r'"POT-Creation-Date: 2026-01-01 00:00+0000\n"'

# Only our code: not the virtualenv, collected static files, tests or tooling.
IGNORE = [".venv", "venv", "staticfiles", "tests", "bench", "scripts", "docs", "node_modules", "locale"]


class Command(BaseCommand):
    help = "Update locale/*/LC_MESSAGES/*.po from the code's messages (needs GNU gettext)."

    def handle(self, *args, **options):
        languages = [code for code, _ in settings.LANGUAGES if code != settings.LANGUAGE_CODE]
        for domain in DOMAINS:
            call_command("makemessages", locale=languages, domain=domain, ignore_patterns=IGNORE,
                         no_location=True, no_wrap=True, no_obsolete=True, verbosity=0)
        # The extraction time would change every catalog's header on every run,
        # a merge conflict between any two branches that both add a string.
        for _code, _domain, po in catalogs():
            if Path(po).exists():
                text = po.read_text(encoding="utf-8")
                po.write_text(STAMP.sub(lambda _m: FIXED_STAMP, text), encoding="utf-8")
