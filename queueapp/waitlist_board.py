"""What the staff waitlist board shows: one read for the first paint and every push.

`board_context(queue_id)` is the whole board (seats, the line, open offers,
confirmed requests, and what *Confirm the waitlist* would do right now); the
page renders it on load and the live path (`ws/waitlist/<queue_id>/`) renders
the same template from the same read after every event.
"""

from __future__ import annotations

from .models import Queue, Ticket
from .selectors import plan_admissions, waitlist_overview

def _names(tickets: list[Ticket]) -> str:
    shown = [t.display_number for t in tickets]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def _seats(n: int) -> str:
    return f"{n} seat{'s' if n != 1 else ''}"


def confirm_preview(queue: Queue, overview=None) -> str:
    """One sentence: what pressing *Confirm the waitlist* does right now."""
    if queue.is_paused:
        return "Paused: confirming admits nobody until the waitlist is resumed."
    plan = plan_admissions(queue, budget=queue.batch_size)
    if plan:
        verb = "offers seats to" if queue.offer_seconds else "confirms"
        return f"{verb[0].upper()}{verb[1:]} {_names(plan)}: {_seats(sum(t.party_size for t in plan))}."
    overview = overview or waitlist_overview(queue, limit=1)
    if not overview.waiting:
        return "Nobody is waiting: there is nothing to confirm."
    head = overview.waiting[0]
    if queue.seats_free <= 0:
        return f"No seat is free: {head.display_number} and the others wait."
    if queue.offer_seconds and queue.max_open_offers is not None:
        return (f"Nobody now: {queue.max_open_offers} offers are already open; "
                "the next goes out when one is answered.")
    return (f"Nobody now: {head.display_number} needs {_seats(head.party_size)}, "
            f"{queue.seats_free} {'is' if queue.seats_free == 1 else 'are'} free.")


def board_context(queue_id: int) -> dict:
    """The board of a capacity queue and the version it reflects (read first)."""
    queue = Queue.objects.select_related("location").get(pk=queue_id)
    overview = waitlist_overview(queue)
    return {"versions": {queue.pk: queue.version}, "queue": queue, "overview": overview,
            "preview": confirm_preview(queue, overview)}
