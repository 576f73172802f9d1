"""`/`: the start page. Visitors find where to take a ticket; staff where to sign in."""

from __future__ import annotations

from django.shortcuts import render
from django.urls import path

from .. import pages


def start(request):
    return render(request, "queueapp/start.html", {"locations": pages.start_locations()})


urlpatterns = [
    path("", start, name="start"),
]
