"""`manage.py compile_translations`: locale/*/LC_MESSAGES/*.po -> .mo with Babel.

Django's own `compilemessages` needs GNU gettext's msgfmt, which a fresh
machine may not have; `make run`/`make test` and the Docker build run this
instead (queueapp/management/translations.py).
"""

from django.core.management.base import BaseCommand

from queueapp.management.translations import compile_catalogs


class Command(BaseCommand):
    help = "Compile the .po translation catalogs to .mo (only those out of date, unless --force)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Compile every catalog.")

    def handle(self, *args, force=False, **options):
        for path in compile_catalogs(force=force):
            self.stdout.write(f"compiled {path}")
