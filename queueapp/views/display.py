"""The lobby display: a public TV page, numbers only."""

from __future__ import annotations

from django.shortcuts import get_object_or_404, render
from django.urls import path

from .. import pages
from ..models import Location


def display(request, location_slug: str):
    location = get_object_or_404(Location, slug=location_slug)
    context = {"location": location, **pages.display_context(location)}
    return render(request, "queueapp/display.html", context)


urlpatterns = [
    path("display/<slug:location_slug>/", display, name="display"),
]
