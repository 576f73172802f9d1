"""The middleware chain, without a thread hop per hook under ASGI.

Under daphne Django runs the chain asynchronously, and then every hook of a
stock `MiddlewareMixin` middleware (`process_request`, `process_view`,
`process_response`) is called through `sync_to_async`: a hop to the
request's thread and back, about a dozen per request with our chain. And
WhiteNoise's middleware is sync-only, which makes Django run the whole chain
in a worker thread instead. Either way every request, `/healthz` included,
paid several milliseconds of CPU for hops around hooks that do no I/O.

These subclasses keep the stock behaviour and run the hooks that do no I/O
inline on the event loop; the two that can write (the session when it was
modified, the messages when some were used or added) still hop to a thread
for exactly that case. Under WSGI or Django's test client (sync) they are
the stock classes, unchanged.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.middleware import clickjacking, common, csrf, locale, security
from whitenoise.middleware import WhiteNoiseMiddleware


class InlineHooks:
    """Mixin for a `MiddlewareMixin` middleware whose hooks do no I/O (see the
    module docstring); `response_needs_thread` names the exception."""

    def response_needs_thread(self, request, response) -> bool:
        return False

    async def __acall__(self, request):
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            if self.response_needs_thread(request, response):
                response = await sync_to_async(self.process_response, thread_sensitive=True)(request, response)
            else:
                response = self.process_response(request, response)
        return response


class SecurityMiddleware(InlineHooks, security.SecurityMiddleware):
    pass


class CommonMiddleware(InlineHooks, common.CommonMiddleware):
    pass


class CsrfViewMiddleware(InlineHooks, csrf.CsrfViewMiddleware):
    def __init__(self, get_response):
        super().__init__(get_response)
        if iscoroutinefunction(get_response):
            # Django adapts a sync `process_view` with a hop; hand it a coroutine.
            sync_view_hook = self.process_view

            async def process_view(request, callback, callback_args, callback_kwargs):
                return sync_view_hook(request, callback, callback_args, callback_kwargs)

            self.process_view = process_view


class SessionMiddleware(InlineHooks, sessions.SessionMiddleware):
    def response_needs_thread(self, request, response) -> bool:
        session = getattr(request, "session", None)
        return session is not None and (session.modified or settings.SESSION_SAVE_EVERY_REQUEST)


class LocaleMiddleware(InlineHooks, locale.LocaleMiddleware):
    """The language cookie, then Accept-Language (no I/O); queueapp/languages.py
    narrows it per page (a location's offer, a ticket's or staff member's choice)."""


class AuthenticationMiddleware(InlineHooks, auth.AuthenticationMiddleware):
    pass  # process_request only sets lazy `user`/`auser`; the lookup happens in the view


class MessageMiddleware(InlineHooks, messages.MessageMiddleware):
    def response_needs_thread(self, request, response) -> bool:
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)


class XFrameOptionsMiddleware(InlineHooks, clickjacking.XFrameOptionsMiddleware):
    pass


class AsyncWhiteNoiseMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, async-capable: the same files served the same way."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response=None, **kwargs):
        super().__init__(get_response, **kwargs)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request):
        static_file = self.find_file(request.path_info) if self.autorefresh else self.files.get(request.path_info)
        if static_file is not None:
            return self.serve(static_file, request)
        return await self.get_response(request)
