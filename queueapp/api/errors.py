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


# pydantic's error types, as our own sentences (pydantic's `msg` is English only).
# Each names the field; `%(...)s` placeholders come from the error's `ctx`.
_MESSAGE_OF_TYPE = {
    "missing": gettext_lazy("%(field)s: is required."),
    "model_type": gettext_lazy("%(field)s: must be a JSON object."),
    "dict_type": gettext_lazy("%(field)s: must be a JSON object."),
    "model_attributes_type": gettext_lazy("%(field)s: must be a JSON object."),
    "extra_forbidden": gettext_lazy("%(field)s: is not a field of this request."),
    "int_type": gettext_lazy("%(field)s: must be a whole number."),
    "int_parsing": gettext_lazy("%(field)s: must be a whole number."),
    "int_from_float": gettext_lazy("%(field)s: must be a whole number."),
    "float_type": gettext_lazy("%(field)s: must be a number."),
    "float_parsing": gettext_lazy("%(field)s: must be a number."),
    "bool_type": gettext_lazy("%(field)s: must be true or false."),
    "bool_parsing": gettext_lazy("%(field)s: must be true or false."),
    "string_type": gettext_lazy("%(field)s: must be a string."),
    "string_too_short": gettext_lazy("%(field)s: must have at least %(min_length)s characters."),
    "string_too_long": gettext_lazy("%(field)s: must have at most %(max_length)s characters."),
    "string_pattern_mismatch": gettext_lazy("%(field)s: does not have the expected form."),
    "too_short": gettext_lazy("%(field)s: must have at least %(min_length)s items."),
    "too_long": gettext_lazy("%(field)s: must have at most %(max_length)s items."),
    "list_type": gettext_lazy("%(field)s: must be a list."),
    "greater_than": gettext_lazy("%(field)s: must be greater than %(gt)s."),
    "greater_than_equal": gettext_lazy("%(field)s: must be at least %(ge)s."),
    "less_than": gettext_lazy("%(field)s: must be less than %(lt)s."),
    "less_than_equal": gettext_lazy("%(field)s: must be at most %(le)s."),
    "literal_error": gettext_lazy("%(field)s: must be one of %(expected)s."),
    "enum": gettext_lazy("%(field)s: must be one of %(expected)s."),
    "date_type": gettext_lazy("%(field)s: must be a date (YYYY-MM-DD)."),
    "date_parsing": gettext_lazy("%(field)s: must be a date (YYYY-MM-DD)."),
    "date_from_datetime_parsing": gettext_lazy("%(field)s: must be a date (YYYY-MM-DD)."),
    "date_from_datetime_inexact": gettext_lazy("%(field)s: must be a date (YYYY-MM-DD)."),
    "datetime_type": gettext_lazy("%(field)s: must be a date and time (ISO 8601, e.g. 2026-03-01T10:00:00+01:00)."),
    "datetime_parsing": gettext_lazy("%(field)s: must be a date and time (ISO 8601, e.g. 2026-03-01T10:00:00+01:00)."),
    "datetime_from_date_parsing": gettext_lazy("%(field)s: must be a date and time (ISO 8601, e.g. 2026-03-01T10:00:00+01:00)."),
    "timezone_aware": gettext_lazy("%(field)s: must include a time zone offset."),
    "time_type": gettext_lazy("%(field)s: must be a time of day (HH:MM)."),
    "time_parsing": gettext_lazy("%(field)s: must be a time of day (HH:MM)."),
    "uuid_type": gettext_lazy("%(field)s: must be a UUID."),
    "uuid_parsing": gettext_lazy("%(field)s: must be a UUID."),
}
# Anything else pydantic may say: still a sentence in the caller's language.
_NOT_VALID = gettext_lazy("%(field)s: is not a valid value.")
_REQUEST_NOT_VALID = gettext_lazy("The request is not valid.")


def _validation_message(error: dict, field: str | None) -> str:
    """One error as a sentence in the request's language, naming `field`."""
    kind, ctx = error.get("type"), error.get("ctx") or {}
    if kind == "value_error":  # our own validators: their (translated) message, without pydantic's prefix
        message = str(ctx["error"]) if "error" in ctx else error["msg"]
        return f"{field}: {message}" if field else message
    if not field:
        return str(_REQUEST_NOT_VALID)
    template = _MESSAGE_OF_TYPE.get(kind, _NOT_VALID)
    params = {key: str(value) for key, value in ctx.items()}
    params["field"] = field
    try:
        return str(template) % params
    except KeyError:  # a ctx without the number the sentence names
        return str(_NOT_VALID) % {"field": field}


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
            parts.append(_validation_message(error, field).rstrip("."))
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
