"""manage.py create_webhook --location SLUG --url URL [--events kind,kind]: prints the secret once."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator

from queueapp.alerts.models import WebhookEndpoint
from queueapp.models import Location, QueueEvent


class Command(BaseCommand):
    help = "Add a webhook endpoint for a location's events and print its signing secret (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("--location", required=True, help="Location slug.")
        parser.add_argument("--url", required=True, help="Where to POST the signed events.")
        parser.add_argument("--events", default="", help="Comma-separated event kinds; default: all. "
                            f"Kinds: {', '.join(QueueEvent.Kind.values)}.")

    def handle(self, *args, location, url, events, **options):
        place = Location.objects.filter(slug=location).first()
        if place is None:
            raise CommandError(f"--location: no location with slug {location!r}.")
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            raise CommandError(f"--url: {url!r} is not an http(s) URL.") from None
        kinds = [k.strip() for k in events.split(",") if k.strip()]
        unknown = [k for k in kinds if k not in QueueEvent.Kind.values]
        if unknown:
            raise CommandError(f"--events: unknown kind {unknown[0]!r}; kinds are {', '.join(QueueEvent.Kind.values)}.")
        endpoint = WebhookEndpoint.objects.create(location=place, url=url, event_types=kinds)
        self.stdout.write(f"Webhook endpoint {endpoint.pk} for {place.slug}: {url}\n"
                          f"events: {', '.join(kinds) or 'all'}\n"
                          f"secret (shown once, keep it for verifying signatures): {endpoint.secret}")
