"""Which language a request speaks (issue 15), decided in one place.

- A visitor's page (kiosk, join, request) speaks the language they picked
  (`?lang=`, or the form's `language` field), else the best of their browser's
  Accept-Language that the location offers, else the location's default.
- A ticket's page, its live fragments and its alerts speak `Ticket.language`
  (chosen when the ticket was taken, changed on the ticket page).
- The lobby display speaks `Location.default_language`.
- Staff pages speak the staff member's `StaffPreference.language`, else their
  browser's (Django's LocaleMiddleware, `queueapp.middleware.LocaleMiddleware`).

Pages activate the language with `use_language(request, code)`, which also
sets `request.LANGUAGE_CODE` so `{{ LANGUAGE_CODE }}`/`LANGUAGE_BIDI` in
base.html follow it.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import translation
from django.utils.translation.trans_real import parse_accept_lang_header

SHIPPED = tuple(code for code, _ in settings.LANGUAGES)


def is_shipped(code) -> bool:
    return isinstance(code, str) and code in SHIPPED


def language_choices(codes) -> list[dict]:
    """[{code, name (in its own language), bidi}] for a language picker."""
    choices = []
    for code in codes:
        info = translation.get_language_info(code)
        choices.append({"code": code, "name": info["name_local"], "bidi": info["bidi"]})
    return choices


def accepted(header: str, offered) -> str | None:
    """The first language of an Accept-Language header that is offered (a
    regional tag `de-AT` matches `de`), or None."""
    offered = list(offered)
    for tag, _quality in parse_accept_lang_header(header or ""):
        tag = tag.lower()
        for candidate in (tag, tag.split("-")[0]):
            if candidate in offered:
                return candidate
    return None


def visitor_language(request, location, chosen=None) -> str:
    """A visitor's language at `location`: their pick if offered, else their
    browser's first offered language, else the location's default."""
    offered = location.offered_languages
    if chosen is None:
        chosen = request.GET.get("lang") or request.POST.get("language")
    if chosen in offered:
        return chosen
    return accepted(request.headers.get("Accept-Language", ""), offered) or location.default_language


def staff_language(request) -> str:
    """A staff member's language: their preference, else what the browser asked
    for (the language cookie or Accept-Language, as LocaleMiddleware chose)."""
    chosen = preferred_language(request.user)
    return chosen or translation.get_language() or settings.LANGUAGE_CODE


def preferred_language(user) -> str:
    """The user's stored choice (`StaffPreference`), "" for none (one query)."""
    if not user.is_authenticated:
        return ""
    preference = getattr(user, "preference", None)
    return preference.language if preference is not None and preference.language in SHIPPED else ""


def browser_language(scope: dict) -> str:
    """A WebSocket's language as LocaleMiddleware would pick it for a page: the
    language cookie, then Accept-Language, then the default."""
    cookie = (scope.get("cookies") or {}).get(settings.LANGUAGE_COOKIE_NAME)
    if is_shipped(cookie):
        return cookie
    headers = dict(scope.get("headers") or ())
    header = headers.get(b"accept-language", b"").decode("latin-1")
    return accepted(header, SHIPPED) or settings.LANGUAGE_CODE


def use_language(request, code: str) -> str:
    """Make `code` this request's language (templates, messages, errors)."""
    translation.activate(code)
    request.LANGUAGE_CODE = code
    return code
