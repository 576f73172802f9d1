"""Path converters: a URL segment that cannot be valid never reaches a view.

- `<token:token>` matches only the shape of a ticket token (`models.TOKEN_PATTERN`);
  anything else (a NUL byte, the wrong length or alphabet) matches no route.
- `<id:queue_id>` matches a primary key: ASCII digits, 1 to `models.MAX_ID`.

A segment that does not match answers 404 before a view or the database sees it.
"""

from __future__ import annotations

from django.urls import register_converter

from .models import MAX_ID, TOKEN_PATTERN


class TicketTokenConverter:
    regex = TOKEN_PATTERN

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class IdConverter:
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= MAX_ID:
            raise ValueError(f"{value} is not a primary key")  # Django: this route does not match
        return number

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(TicketTokenConverter, "token")
register_converter(IdConverter, "id")
