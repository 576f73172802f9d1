"""Periodic jobs of the background worker: each registers itself with
`@periodic` when the app registry imports this module (see queueapp.worker)."""

from __future__ import annotations

from .live import publisher, reads
from .services.bookings import do_mark_missed_bookings
from .services.retention import purge_due_locations
from .services.rooms import CYCLE_SECONDS as ROOM_CYCLE_SECONDS, PACE_SECONDS as ROOM_PACE_SECONDS
from .services.rooms import do_expire_admissions, run_room_cycles
from .services.waitlist import do_expire_offers, do_expire_past_requests, run_waitlist_cycles
from .worker import periodic

EXPIRE_SECONDS = 1.0  # how late a lapsed offer's seats may reach the next in line
ADMIT_SECONDS = 5.0  # how often a virtual waiting room admits its next batch
TICK_SECONDS = 3.0  # how long a screen that lost a push may stay behind
RETENTION_SECONDS = 3600.0  # a day's tickets go within the hour after their retention ends


# Lapsed offers: an acceptance after the expiry instant is refused even before
# this runs; the job only hands the freed seats to the next in line, so a
# second of lag costs nobody a seat.
@periodic(EXPIRE_SECONDS)
def expire_offers() -> None:
    do_expire_offers()


# One admission cycle for virtual waiting rooms (each admits up to its
# batch_size); for other waitlists a safety net that normally finds nothing.
@periodic(ADMIT_SECONDS)
def admit_waitlist_batches() -> None:
    run_waitlist_cycles()


# Dated waitlists (a train, a show) whose date has passed: their waiting
# requests end as expired, an event each (joins are refused by do_join).
@periodic(60)
def expire_past_requests() -> None:
    do_expire_past_requests()


# Waiting rooms: free admissions nobody reported (and admit into the places freed).
@periodic(ROOM_CYCLE_SECONDS)
def expire_room_admissions() -> None:
    do_expire_admissions()


# Waiting rooms: admit whoever the rate allows now (joins and reports admit too;
# this keeps the pace when nobody acts). Often, so that pace is the room's
# evenly spaced rate, not a batch a second (queueapp.services.rooms.PACE_SECONDS).
@periodic(ROOM_PACE_SECONDS)
def admit_waiting_rooms() -> None:
    run_room_cycles()


@periodic(TICK_SECONDS)
def publish_queue_ticks() -> int:
    """Tell every queue's screens the queue's current version (one message per
    queue, one query in all). A screen that lost the last event sees a newer
    version than it shows and re-reads what it missed: a lost message delays a
    screen by a few seconds, never leaves it wrong. With the in-memory layer
    the worker cannot reach the server process; its hub ticks locally instead.
    """
    versions = {q: v for q, v in reads.queue_versions().items() if v > 0}
    return publisher.broadcast_ticks(versions)


# Retention: ended tickets older than their location's retention period are
# deleted (statistics summarised, events archived first; queueapp.services.retention).
@periodic(RETENTION_SECONDS)
def purge_expired_tickets() -> int:
    return len(purge_due_locations(by="worker"))



# Appointments nobody checked in by the end of their window become no-shows,
# an event each (a check-in after that still joins as a walk-in the same day).
@periodic(60)
def mark_missed_bookings() -> int:
    return do_mark_missed_bookings()
