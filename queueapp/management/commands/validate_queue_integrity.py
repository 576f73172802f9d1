"""Print the integrity report; exit status 1 when anything is wrong. Its lines
are in the active language (the settings' LANGUAGE_CODE), as the problems'
sentences are."""

import json
import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext, ngettext

from queueapp.integrity import validate_queue_integrity
from queueapp.models import Queue


class Command(BaseCommand):
    help = "Check queues for gaps, mismatches and double bookings the database cannot refuse."

    def add_arguments(self, parser):
        parser.add_argument("--queue", type=int, help="Only this queue id (default: all queues).")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the problems as JSON.")

    def handle(self, *args, queue=None, as_json=False, **options):
        if queue is not None and not Queue.objects.filter(pk=queue).exists():
            raise CommandError(gettext("There is no queue with id %(id)s.") % {"id": queue})
        problems = validate_queue_integrity(queue)
        if as_json:
            self.stdout.write(json.dumps({"ok": not problems,
                                           "problems": [p.as_dict() for p in problems]}, indent=2))
        elif problems:
            for p in problems:
                where = (gettext("queue %(id)s") % {"id": p.queue_id} if p.queue_id
                         else gettext("counter %(id)s") % {"id": p.counter_id})
                self.stdout.write(f"{where}: [{p.code}] {p.message}")
            self.stdout.write(self.style.ERROR(ngettext(
                "%(count)s problem found.", "%(count)s problems found.", len(problems)) % {"count": len(problems)}))
        else:
            self.stdout.write(self.style.SUCCESS(gettext("All queues are consistent.")))
        if problems:
            sys.exit(1)

