"""Language choices (issue 15): a ticket holder's and a staff member's.

Neither is a queue state change, so neither writes a QueueEvent or takes the
queue lock: the ticket's own page reloads after the change (and its live
socket then renders in the new language); alerts read the column when sent.
"""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from ..errors import InvalidInput, NotFound
from ..languages import SHIPPED, language_choices
from ..models import StaffPreference, Ticket


def _names(codes) -> str:
    return ", ".join(f"{c['code']} ({c['name']})" for c in language_choices(codes))


@transaction.atomic(durable=True)
def do_set_ticket_language(ticket: Ticket | int, *, language: str) -> Ticket:
    """The holder's language, one the ticket's location offers."""
    pk = ticket.pk if isinstance(ticket, Ticket) else ticket
    ticket = Ticket.objects.select_related("queue__location").filter(pk=pk).first()
    if ticket is None:
        raise NotFound(_("Ticket %(id)s does not exist.") % {"id": pk})
    offered = ticket.queue.location.offered_languages
    if language not in offered:
        raise InvalidInput(_("Choose one of the languages offered here: %(languages)s.") % {"languages": _names(offered)},
                           field="language")
    Ticket.objects.filter(pk=ticket.pk).update(language=language)
    ticket.language = language
    return ticket


@transaction.atomic(durable=True)
def do_set_staff_language(user, *, language: str) -> StaffPreference:
    """A staff member's language; empty: follow the browser's."""
    if language and language not in SHIPPED:
        raise InvalidInput(_("Choose one of %(languages)s, or none to follow the browser.") % {
            "languages": _names(SHIPPED)}, field="language")
    preference, _created = StaffPreference.objects.update_or_create(user=user, defaults={"language": language})
    return preference
