"""A waiting room's batch of events, summarised once for all of its screens.

The hub hands a room's events to its screens in one batch per
`LIVE_ROOM_UPDATE_EVERY` (hub.py). Applied event by event, a batch cost each
screen an update per event (two wait estimates each): at 10,000 open pages and
170 arrivals a second that was 1.7 million updates a second, most of them for
arrivals standing behind the page, which move nothing (py-spy of the crowd,
docs/benchmarks.md, session 8). Here the batch is summarised once (who left and
who entered the line, as sorted keys; the last service time, counters and
seats), and a waiting screen with nothing of its own in it applies the whole
batch with two bisections: the same place the events one by one would give.

`RoomBatch` is the batch in version order; `summary` is computed on first use
and shared by every screen of the process.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from functools import cached_property

NOT_SET = object()  # (a Summary's service_seconds or open_counters when no event carried one)


def line_key(key) -> tuple[int, int]:
    """A line key (priority, seq) as sortable "ahead first": `selectors.is_ahead`
    (higher priority first, then the lower seq) is `line_key(a) < line_key(b)`."""
    return (-key[0], key[1])


@dataclass(frozen=True)
class Summary:
    queue: int
    first: int  # the first and last version of the batch, which has every version between
    last: int
    left: list[tuple[int, int]]  # `line_key` keys of the tickets that left the line, sorted
    entered: list[tuple[int, int]]  # and of those that took a place
    highest_entered: int | None  # the highest priority among those that entered
    tickets: frozenset  # ids of the tickets the events are about
    service_seconds: object  # the last value in the batch, or NOT_SET
    open_counters: object
    seats: tuple[int, int] | None  # the last (capacity, seats_taken)

    def ahead(self, keys: list[tuple[int, int]], of: tuple[int, int]) -> int:
        """How many of `keys` stand ahead of the line key `of`."""
        return bisect_left(keys, line_key(of))


class RoomBatch(list):
    """A room's messages in version order (the hub sorts them)."""

    @cached_property
    def summary(self) -> Summary | None:
        """None when the batch cannot be applied as a whole: a tick, a gap in the
        versions, or a message of another shape (screens then go event by event)."""
        versions = [m.get("version") for m in self]
        if not self or any(m.get("type") != "queue.event" or m.get("queue") != self[0].get("queue")
                           for m in self) or not all(
                isinstance(v, int) for v in versions) or versions != list(range(versions[0], versions[0] + len(self))):
            return None
        left, entered, tickets = [], [], set()
        service, counters, seats = NOT_SET, NOT_SET, None
        for message in self:
            if message.get("left"):
                left.append(line_key(message["left"]))
            if message.get("entered"):
                entered.append(line_key(message["entered"]))
            ticket = message.get("ticket")
            if isinstance(ticket, dict):
                tickets.add(ticket.get("id"))
            if "service_seconds" in message:
                service = message["service_seconds"]
            if "open_counters" in message:
                counters = message["open_counters"]
            if "seats_taken" in message and "capacity" in message:
                seats = (message["capacity"], message["seats_taken"])
        return Summary(queue=self[0].get("queue"), first=versions[0], last=versions[-1], left=sorted(left), entered=sorted(entered),
                       highest_entered=-min(entered)[0] if entered else None, tickets=frozenset(tickets),
                       service_seconds=service, open_counters=counters, seats=seats)



def frame_every(position: int | None) -> float:
    """Seconds a waiting room's page at `position` may go between frames that
    move its place (`settings.LIVE_ROOM_*`): every batch for the first
    `LIVE_ROOM_NEAR` places, then longer in proportion to the place, at most
    `LIVE_ROOM_FAR_EVERY`. 0 (at once) for a page not in line (an admission).

    Why: every admission moves every waiting page one place, so each page had a
    frame per batch, two a second at 10,000 pages while the room admits: 197,309
    frames for a crowd of 3,000 (bench/waiting_room.py, docs/benchmarks.md,
    session 9). The 5,000th in line at 10 admissions a second waits ~8 minutes;
    seeing its place every 5 s instead of every 0.5 s tells it as much, for a
    tenth of the frames."""
    from django.conf import settings

    if position is None:
        return 0.0
    every = settings.LIVE_ROOM_UPDATE_EVERY
    if position <= settings.LIVE_ROOM_NEAR:
        return every
    return max(every, min(settings.LIVE_ROOM_FAR_EVERY, every * position / settings.LIVE_ROOM_NEAR))
