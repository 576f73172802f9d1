"""Input of the pages. Each form names the field and the reason when it refuses."""

from __future__ import annotations

import re
from datetime import date, datetime

from django import forms
from django.utils.functional import lazy
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .errors import InvalidInput
from .models import FEEDBACK_COMMENT_MAX, MAX_ID, BreakReason, CounterStateChange
from .services.tickets import MAX_PARTY_SIZE
from .services.waitlist import MAX_CAPACITY

ASCII_WHOLE_NUMBER = re.compile(r"\s*[0-9]+\s*")


class WholeNumberField(forms.IntegerField):
    """A whole number typed with the digits 0-9 only.

    Django's IntegerField hands the text to `int()`, which also reads full-width
    (１２), Arabic-Indic (١٢) and other Unicode digits: numbers nobody typed on
    purpose into a form, and that no other part of the system writes. Every
    number a page takes goes through this field.
    """

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return super().to_python(value)
        if not isinstance(value, str) or not ASCII_WHOLE_NUMBER.fullmatch(value):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value.strip())


class DigitsDateField(forms.DateField):
    """A date typed with the digits 0-9 only (the date picker sends YYYY-MM-DD).

    Django's DateField parses with `strptime`, whose digits are Unicode digits:
    "٢٠٢٦-01-01" or "2026-01-1١" would pass as dates nobody typed on purpose,
    as `int()` would for numbers (`WholeNumberField`). Every date a page takes
    goes through this field.
    """

    default_error_messages = {"digits": _("Write the date with the digits 0-9, as YYYY-MM-DD.")}

    def to_python(self, value):
        if isinstance(value, str) and any(ch.isdigit() and not ch.isascii() for ch in value):
            raise forms.ValidationError(self.error_messages["digits"], code="digits")
        return super().to_python(value)


def _id_field(**kwargs) -> WholeNumberField:
    return WholeNumberField(min_value=1, max_value=MAX_ID, **kwargs)


def _lazy_percent(message: str, **values):
    """A class-level message with numbers in it, translated when shown."""
    return lazy(lambda: gettext(message) % values, str)()


class NamedErrorsForm(forms.Form):
    def error_text(self) -> str:
        """All errors as one sentence per field, for an inline message."""
        return " ".join(str(e) for errors in self.errors.values() for e in errors)

    def first_error_field(self) -> str | None:
        return next(iter(self.errors), None)


class JoinForm(NamedErrorsForm):
    """Kiosk and online join: which service."""

    queue = _id_field(error_messages={
        "required": _("Choose a service."), "invalid": _("Choose one of the services listed."),
        "min_value": _("Choose one of the services listed."),
        "max_value": _("Choose one of the services listed.")})

    def __init__(self, *args, queues=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.queues = {q.pk: q for q in queues}

    def clean_queue(self):
        queue = self.queues.get(self.cleaned_data["queue"])
        if queue is None:
            raise forms.ValidationError(_("Choose one of the services listed."))
        return queue


class ConsoleActionForm(NamedErrorsForm):
    """One form for every console button: `action` says which was pressed."""

    ACTIONS = [
        ("call_next", _("Call next")), ("recall", _("Recall")), ("start", _("Start")),
        ("complete", _("Complete")), ("no_show", pgettext_lazy("console action", "No-show")), ("transfer", _("Transfer")),
        ("call", _("Call")), ("pause", _("Pause")), ("resume", _("Resume")),
        ("open", _("Open the counter")), ("break", _("Break")), ("close", _("Close the counter")),
    ]
    # The counter's state: the action names the state (`COUNTER_STATES`), a break
    # its reason; `held` (with `ticket`, and `queue` for a transfer) answers what
    # to do with a ticket the counter holds.
    COUNTER_STATES = {"open": "open", "break": "break", "close": "closed"}
    NEEDS_TICKET = {"recall", "start", "complete", "no_show", "transfer", "call"}
    NEEDS_QUEUE = {"transfer", "pause", "resume"}

    action = forms.ChoiceField(choices=ACTIONS, error_messages={
        "required": _("Say which action to take."),
        "invalid_choice": _("%(value)s is not an action of the console.")})
    ticket = _id_field(required=False, error_messages={
        "invalid": _("The ticket must be given by its id (digits 0-9)."),
        "min_value": _("The ticket must be given by its id (digits 0-9)."),
        "max_value": _("No ticket has an id that large.")})
    queue = _id_field(required=False, error_messages={
        "invalid": _("Choose a queue from the list."), "min_value": _("Choose a queue from the list."),
        "max_value": _("Choose a queue from the list.")})
    reason = forms.ChoiceField(required=False, choices=[("", ""), *BreakReason.choices], error_messages={
        "invalid_choice": _("%(value)s is not a reason for a break.")})
    held = forms.ChoiceField(required=False, choices=[("", ""), *CounterStateChange.HeldTicket.choices],
                             error_messages={"invalid_choice": _("%(value)s is not something to do with "
                                                                 "the counter's ticket.")})

    def clean(self):
        data = super().clean()
        action = data.get("action")
        if action in self.NEEDS_TICKET and not data.get("ticket"):
            self.add_error("ticket", _("This action needs a ticket."))
        if action in self.NEEDS_QUEUE and not data.get("queue"):
            self.add_error("queue", _("Choose a queue for this action.") if action == "transfer"
                           else _("Say which queue to pause or resume."))
        return data


class CapacityForm(NamedErrorsForm):
    """A waitlist's number of seats (managers, on the waitlist page)."""

    capacity = WholeNumberField(min_value=0, max_value=MAX_CAPACITY, error_messages={
        "required": _("Capacity: give the number of seats."),
        "invalid": _("Capacity must be a whole number of seats, written with the digits 0-9."),
        "min_value": _("Capacity cannot be negative."),
        "max_value": _lazy_percent(gettext_noop("Capacity can be at most %(most)s seats."), most=MAX_CAPACITY)})


class WaitlistRowForm(NamedErrorsForm):
    """One request's action on the staff waitlist board."""

    ACTIONS = [("confirm", _("Confirm now")), ("offer", _("Offer")), ("front", _("Move to front")), ("cancel", _("Cancel"))]

    action = forms.ChoiceField(choices=ACTIONS, error_messages={
        "required": _("Say which action to take."),
        "invalid_choice": _("%(value)s is not an action of the waitlist board.")})
    ticket = _id_field(error_messages={
        "required": _("Say which request."), "invalid": _("The request must be given by its id (digits 0-9)."),
        "min_value": _("The request must be given by its id (digits 0-9)."),
        "max_value": _("No request has an id that large.")})


class SeatRequestForm(NamedErrorsForm):
    """A public request for seats: which resource and how many seats."""

    queue = _id_field(error_messages={
        "required": _("Choose what you want seats on."), "invalid": _("Choose one of the dates listed."),
        "min_value": _("Choose one of the dates listed."), "max_value": _("Choose one of the dates listed.")})
    party_size = WholeNumberField(min_value=1, max_value=MAX_PARTY_SIZE, error_messages={
        "required": _("Say how many seats you need."),
        "invalid": _("The number of seats must be a whole number, written with the digits 0-9."),
        "min_value": _("Ask for at least 1 seat."),
        "max_value": _lazy_percent(gettext_noop("At most %(most)s seats per request."), most=MAX_PARTY_SIZE)})

    def __init__(self, *args, resources=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.resources = {q.pk: q for q in resources}

    def clean_queue(self):
        queue = self.resources.get(self.cleaned_data["queue"])
        if queue is None:
            raise forms.ValidationError(_("Choose one of the dates listed."))
        return queue


# -- Appointments --------------------------------------------------------------

# A slot's start as the pages and the API send it back: ISO 8601 with its offset,
# ASCII digits only (datetime.fromisoformat alone would read other digits too).
SLOT_START = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?(Z|[+-][0-9]{2}:[0-9]{2})")
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
YEARS = (2000, 2999)  # far from the calendar's ends, where time zone arithmetic overflows


def parse_slot_start(value, *, field: str = "starts_at"):
    """A slot's start from a form or the API; refused naming `field`."""
    if not isinstance(value, str) or not SLOT_START.fullmatch(value):
        raise InvalidInput(gettext("Choose one of the listed slots (a start time like 2027-03-01T09:30:00+01:00)."),
                           field=field)
    try:
        start = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(gettext("That slot time does not exist on the calendar."), field=field) from None
    if not YEARS[0] <= start.year <= YEARS[1]:
        raise InvalidInput(gettext("Choose a slot between the years %(first)s and %(last)s.") % {
            "first": YEARS[0], "last": YEARS[1]}, field=field)
    return start


def parse_day(value, *, field: str = "day"):
    """A calendar day (YYYY-MM-DD) from a query string; None when absent."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not DAY.fullmatch(value):
        raise InvalidInput(gettext("Give the day as YYYY-MM-DD."), field=field)
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(gettext("That day does not exist on the calendar."), field=field) from None
    if not YEARS[0] <= day.year <= YEARS[1]:
        raise InvalidInput(gettext("Give a day between the years %(first)s and %(last)s.") % {
            "first": YEARS[0], "last": YEARS[1]}, field=field)
    return day


class FeedbackForm(forms.Form):
    """The ticket page's rating of a completed visit (`services.do_give_feedback`)."""

    rating = WholeNumberField(min_value=1, max_value=5, label=_("How was your visit? (1 = poor, 5 = excellent)"),
                              error_messages={"required": _("Choose a rating from 1 to 5."),
                                              "invalid": _("Choose a rating from 1 to 5."),
                                              "min_value": _("Choose a rating from 1 to 5."),
                                              "max_value": _("Choose a rating from 1 to 5.")})
    comment = forms.CharField(required=False, max_length=FEEDBACK_COMMENT_MAX, widget=forms.Textarea(
        attrs={"rows": 3}), label=_("Anything to tell us? (optional; only the staff of this place read it)"))
