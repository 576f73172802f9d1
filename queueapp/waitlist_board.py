"""What the staff waitlist board shows: one read for the first paint and every push.

`board_context(queue_id)` is the whole board (seats, the line, open offers,
confirmed requests, and what *Confirm the waitlist* would do right now); the
page renders it on load and the live path (`ws/waitlist/<queue_id>/`) renders
the same template from the same read after every event.
"""

from __future__ import annotations

from django.utils.functional import lazy
from django.utils.translation import gettext, ngettext

from .models import Queue, Ticket
from .selectors import plan_admissions, waitlist_overview


def _names(tickets: list[Ticket]) -> str:
    shown = [t.display_number for t in tickets]
    return shown[0] if len(shown) == 1 else gettext("%(first)s and %(last)s") % {
        "first": ", ".join(shown[:-1]), "last": shown[-1]}


def _preview_sentence(kind: str, values: dict) -> str:
    """The preview in the active language: the facts are read once, the board is
    rendered per language (the live path renders one board per staff language)."""
    values = {**values, "names": _names(values["plan"])} if "plan" in values else values
    if kind == "paused":
        return gettext("Paused: confirming admits nobody until the waitlist is resumed.")
    if kind == "offers":
        return ngettext("Offers seats to %(names)s: %(seats)s seat.", "Offers seats to %(names)s: %(seats)s seats.",
                        values["seats"]) % values
    if kind == "confirms":
        return ngettext("Confirms %(names)s: %(seats)s seat.", "Confirms %(names)s: %(seats)s seats.",
                        values["seats"]) % values
    if kind == "empty":
        return gettext("Nobody is waiting: there is nothing to confirm.")
    if kind == "full":
        return gettext("No seat is free: %(head)s and the others wait.") % values
    if kind == "offers_open":
        return gettext("Nobody now: %(open)s offers are already open; the next goes out when one is answered.") % values
    return ngettext("Nobody now: %(head)s needs %(needs)s seat, %(free)s free.",
                    "Nobody now: %(head)s needs %(needs)s seats, %(free)s free.", values["needs"]) % values


_preview = lazy(_preview_sentence, str)


def confirm_preview(queue: Queue, overview=None) -> str:
    """One sentence: what pressing *Confirm the waitlist* does right now (lazy:
    said in the language of whoever's board is rendered)."""
    if queue.is_paused:
        return _preview("paused", {})
    plan = plan_admissions(queue, budget=queue.batch_size)
    if plan:
        return _preview("offers" if queue.offer_seconds else "confirms",
                        {"plan": list(plan), "seats": sum(t.party_size for t in plan)})
    overview = overview or waitlist_overview(queue, limit=1)
    if not overview.waiting:
        return _preview("empty", {})
    head = overview.waiting[0]
    if queue.seats_free <= 0:
        return _preview("full", {"head": head.display_number})
    if queue.offer_seconds and queue.max_open_offers is not None:
        return _preview("offers_open", {"open": queue.max_open_offers})
    return _preview("short", {"head": head.display_number, "needs": head.party_size, "free": queue.seats_free})


def board_context(queue_id: int) -> dict:
    """The board of a capacity queue and the version it reflects (read first)."""
    queue = Queue.objects.select_related("location").get(pk=queue_id)
    overview = waitlist_overview(queue)
    return {"versions": {queue.pk: queue.version}, "queue": queue, "overview": overview,
            "preview": confirm_preview(queue, overview)}
