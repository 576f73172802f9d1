"""URL map. Each area keeps its own list in its module; this only joins them."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
