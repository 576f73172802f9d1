"""Feedback after a visit: a 1-5 rating and an optional comment, once per
completed ticket, within `FEEDBACK_WINDOW` of its completion.

No queue event: a rating changes nobody's place, and the comment is personal
data that must never reach events, broadcasts or logs.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from ..errors import InvalidInput, InvalidTransition
from ..models import FEEDBACK_COMMENT_MAX, FEEDBACK_WINDOW, Feedback, Ticket, TicketStatus


def feedback_refusal(ticket: Ticket, now=None) -> str | None:
    """Why this ticket cannot be rated now, in words; None when it can. The one
    rule for the ticket page (whether it asks) and `do_give_feedback`."""
    now = now or timezone.now()
    if ticket.status != TicketStatus.COMPLETED or ticket.finished_at is None:
        return gettext("Feedback is asked for once your visit is complete.")
    if Feedback.objects.filter(ticket_id=ticket.pk).exists():
        return gettext("You already rated this visit. Thank you!")
    if now - ticket.finished_at > FEEDBACK_WINDOW:
        return gettext("Feedback is taken within a day of your visit; this one ended too long ago.")
    return None


@transaction.atomic(durable=True)
def do_give_feedback(ticket: Ticket | int, *, rating: int, comment: str = "", now=None) -> Feedback:
    """Record the holder's rating of a completed visit. Locks the ticket row,
    so two submissions at once give one rating and one clear refusal."""
    if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
        raise InvalidInput(gettext("Choose a rating from 1 to 5."), field="rating")
    comment = (comment or "").strip()
    if len(comment) > FEEDBACK_COMMENT_MAX:
        raise InvalidInput(gettext("Keep the comment to %(count)s characters.") % {"count": FEEDBACK_COMMENT_MAX},
                           field="comment")
    if "\x00" in comment:
        raise InvalidInput(gettext("The comment contains a character that is not allowed."), field="comment")
    pk = ticket.pk if isinstance(ticket, Ticket) else ticket
    locked = Ticket.objects.select_for_update(of=("self",)).get(pk=pk)
    refusal = feedback_refusal(locked, now)
    if refusal:
        raise InvalidTransition(refusal)
    try:
        with transaction.atomic():
            return Feedback.objects.create(ticket=locked, rating=rating, comment=comment,
                                           created_at=now or timezone.now())
    except IntegrityError:  # the row lock makes this unreachable in practice; the constraint is the guarantee
        raise InvalidTransition(gettext("You already rated this visit. Thank you!")) from None
