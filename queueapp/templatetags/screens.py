"""Small filters the public screens use."""

from django import template

from .live_tags import wait_text

register = template.Library()


# One wording for an estimate everywhere: the live fragments' filter.
register.filter("wait_words", wait_text)


@register.filter
def spoken_number(display: str) -> str:
    """A-017 -> "A 17", as the display speaks it."""
    prefix, _, number = display.partition("-")
    return f"{prefix} {int(number)}" if number.isdigit() else display
