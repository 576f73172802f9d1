"""The texts people receive: one default English template per message kind.

A queue's rule may carry its own template with the same fields (validated on
save, so a broken template never reaches the worker). Until the languages
issue lands these are English only.
"""

from __future__ import annotations

import string

FIELDS = ("number", "queue", "counter", "ahead", "time", "new_number", "location")

DEFAULTS = {
    "ahead": "{location}: ticket {number} has {ahead} ahead. Please be ready to come to the desk.",
    "called": "{location}: it's your turn, ticket {number}: go to {counter}.",
    "missed": "{location}: you missed your call, ticket {number}; you are back in line.",
    "closed": "{location}: ticket {number} was closed after you missed your call.",
    "transferred": "{location}: ticket {number} was transferred to {queue}; your new number is {new_number}.",
    "offered": "{location}: seats offered for {number} in {queue}: accept by {time}.",
    "offer_reminder": "{location}: reminder: the offer for {number} lapses at {time}. Accept it soon.",
    "confirmed": "{location}: {number} is confirmed in {queue}.",
    "expired": "{location}: the offer for {number} expired at {time}.",
}

SUBJECTS = {
    "ahead": "Almost your turn ({number})",
    "called": "It's your turn ({number})",
    "missed": "You missed your call ({number})",
    "closed": "Your ticket was closed ({number})",
    "transferred": "Ticket transferred ({number})",
    "offered": "Seats offered ({number})",
    "offer_reminder": "Your offer lapses soon ({number})",
    "confirmed": "Confirmed ({number})",
    "expired": "Offer expired ({number})",
}


class _Fields(dict):
    def __missing__(self, key):  # an unset field prints as nothing rather than failing
        return ""


def check_template(template: str) -> str | None:
    """None when the template is usable, else what is wrong with it."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        return f"The template does not parse ({error}); write literal braces as {{{{ and }}}}."
    unknown = [n for n in names if n not in FIELDS]
    if unknown:
        return f"Unknown field {{{unknown[0]}}}."
    return None


def render(kind: str, fields: dict, template: str = "") -> tuple[str, str]:
    """(subject, text) of a patient message."""
    values = _Fields(fields)
    text = (template or DEFAULTS[kind]).format_map(values)
    return SUBJECTS[kind].format_map(values), text


# How every message says it can be stopped: SMS and e-mail end with the stop
# link; a web push notification has a "Stop alerts" action opening it (and,
# where the browser shows no actions, says the page a tap opens can stop them).
STOP_LINE = "Stop these alerts: {url}"
PUSH_STOP_ACTION = "Stop alerts"
PUSH_STOP_HINT = "Tap to open the page where you can stop these alerts."
