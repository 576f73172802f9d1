"""The embedded default's e-mail back-end: Django's console back-end with the
recipients masked, so the worker's output never holds an address in full."""

from __future__ import annotations

import copy

from django.core.mail.backends.console import EmailBackend as DjangoConsoleBackend

from .models import masked


class ConsoleEmailBackend(DjangoConsoleBackend):
    def write_message(self, message):
        shown = copy.copy(message)
        hide = lambda address: masked(address).replace("…", "...")  # noqa: E731  (ASCII in headers)
        shown.to, shown.cc, shown.bcc = [hide(a) for a in message.to], [hide(a) for a in message.cc], []
        return super().write_message(shown)
