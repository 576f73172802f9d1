"""Issue a waiting room's API key (replacing its old one) and print it once."""

from django.core.management.base import BaseCommand, CommandError

from queueapp.models import WaitingRoom
from queueapp.services.rooms import do_issue_room_key


class Command(BaseCommand):
    help = ("Create the key the protected site sends when it reports a visitor done or abandoned "
            "(Authorization: Bearer <key>). Replaces the room's previous key; printed once.")

    def add_arguments(self, parser):
        parser.add_argument("room", help="The waiting room's slug.")

    def handle(self, *args, room, **options):
        found = WaitingRoom.objects.filter(slug=room).first()
        if found is None:
            raise CommandError(f"No waiting room with slug {room!r}.")
        key = do_issue_room_key(found)
        self.stderr.write(f"New key for waiting room {room}; the previous key no longer works. "
                          "Store it now: it cannot be shown again.")
        self.stdout.write(key)
