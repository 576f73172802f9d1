"""Create a waiting room in front of another site and print its API key once."""

from django.core.management.base import BaseCommand, CommandError

from queueapp.errors import QueueActionError
from queueapp.models import Location
from queueapp.services.rooms import do_create_waiting_room, do_issue_room_key


class Command(BaseCommand):
    help = ("Create a waiting room (/wait/<slug>/) for a protected site: visitors are admitted at "
            "--rate a minute, at most --max-inside at once. Prints the room's API key once.")

    def add_arguments(self, parser):
        parser.add_argument("--location", required=True, help="Location slug.")
        parser.add_argument("--slug", required=True, help="The room's address: /wait/<slug>/.")
        parser.add_argument("--name", required=True, help="What visitors read: 'Concert tickets'.")
        parser.add_argument("--target", required=True, help="The protected site's base URL.")
        parser.add_argument("--rate", type=int, required=True, help="Admissions per minute.")
        parser.add_argument("--max-inside", type=int, required=True, help="Most visitors inside at once.")
        parser.add_argument("--lifetime", type=int, default=600,
                            help="Seconds an admission (and its token) lasts unless reported (default 600).")
        parser.add_argument("--prefix", default="W", help="Number prefix of the visitors' places.")

    def handle(self, *args, location, slug, name, target, rate, max_inside, lifetime, prefix, **options):
        place = Location.objects.filter(slug=location).first()
        if place is None:
            raise CommandError(f"No location with slug {location!r}.")
        try:
            room = do_create_waiting_room(location=place, name=name, slug=slug, prefix=prefix, target_url=target,
                                          admit_per_minute=rate, max_inside=max_inside,
                                          admission_seconds=lifetime)
        except QueueActionError as error:
            raise CommandError(error.message) from None
        self.stderr.write(f"Waiting room {slug} created at {place.name}. Its API key follows; store it now: "
                          "it cannot be shown again.")
        self.stdout.write(do_issue_room_key(room))
