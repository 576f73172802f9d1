"""Log in and out with Django's own views; our templates. A staff member's language."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from ..services import QueueActionError, do_set_staff_language
from ._common import authorize


@require_POST
@authorize
def choose_language(request):
    """The staff member's language: stored on their user (every staff page follows
    it) and in Django's language cookie (so the admin and the login page do too)."""
    back = request.POST.get("next", "")
    if (any(ord(c) < 32 for c in back)
            or not url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=request.is_secure())):
        back = ""
    response = redirect(back or "console-home")
    try:
        preference = do_set_staff_language(request.user, language=request.POST.get("language", ""))
    except QueueActionError as error:
        messages.error(request, error.message)
        return response
    if preference.language:
        response.set_cookie(settings.LANGUAGE_COOKIE_NAME, preference.language, samesite="Lax",
                            max_age=365 * 24 * 3600)
    else:
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME)
    return response


urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/language", choose_language, name="staff-language"),
]
