"""The managers' statistics page (`/stats/`, URL name `stats`) and its CSV."""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..access import managed_locations
from ..charts import bar_chart
from ..errors import PermissionDenied
from ..models import Location
from ..reports import DateRangeForm, csv_response
from ..stats import (
    DeskRow,
    Figures,
    StatsRow,
    csv_header,
    csv_rows,
    desk_csv_header,
    desk_csv_rows,
    desk_stats,
    queue_stats,
)
from ._common import authorize


class StatsForm(DateRangeForm):
    location = forms.ModelChoiceField(queryset=Location.objects.none(), required=False,
                                      empty_label=None, label=gettext_lazy("Location"))
    by = forms.ChoiceField(choices=[("day", gettext_lazy("per day")), ("hour", gettext_lazy("per hour of the day")),
                                    ("desk", gettext_lazy("per counter and staff member"))],
                           required=False, label=gettext_lazy("CSV rows"))

    def day_location(self):
        # The chosen location's day; none chosen: the page's default location.
        return self.cleaned_data.get("location") or super().day_location()

    def __init__(self, *args, locations, **kwargs):
        super().__init__(*args, locations=locations, **kwargs)
        self.fields["location"].queryset = locations


@authorize
def stats_page(request: HttpRequest) -> HttpResponse:
    locations = managed_locations(request.user)
    if not locations.exists():
        raise PermissionDenied(_("Only a manager can see statistics."))
    form = StatsForm(request.GET, locations=locations)  # every field may be empty: today
    if not form.is_valid():
        return render(request, "queueapp/stats.html",
                      {"form": form, "error": form.error_text()}, status=400)
    location = form.cleaned_data["location"] or locations.first()
    start, end = form.days
    only = Location.objects.filter(pk=location.pk)
    if request.GET.get("format") == "csv":
        by = form.cleaned_data["by"] or "day"
        if by == "desk":
            return csv_response(f"stats-{location.slug}-{start}-{end}-desk.csv", desk_csv_header(),
                                desk_csv_rows(desk_stats(location, start, end)))
        rows = queue_stats(start=start, end=end, by=by, locations=only)
        return csv_response(f"stats-{location.slug}-{start}-{end}-{by}.csv", csv_header(by), csv_rows(rows))
    by_day = queue_stats(start=start, end=end, by="day", locations=only)
    by_hour = queue_stats(start=start, end=end, by="hour", locations=only, per_queue=False)
    form = StatsForm(initial={"start": start, "end": end, "location": location}, locations=locations)
    return render(request, "queueapp/stats.html", {
        "form": form, "location": location, "start": start, "end": end,
        "table": [_cells(r) for r in by_day], "charts": _charts(by_hour),
        "desks": [_desk_cells(r) for r in desk_stats(location, start, end)],
        "csv_query": f"location={location.pk}&start={start}&end={end}",
    })


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.1f}"


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.0f}%"


def _cells(row: StatsRow) -> dict:
    f = row.figures
    return {
        "queue": row.queue.name if row.queue else "All queues", "total": row.queue is None,
        "day": row.bucket, "issued": f.issued, "served": f.served, "no_shows": f.no_shows,
        "no_show_rate": _percent(f.no_show_rate), "cancellations": f.cancellations,
        "wait": [_minutes(f.wait_avg), _minutes(f.wait_median), _minutes(f.wait_p90)],
        "within_target": _percent(f.within_target_rate),
        "service": [_minutes(f.service_avg), _minutes(f.service_median), _minutes(f.service_p90)],
        "throughput": "—" if f.throughput_per_hour is None else f"{f.throughput_per_hour:.1f}",
        "requests": f.requests, "confirmation_rate": _percent(f.confirmation_rate),
        "confirm": _minutes(f.confirm_median), "offer_expiry_rate": _percent(f.offer_expiry_rate),
        "rating": _rating(f.rating_avg, f.ratings),
    }


def _rating(avg: float | None, n: int) -> str:
    return "—" if avg is None else f"{avg:.1f} ({n})"


def _desk_cells(row: DeskRow) -> dict:
    return {"kind": row.kind, "name": row.name, "served": row.served,
            "service": _minutes(row.service_avg), "rating": _rating(row.rating_avg, row.ratings),
            "open": _hours(row.open_seconds), "on_break": _hours(row.break_seconds),
            "idle": _hours(row.idle_seconds)}


def _hours(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 3600:.1f}"


def _charts(hours: list[StatsRow]) -> list:
    if not hours:
        return []
    by_hour: dict[int, Figures] = {r.bucket: r.figures for r in hours}
    span = range(min(by_hour), max(by_hour) + 1)
    labels = [f"{h:02d}" for h in span]
    pick = [by_hour.get(h, Figures()) for h in span]
    minutes = lambda v: None if v is None else v / 60  # noqa: E731
    return [
        bar_chart(_("Wait before being called (minutes; bars: average, line: 90th percentile)"),
                  labels, [minutes(f.wait_avg) for f in pick],
                  line=[minutes(f.wait_p90) for f in pick], line_label=_("90th percentile")),
        bar_chart(_("Throughput (tickets served per hour)"), labels,
                  [f.throughput_per_hour for f in pick]),
        bar_chart(_("No-show rate (%% of called tickets that ended)") % {}, labels,
                  [None if f.no_show_rate is None else f.no_show_rate * 100 for f in pick],
                  fmt=lambda v: f"{v:.0f}%"),
    ]


urlpatterns = [path("stats/", stats_page, name="stats")]
