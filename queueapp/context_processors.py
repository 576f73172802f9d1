"""What the navigation offers: only pages that would let this user in."""

from __future__ import annotations

from django.contrib import admin
from django.utils.functional import SimpleLazyObject

from .access import managed_locations


def navigation(request) -> dict:
    """`nav.stats` / `nav.admin`: links shown only when the page would answer
    200, judged by the same checks the pages use (`managed_locations` for the
    statistics, the admin site's own `has_permission`). Lazy: a page without
    the navigation pays no query."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav": {"stats": False, "admin": False}}
    return {"nav": SimpleLazyObject(lambda: {
        "stats": managed_locations(user).exists(),
        "admin": admin.site.has_permission(request),
    })}
