"""Small helpers the page views share."""

from __future__ import annotations

from functools import wraps

from django.shortcuts import render

from ..errors import QueueActionError


def refuse(request, error: QueueActionError):
    """A page saying, in words, why the request was refused, with the error's status."""
    return render(request, "queueapp/refused.html", {"message": error.message}, status=error.status_code)


def answers_refusals(view):
    """Turn the access checks' NotFound/PermissionDenied into a page with the right status."""
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except QueueActionError as error:
            return refuse(request, error)
    return wrapper
