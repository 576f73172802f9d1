"""Places in line: the queue row's own counters (the caller holds its lock).

The ordering key is (priority DESC, seq ASC). `seq` is a *line clock*: the
instant a ticket takes its place, in milliseconds since the epoch times
`TICKS_PER_MS`, never less than the queue's last one plus one (so it only
goes up, even when the system clock steps back or many join in the same
millisecond). Time-shaped keys leave room between two tickets, which is what
lets a booking checked in on time stand where its booked time says
(`booking_place`) without renumbering anyone. `first_seq` counts down below
every key for tickets put first in their priority (a transfer "to the front").
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from ..errors import QueueFull
from ..models import TICKS_PER_MS, Queue, Ticket, TicketStatus, line_clock

# Bookings placed at the same instant share this many ticks just below it,
# in the order they checked in; a walk-in who joined at that instant or later stands behind them.
BOOKING_BAND = TICKS_PER_MS // 2


def _save_counters(queue: Queue, *, take_version: bool = False) -> None:
    """Write the queue's counters. `take_version`: also move `queue.version` on to
    the caller's next event in the same statement (a join: one round trip under
    the lock instead of two; the caller passes `version_taken` to `record_event`)."""
    fields = {"number_day": queue.number_day, "last_number": queue.last_number,
              "last_seq": queue.last_seq, "first_seq": queue.first_seq}
    if take_version:
        queue.version += 1
        fields["version"] = queue.version
    Queue.objects.filter(pk=queue.pk).update(**fields)


def _back_of_line(queue: Queue, at: datetime | None = None) -> int:
    queue.last_seq = max(queue.last_seq + 1, line_clock(at or timezone.now()))
    return queue.last_seq


def _front_of_line(queue: Queue) -> int:
    # Below every seq ever handed out, so the ticket stands first in its priority.
    queue.first_seq -= 1
    return queue.first_seq


def booking_place(queue: Queue, at: datetime) -> int:
    """The seq of a booking checked in on time whose place in line is the instant
    `at` (its booked time minus the queue's grace): behind every ticket of its
    priority that entered the line before `at`, before every one that entered
    at or after it, and behind the bookings already placed at the same instant.
    `at` may be in the future (an early arrival): walk-ins joining meanwhile
    stand ahead of it until the line clock passes `at`. Queue row locked by the
    caller; the queue's own counters are not touched."""
    base = line_clock(at) - BOOKING_BAND
    taken = (Ticket.objects.filter(queue=queue, status=TicketStatus.WAITING,
                                   seq__gte=base, seq__lt=base + BOOKING_BAND)
             .aggregate(top=Max("seq"))["top"])
    seq = base if taken is None else taken + 1
    if seq >= base + BOOKING_BAND:
        raise QueueFull(_("%(queue)s already has %(count)s appointments checked in for the same time; ask staff "
                          "to call them.") % {"queue": queue.name, "count": BOOKING_BAND})
    return seq
