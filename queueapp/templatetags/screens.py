"""Small filters the public screens use."""

from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def wait_words(value: timedelta | None) -> str:
    """An estimated wait as a person says it: "about 10 minutes"."""
    if value is None:
        return ""
    minutes = round(value.total_seconds() / 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 90:
        return f"about {minutes} minute{'s' if minutes != 1 else ''}"
    hours, rest = divmod(minutes, 60)
    return f"about {hours} h {rest:02d} min"


@register.filter
def spoken_number(display: str) -> str:
    """A-017 -> "A 17", as the display speaks it."""
    prefix, _, number = display.partition("-")
    return f"{prefix} {int(number)}" if number.isdigit() else display
