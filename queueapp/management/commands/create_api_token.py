"""Issue an API token and print its key once (only its SHA-256 digest is stored)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from queueapp.api.auth import issue_token
from queueapp.models import ApiToken, Location


class Command(BaseCommand):
    help = ("Create an API token. A staff token acts as --user (at --location only); "
            "a kiosk token may only create tickets at --location. The key is printed once.")

    def add_arguments(self, parser):
        parser.add_argument("--location", required=True, help="Location slug, e.g. riverside.")
        parser.add_argument("--kind", required=True, choices=ApiToken.Kind.values)
        parser.add_argument("--user", help="Username the staff token acts as (required for staff).")
        parser.add_argument("--name", required=True, help="What it is for: 'Kiosk by the door'.")
        parser.add_argument("--allow-priority", action="store_true",
                            help="A kiosk token that may create high and urgent tickets (a triage desk).")

    def handle(self, *args, location, kind, user, name, allow_priority, **options):
        try:
            place = Location.objects.get(slug=location)
        except Location.DoesNotExist:
            raise CommandError(f"No location with slug {location!r}.") from None
        person = None
        if user:
            person = get_user_model().objects.filter(username=user).first()
            if person is None:
                raise CommandError(f"No user named {user!r}.")
        try:
            token, key = issue_token(location=place, kind=kind, name=name, user=person,
                                     may_set_priority=allow_priority)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(f"Created {token.kind} token {token.name!r} (id {token.pk}) for {place.name}. "
                          "Store the key now: it cannot be shown again.")
        self.stdout.write(key)
