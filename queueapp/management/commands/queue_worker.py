"""Run the background worker forever (offer expiry, live resync ticks)."""

import signal

from django.core.management.base import BaseCommand

from queueapp.worker import run_forever


class Command(BaseCommand):
    help = "Run periodic background jobs until stopped. Safe to run more than one."

    def handle(self, *args, **options):
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        run_forever(lambda: stopping)
