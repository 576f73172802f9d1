"""Every failure the API can answer, as `{"detail": message, "code": code, "field": field}`.

Services raise typed `QueueActionError`s that carry their own status; input that
does not even parse is a 400 naming the field (django-ninja would say 422 with
pydantic's raw list); a missing or bad login is 401.
"""

from __future__ import annotations

import json
from inspect import iscoroutinefunction
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from ..errors import QueueActionError

CODES_BY_STATUS = {400: "invalid", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
                   405: "method_not_allowed", 409: "conflict", 429: "throttled"}
NOT_LOGGED_IN = gettext_lazy("Log in, or send an API token as 'Authorization: Bearer <key>'.")
# Services name the object an error is about ("queue"); the API's inputs carry
# its id ("queue_id"). An error names what the caller sent.
INPUT_NAME_OF_FIELD = {"queue": "queue_id", "counter": "counter_id", "ticket": "ticket_id"}


def error_body(detail: str, *, code: str, field: str | None = None) -> dict[str, Any]:
    return {"detail": detail, "code": code, "field": field}


def _field_of(loc: tuple) -> str | None:
    """('body', 'payload', 'priority') -> 'priority'; ('path', 'ticket_id') -> 'ticket_id'.

    The second part of a body location is the view's parameter name, which the
    caller never sees; a missing body as a whole is reported as 'body'.
    """
    source, *rest = loc
    if source == "body":
        rest = rest[1:]
        if not rest:
            return "body"
    return ".".join(str(part) for part in rest) or None


def _validation_message(error: dict) -> str:
    if error.get("type") == "missing":
        return "is required"
    if error.get("type") in ("model_type", "dict_type", "model_attributes_type"):
        return "must be a JSON object"
    if error.get("type") == "extra_forbidden":
        return "is not a field of this request"
    if error.get("type") == "value_error":  # our own validators: their message, without pydantic's prefix
        return str(error["ctx"]["error"]) if "error" in error.get("ctx", {}) else error["msg"]
    return error["msg"][:1].lower() + error["msg"][1:]


def install_error_handlers(api: NinjaAPI) -> None:
    @api.exception_handler(QueueActionError)
    def queue_action_error(request: HttpRequest, exc: QueueActionError) -> HttpResponse:
        field = INPUT_NAME_OF_FIELD.get(exc.field, exc.field)
        return api.create_response(request, error_body(exc.message, code=exc.code, field=field),
                                   status=exc.status_code)

    @api.exception_handler(ValidationError)
    def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        parts, first_field = [], None
        for error in exc.errors:
            field = _field_of(tuple(error["loc"]))
            first_field = first_field or field
            parts.append(f"{field}: {_validation_message(error)}" if field else error["msg"])
        return api.create_response(request, error_body("; ".join(parts) + ".", code="invalid",
                                                       field=first_field), status=400)

    @api.exception_handler(AuthenticationError)
    def not_authenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        detail = str(exc.message if exc.message != "Unauthorized" else NOT_LOGGED_IN)
        response = api.create_response(request, error_body(detail, code="unauthenticated"), status=401)
        response["WWW-Authenticate"] = "Bearer"
        return response

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        detail = exc.message
        if isinstance(exc.__cause__, (json.JSONDecodeError, UnicodeDecodeError)):
            # django-ninja's own message hides where the JSON broke.
            detail = _("The request body is not valid JSON (%(error)s).") % {"error": exc.__cause__}
        code = CODES_BY_STATUS.get(exc.status_code, "error")
        field = "body" if exc.status_code == 400 else None
        return api.create_response(request, error_body(detail, code=code, field=field),
                                   status=exc.status_code)

    @api.exception_handler(RequestDataTooBig)
    def too_large(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return api.create_response(
            request, error_body(_("The request body is larger than %(limit)s bytes.") % {"limit": limit}, code="too_large",
                                field="body"), status=413)

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return api.create_response(request, error_body(_("Not found."), code="not_found"), status=404)


def unknown_path(request: HttpRequest, rest: str = "") -> JsonResponse:
    """Anything under /api/ that names no endpoint: the same JSON as every other error."""
    return JsonResponse(error_body(_("No API endpoint at %(path)s; see /api/docs.") % {"path": request.path}, code="not_found"),
                        status=404)


def json_method_not_allowed(view):
    """django-ninja answers a wrong method in plain text, and its root an HTML 404;
    answer both as JSON (a 405 keeps its `Allow` header)."""

    def as_json(request: HttpRequest, response):
        if not isinstance(response, HttpResponseNotAllowed):
            return response
        allowed = response["Allow"]
        answer = JsonResponse(error_body(_("%(method)s is not allowed here; use %(allowed)s.") % {"method": request.method, "allowed": allowed},
                                         code=CODES_BY_STATUS[405]), status=405)
        answer["Allow"] = allowed
        return answer

    if iscoroutinefunction(view):
        @wraps(view)
        async def async_wrapper(request: HttpRequest, *args, **kwargs):
            try:
                return as_json(request, await view(request, *args, **kwargs))
            except Http404:
                return unknown_path(request)
        return async_wrapper

    @wraps(view)  # keeps csrf_exempt: ninja checks CSRF itself, per authentication
    def wrapper(request: HttpRequest, *args, **kwargs):
        try:
            return as_json(request, view(request, *args, **kwargs))
        except Http404:  # ninja's own root view (/api/) raises it
            return unknown_path(request)

    return wrapper


def api_urlpatterns(api: NinjaAPI, prefix: str) -> list:
    """The API's URL patterns under `prefix`, answering JSON for a wrong method or path."""
    from django.urls import include, path, re_path

    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        pattern.callback = json_method_not_allowed(pattern.callback)
    return [path(prefix, include((patterns, app_name), namespace=namespace)),
            re_path(rf"^{prefix}(?P<rest>.*)$", unknown_path)]
