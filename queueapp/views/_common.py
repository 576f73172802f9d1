"""Small helpers the page views share, and the one way a page refuses."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render

from ..errors import QueueActionError
from ..languages import staff_language, use_language
from ..ratelimit import RateLimited


def refuse(request, error: QueueActionError):
    """A page saying, in words, why the request was refused, with the error's
    status; it extends base.html, so the navigation stays."""
    return _retry_after(render(request, "queueapp/refused.html", {"message": error.message},
                               status=error.status_code), error)


def refuse_form(request, template: str, context: dict, error: QueueActionError):
    """A visitor's form (join, kiosk, request, book) again, with the refusal's
    sentence beside the field it names and the alert contact as typed."""
    context.update(error=error.message, error_field=error.field, alert_field=error.field,
                   alert_value=request.POST.get("alert_contact", ""))
    return _retry_after(render(request, template, context, status=error.status_code), error)


def _retry_after(response, error: QueueActionError):
    # A limit says when to come back (RFC 9110 for 429).
    if isinstance(error, RateLimited):
        response["Retry-After"] = str(error.retry_after)
    return response


def authorize(view):
    """The one way a staff page refuses (as Healthchecks' `@authorize`).

    Anonymous visitors go to the login page and come back; the access checks'
    NotFound / PermissionDenied (`queueapp.access`), and any other typed error
    the view lets out, become the refusal page with the error's status (404,
    403, 409...). Views call the `access_*` / `check_*` functions and let
    their errors rise; none renders a refusal of its own.
    """
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        use_language(request, staff_language(request))
        try:
            return view(request, *args, **kwargs)
        except QueueActionError as error:
            return refuse(request, error)
    return wrapper
