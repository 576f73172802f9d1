"""The lobby display: a public TV page, numbers only."""

from __future__ import annotations

from django.shortcuts import get_object_or_404, render
from django.urls import path

from .. import pages, voice
from ..languages import use_language
from ..models import Location


def display(request, location_slug: str):
    location = get_object_or_404(Location, slug=location_slug)
    use_language(request, location.default_language)  # one TV, many readers: the location's language
    languages = voice.announcement_languages(location)
    context = {"location": location, "voice": voice.voice_context(languages), **pages.display_context(location)}
    return render(request, "queueapp/display.html", context)


urlpatterns = [
    path("display/<slug:location_slug>/", display, name="display"),
]
