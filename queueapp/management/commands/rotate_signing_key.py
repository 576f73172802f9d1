"""Rotate the key that signs waiting rooms' admission tokens."""

from django.core.management.base import BaseCommand

from queueapp import admission


class Command(BaseCommand):
    help = ("Make a new signing key for admission tokens. Tokens signed by the old key keep "
            "verifying until they expire: it stays in /.well-known/jwks.json until then.")

    def handle(self, *args, **options):
        key = admission.rotate()
        kept = [k.kid for k in admission.published_keys() if k.pk != key.pk]
        self.stdout.write(f"Signing with {key.kid}; still published: {', '.join(kept) or 'none'}")
