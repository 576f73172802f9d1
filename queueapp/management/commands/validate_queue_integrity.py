"""Print the integrity report; exit status 1 when anything is wrong."""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from queueapp.integrity import validate_queue_integrity
from queueapp.models import Queue


class Command(BaseCommand):
    help = "Check queues for gaps, mismatches and double bookings the database cannot refuse."

    def add_arguments(self, parser):
        parser.add_argument("--queue", type=int, help="Only this queue id (default: all queues).")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the problems as JSON.")

    def handle(self, *args, queue=None, as_json=False, **options):
        if queue is not None and not Queue.objects.filter(pk=queue).exists():
            raise CommandError(f"There is no queue with id {queue}.")
        problems = validate_queue_integrity(queue)
        if as_json:
            self.stdout.write(json.dumps({"ok": not problems,
                                           "problems": [p.as_dict() for p in problems]}, indent=2))
        elif problems:
            for p in problems:
                where = f"queue {p.queue_id}" if p.queue_id else f"counter {p.counter_id}"
                self.stdout.write(f"{where}: [{p.code}] {p.message}")
            self.stdout.write(self.style.ERROR(f"{len(problems)} problem(s) found."))
        else:
            self.stdout.write(self.style.SUCCESS("All queues are consistent."))
        if problems:
            sys.exit(1)

