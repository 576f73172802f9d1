"""Delete ended tickets older than each location's retention period (the worker does it hourly)."""

import getpass

from django.core.management.base import BaseCommand, CommandError

from queueapp.models import Location
from queueapp.services.retention import do_purge_location, purge_due_locations


class Command(BaseCommand):
    help = ("Delete ended tickets older than their location's retention period: statistics are kept "
            "as daily summaries and the deleted events archived as CSV first.")

    def add_arguments(self, parser):
        parser.add_argument("--location", help="Only this location slug (default: every location with a "
                                               "retention period).")

    def handle(self, *args, location=None, **options):
        by = f"command ({getpass.getuser()})"
        if location is not None:
            found = Location.objects.filter(slug=location).first()
            if found is None:
                raise CommandError(f"There is no location {location!r}.")
            if not found.retention_days:
                raise CommandError(f"{found.name} keeps everything: set its retention days in the admin first.")
            purges = [p for p in [do_purge_location(found, by=by)] if p is not None]
        else:
            purges = purge_due_locations(by=by)
        for purge in purges:
            self.stdout.write(f"{purge.location.slug}: {purge.tickets_deleted} ticket(s) and "
                              f"{purge.events_deleted} event(s) deleted before {purge.cutoff:%Y-%m-%d}; "
                              f"events archived in {purge.archive} (sha256 {purge.archive_sha256})")
        if not purges:
            self.stdout.write("Nothing to delete.")
