"""What a server process's first requests would pay for, done before it listens.

Django imports the URL conf (and with it every view, form and service the
views import) on the first request, compiles each URL pattern the first time
a path is matched against it, and compiles each template on its first render
(the cached loader keeps it after). In a fresh process that was ~150 ms of
one request's time on this 2-core machine (imports ~60 ms, the resolver ~13
ms, the 47 templates ~80 ms, timed in process, session 13); under daphne a
fresh process's first `/login/` took 189-206 ms, 21-70 ms with this
(bench/first_request.py). After a deploy that first request is often a staff
click. (bench/restart.py's staff calls bypass the URL conf: this does not
change them.)

Only code and files, no database or network: it runs when the ASGI module is
imported, before daphne listens (a database that is slow to answer must not
hold the listen; the database warm-up is
`queueapp.live.server_tuning.warm_before_first_connect`, after listening).
"""

from __future__ import annotations

import codecs
import importlib
import logging
import pkgutil
from pathlib import Path

log = logging.getLogger(__name__)

SKIPPED = (".migrations", ".management")  # never run by a request


def import_request_code() -> None:
    import queueapp
    from django.conf import settings
    from django.template import TemplateSyntaxError, engines
    from django.template.loader import get_template
    from django.urls import Resolver404, get_resolver
    from django.utils.module_loading import import_string

    for module in pkgutil.walk_packages(queueapp.__path__, "queueapp."):
        if not any(part in module.name for part in SKIPPED):
            importlib.import_module(module.name)
    resolver = get_resolver()
    try:
        resolver.resolve("/-warm-up-/")  # no such path: every pattern is tried, so compiled
    except Resolver404:
        pass
    resolver.reverse_dict  # noqa: B018  (builds the reverse tables {% url %} and redirects use)
    # What Django looks up by name on a request's first use: the templates' context processors,
    # the message storage, the session serializer.
    engines["django"].engine.template_context_processors  # noqa: B018
    for name in (settings.MESSAGE_STORAGE, settings.SESSION_SERIALIZER, settings.SESSION_ENGINE + ".SessionStore"):
        import_string(name)
    codecs.lookup("unicode_escape")  # (a 404's log line escapes the path with it)
    for directory in settings.TEMPLATES[0]["DIRS"]:
        for path in sorted(Path(directory).rglob("*.html")):
            try:
                get_template(str(path.relative_to(directory)))
            except TemplateSyntaxError:  # its page will say so; the server still starts
                log.exception("template %s does not compile", path)
