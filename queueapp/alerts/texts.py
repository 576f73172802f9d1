"""The texts people receive: one default English template per message kind.

A queue's rule may carry its own template with the same fields (validated on
save, so a broken template never reaches the worker). The defaults are
translated: `render` speaks the ticket's language (`Ticket.language`); a rule's
own template is sent as its manager wrote it.
"""

from __future__ import annotations

import string

from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

FIELDS = ("number", "queue", "counter", "ahead", "time", "new_number", "location")

DEFAULTS = {
    "ahead": _("{location}: ticket {number} has {ahead} ahead. Please be ready to come to the desk."),
    "called": _("{location}: it's your turn, ticket {number}: go to {counter}."),
    "missed": _("{location}: you missed your call, ticket {number}; you are back in line."),
    "closed": _("{location}: ticket {number} was closed after you missed your call."),
    "transferred": _("{location}: ticket {number} was transferred to {queue}; your new number is {new_number}."),
    "offered": _("{location}: seats offered for {number} in {queue}: accept by {time}."),
    "offer_reminder": _("{location}: reminder: the offer for {number} lapses at {time}. Accept it soon."),
    "confirmed": _("{location}: {number} is confirmed in {queue}."),
    "expired": _("{location}: the offer for {number} expired at {time}."),
}

SUBJECTS = {
    "ahead": _("Almost your turn ({number})"),
    "called": _("It's your turn ({number})"),
    "missed": _("You missed your call ({number})"),
    "closed": _("Your ticket was closed ({number})"),
    "transferred": _("Ticket transferred ({number})"),
    "offered": _("Seats offered ({number})"),
    "offer_reminder": _("Your offer lapses soon ({number})"),
    "confirmed": _("Confirmed ({number})"),
    "expired": _("Offer expired ({number})"),
}


class _Fields(dict):
    def __missing__(self, key):  # an unset field prints as nothing rather than failing
        return ""


def check_template(template: str) -> str | None:
    """None when the template is usable, else what is wrong with it."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        return gettext("The template does not parse (%(error)s); write literal braces as {{ and }}.") % {"error": error}
    unknown = [n for n in names if n not in FIELDS]
    if unknown:
        return gettext("Unknown field %(field)s.") % {"field": "{" + unknown[0] + "}"}
    return None


def render(kind: str, fields: dict, template: str = "", language: str = "en") -> tuple[str, str]:
    """(subject, text) of a patient message, in `language` (the ticket's)."""
    values = _Fields(fields)
    with translation.override(language):
        text = str(template or DEFAULTS[kind]).format_map(values)
        return str(SUBJECTS[kind]).format_map(values), text


# How every message says it can be stopped: SMS and e-mail end with the stop
# link; a web push notification has a "Stop alerts" action opening it (and,
# where the browser shows no actions, says the page a tap opens can stop them).
# Lazy: the sender turns them into text in the ticket's language (`senders`).
STOP_LINE = _("Stop these alerts: {url}")
PUSH_STOP_ACTION = _("Stop alerts")
PUSH_STOP_HINT = _("Tap to open the page where you can stop these alerts.")
