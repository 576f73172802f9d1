"""The JavaScript catalog (`gettext()`/`interpolate()` in static/queueapp/*.js).

A page asks for its own language (`?lang=`, what base.html's `LANGUAGE_CODE` is):
a ticket page speaks the ticket's language, which the browser's cookie and
Accept-Language know nothing about. Cached by the browser for a day per language.
"""

from __future__ import annotations

from django.urls import path
from django.utils import translation
from django.views.decorators.cache import cache_control
from django.views.i18n import JavaScriptCatalog

from ..languages import is_shipped


class PageCatalog(JavaScriptCatalog):
    domain = "djangojs"

    def get(self, request, *args, **kwargs):
        language = request.GET.get("lang")
        if not is_shipped(language):
            return super().get(request, *args, **kwargs)
        with translation.override(language):
            return super().get(request, *args, **kwargs)


urlpatterns = [
    path("jsi18n/", cache_control(max_age=86400, public=True)(PageCatalog.as_view()), name="javascript-catalog"),
]
