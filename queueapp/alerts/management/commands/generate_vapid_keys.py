"""manage.py generate_vapid_keys: a key pair for web push, as settings lines."""

from django.core.management.base import BaseCommand

from queueapp.alerts.push import generate_keys


class Command(BaseCommand):
    help = "Generate a VAPID key pair for web push; put both lines in the environment."

    def handle(self, *args, **options):
        private, public = generate_keys()
        self.stdout.write(f"VAPID_PRIVATE_KEY={private}\nVAPID_PUBLIC_KEY={public}")
