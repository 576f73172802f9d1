"""Periodic jobs of the background worker (see queueapp.worker)."""

from .services.waitlist import do_expire_offers, run_waitlist_cycles
from .worker import periodic


# Lapsed offers: an acceptance after the expiry instant is refused even before
# this runs; the job only hands the freed seats to the next in line, so a
# second of lag costs nobody a seat.
@periodic(1)
def expire_offers() -> None:
    do_expire_offers()


# One admission cycle for virtual waiting rooms (each admits up to its
# batch_size); for other waitlists a safety net that normally finds nothing.
@periodic(5)
def admit_waitlist_batches() -> None:
    run_waitlist_cycles()
