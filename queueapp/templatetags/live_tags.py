"""Template filters for the live fragments, and the pages' live-connection settings."""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

from django import template
from django.conf import settings
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import get_language, gettext as _

from ..estimates import shown_minutes
from ..models import CANCELLABLE, FINAL_STATUSES, STATUS_SENTENCES, TicketStatus

register = template.Library()


def reconnect_config() -> dict:
    """htmx 4's hx-ws reconnect schedule for our pages (ms; see settings.LIVE_RECONNECT_*).
    The one place it is built: the pages' meta tag and bench/restart.py's phones."""
    return {
        "reconnectDelay": round(settings.LIVE_RECONNECT_DELAY * 1000),
        "reconnectMaxDelay": round(settings.LIVE_RECONNECT_MAX_DELAY * 1000),
        "reconnectJitter": settings.LIVE_RECONNECT_JITTER,
    }


@register.simple_tag
def live_client_config() -> str:
    """`<meta name="htmx-config">`: htmx reads it when it starts, before the hx-ws
    extension takes its defaults from `htmx.config.ws`."""
    return format_html('<meta name="htmx-config" content="{}">', json.dumps({"ws": reconnect_config()}))

# How other languages mark an ordinal number ("2." in German, "2.º" in Spanish).
ORDINAL_MARKS = {"de": ".", "es": ".º"}


@register.filter
def status_sentence(status: str) -> str:
    """What the holder of a ticket in this status reads (`models.STATUS_SENTENCES`)."""
    return str(STATUS_SENTENCES.get(status, ""))


@register.filter
def expiry_sentence(ticket) -> str:
    """Why an expired waitlist request ended, in words (a Ticket or a live
    TicketView: both carry the offer's expiry and the queue's date, so the
    first paint and every live update say the same).

    A request ends as EXPIRED for one of two reasons: its offer was not
    accepted in time, or the date of its resource (a train, a show) passed
    while it was still waiting or holding an offer. Offers lapse within a
    second of their expiry and dates are ended within a minute of midnight,
    so whichever came first is known from the two instants: an offer still
    good after the resource's day had ended was ended by the date.
    """
    queue = ticket.queue
    day = getattr(queue, "service_date", None)
    expires = ticket.offer_expires_at
    if day is not None and (expires is None
                            or expires.astimezone(ZoneInfo(queue.location.timezone)).date() > day):
        return _("%(resource)s on %(day)s has passed, so this request ended without seats. "
                 "Make a new request for another date if you still need one.") % {
            "resource": queue.name, "day": date_format(day, "j F")}
    return str(STATUS_SENTENCES[TicketStatus.EXPIRED])


@register.filter
def status_is_final(status: str) -> bool:
    return status in FINAL_STATUSES


@register.filter
def status_cancellable(status: str) -> bool:
    return status in CANCELLABLE


@register.filter
def wait_text(estimated_wait: timedelta | None) -> str:
    """A patient-friendly wait: 'any moment now', 'about 5 min', 'about 1 h 20 min'."""
    if estimated_wait is None:
        return ""
    minutes = shown_minutes(estimated_wait)
    if minutes < 1:
        return _("any moment now")
    if minutes < 60:
        return _("about %(minutes)s min") % {"minutes": minutes}
    hours, rest = divmod(minutes, 60)
    if rest:
        return _("about %(hours)s h %(minutes)s min") % {"hours": hours, "minutes": rest}
    return _("about %(hours)s h") % {"hours": hours}


@register.filter
def waited(delta: timedelta | None) -> str:
    """How long someone has waited, for staff: '3 min', '1 h 05'."""
    if delta is None:
        return ""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d}"


@register.filter
def ordinal_suffix(number) -> str:
    """The ordinal ending of a number in the active language: English 1 -> 'st',
    12 -> 'th', 23 -> 'rd'; German '.', Spanish '.º'; none in Arabic."""
    try:
        n = int(number)
    except (TypeError, ValueError):
        return ""
    language = (get_language() or "en").split("-")[0]
    if language != "en":
        return ORDINAL_MARKS.get(language, "")
    if 10 <= n % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
