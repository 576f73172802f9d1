"""System checks for settings that would make the product misbehave quietly."""

from django.conf import settings
from django.core.checks import Error, register


@register()
def check_channel_layer(app_configs, **kwargs):
    problems = []
    layer = settings.CHANNEL_LAYERS.get("default", {})
    if "redis" in layer.get("BACKEND", "").lower():
        for host in layer.get("CONFIG", {}).get("hosts", []):
            if isinstance(host, dict) and host.get("socket_timeout", 5) is not None:
                problems.append(Error(
                    "Redis channel layer host has a socket timeout; idle screens would be "
                    "closed with 1011 (redis-py 8 defaults to 5 s).",
                    hint='Set "socket_timeout": None on each host.', id="queueapp.E001",
                ))
    return problems


@register()
def check_database_connections(app_configs, **kwargs):
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("postgresql") and db.get("CONN_MAX_AGE", 0) != 0:
        return [Error("CONN_MAX_AGE must be 0 under ASGI; use psycopg's pool instead.",
                      id="queueapp.E002")]
    return []


# Django's deploy checks security.W001-W003 look for the stock middleware by
# its dotted path; we install subclasses of them (queueapp/middleware.py), so
# those checks are silenced in settings and this one takes their place.
PROTECTIVE_MIDDLEWARE = {
    "django.middleware.security.SecurityMiddleware": "security headers and HTTPS redirect",
    "django.middleware.clickjacking.XFrameOptionsMiddleware": "X-Frame-Options",
    "django.middleware.csrf.CsrfViewMiddleware": "CSRF protection",
}


@register(deploy=True)
def check_protective_middleware(app_configs, **kwargs):
    from django.utils.module_loading import import_string

    installed = [import_string(path) for path in settings.MIDDLEWARE]
    problems = []
    for path, what in PROTECTIVE_MIDDLEWARE.items():
        stock = import_string(path)
        if not any(issubclass(cls, stock) for cls in installed if isinstance(cls, type)):
            problems.append(Error(f"No {path} (or subclass) in MIDDLEWARE: {what} is off.",
                                  id="queueapp.E003"))
    return problems
