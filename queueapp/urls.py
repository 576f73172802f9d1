"""URL map. Each area keeps its own list in its module; this only joins them."""

from django.urls import include, path

from .api import api
from .api.errors import api_urlpatterns

urlpatterns: list = [
    *api_urlpatterns(api, "api/"),
    path("", include("queueapp.views.health")),
    path("", include("queueapp.views.stats")),
    path("", include("queueapp.views.waitlist")),
    path("", include("queueapp.views.rooms")),
    path("", include("queueapp.views.requests")),
    path("", include("queueapp.views.live")),
    path("", include("queueapp.views.auth")),
    path("", include("queueapp.views.console")),
    path("", include("queueapp.views.bookings")),
    path("", include("queueapp.views.kiosk")),
    path("", include("queueapp.views.patient")),
    path("", include("queueapp.alerts.views")),
    path("", include("queueapp.views.display")),
    path("", include("queueapp.views.start")),
    path("", include("queueapp.views.jsi18n")),
]
