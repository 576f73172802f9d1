"""What the statistics page and the CSV exports share: a date range and streamed CSV."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from datetime import date, timedelta

from asgiref.sync import sync_to_async
from django import forms
from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .forms import DigitsDateField

MAX_RANGE_DAYS = 366


class DateRangeForm(forms.Form):
    """From and to (inclusive) business days; today when left empty.

    "Today" is a location's business day (`Location.business_day`), not the
    server's: from 23:00 UTC a Paris location is already in tomorrow. The form
    is given the locations it is about; the day is that of the first of them
    (by name), the one the statistics page shows when none is chosen.
    """

    start = DigitsDateField(required=False, label=gettext_lazy("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end = DigitsDateField(required=False, label=gettext_lazy("To"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, locations: QuerySet | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.locations = locations

    def clean(self):
        data = super().clean()
        today = self.today()
        start, end = data.get("start"), data.get("end")
        if self.errors:
            return data
        end = end or today
        start = start or end
        if start > end:
            raise forms.ValidationError(_("'From' must be on or before 'To'."), code="reversed")
        if (end - start).days + 1 > MAX_RANGE_DAYS:
            raise forms.ValidationError(_("Choose at most %(days)s days at once.") % {"days": MAX_RANGE_DAYS},
                                        code="too_long")
        data["start"], data["end"] = start, end
        return data

    def day_location(self):
        """The location whose day an empty range means (None: the server's day)."""
        return self.locations.order_by("name").first() if self.locations is not None else None

    def today(self) -> date:
        """The day an empty range means: the location's business day."""
        location = self.day_location()
        return location.business_day() if location is not None else timezone.localdate()

    def error_text(self) -> str:
        """One line naming each bad field (by its label, in the page's language) and why (for a 400 answer)."""
        parts = []
        for field, errors in self.errors.items():
            name = _("Range") if field == "__all__" else (self.fields[field].label or field)
            parts.append(f"{name}: {' '.join(errors)}")
        return "; ".join(parts)

    @property
    def days(self) -> tuple[date, date]:
        return self.cleaned_data["start"], self.cleaned_data["end"]


def day_after(day: date) -> date:
    return day + timedelta(days=1)


class _Echo:
    """csv.writer wants a file; this one hands each line straight back."""

    def write(self, value: str) -> str:
        return value


def stream_queryset_csv(filename: str, header: list[str], queryset: QuerySet, fields: list[str],
                        *, row: Callable[[tuple], Iterable] = lambda values: values,
                        chunk: int = 2000) -> StreamingHttpResponse:
    """A CSV download of `fields` of `queryset`, read in pages of `chunk` rows by
    primary key, so a year of events never sits in memory.

    The body is an async iterator: under ASGI (daphne) Django would otherwise
    read a sync iterator to the end before sending the first byte. Each page is
    its own short query; no cursor stays open between pages.
    """
    writer = csv.writer(_Echo())

    def page(after: int | None) -> list[tuple]:
        qs = queryset.order_by("pk")
        if after is not None:
            qs = qs.filter(pk__gt=after)
        return list(qs.values_list("pk", *fields)[:chunk])

    async def lines():
        yield writer.writerow(header)
        after = None
        while True:
            batch = await sync_to_async(page)(after)
            for values in batch:
                yield writer.writerow(row(values[1:]))
            if len(batch) < chunk:
                return
            after = batch[-1][0]

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable]) -> HttpResponse:
    """A small CSV built in memory (a statistics table: at most a few hundred rows)."""
    writer = csv.writer(_Echo())
    response = HttpResponse("".join([writer.writerow(header), *(writer.writerow(r) for r in rows)]),
                            content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
