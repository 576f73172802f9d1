"""URL map. Each area keeps its own list in its module; this only joins them."""

from django.urls import path

from .api import api

urlpatterns: list = [
    path("api/", api.urls),
]
