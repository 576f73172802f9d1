"""Settings, all read from the environment.

Unset, everything falls back to the embedded default: a SQLite file and the
in-memory channel layer, so `make run` works on a bare machine. Set
DATABASE_URL/REDIS_URL for the production set-up (PostgreSQL + Redis).
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_number(name: str, default: float, *, kind: type = float, minimum: float | None = 0) -> float:
    """A number from the environment: `kind` is int or float; a value that is not
    one (Unicode digits, nan and inf included) or is below `minimum` stops start-up
    with ImproperlyConfigured naming the variable, never a bare ValueError."""
    value = os.environ.get(name)
    if value is None:
        return default
    what = "a whole number" if kind is int else "a number"
    text = value.strip()
    try:
        if not text.isascii():
            raise ValueError(text)
        number = kind(text)
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(text)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be {what}, not {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value!r}")
    return number


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and os.environ.get("QUEUEAPP_REQUIRE_SECRET_KEY"):
        raise ImproperlyConfigured("SECRET_KEY must be set in production")
    # Only for the embedded default and tests; `check --deploy` flags it.
    SECRET_KEY = "django-insecure-embedded-default-do-not-use-in-production"

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "ninja",
    "queueapp",
    "queueapp.alerts",
]

# The stock middleware, as subclasses that run their hooks without a thread
# hop under ASGI (queueapp/middleware.py says why); same order, same behaviour.
MIDDLEWARE = [
    "queueapp.middleware.SecurityMiddleware",
    "queueapp.middleware.AsyncWhiteNoiseMiddleware",
    "queueapp.middleware.SessionMiddleware",
    # The first guess of every page (language cookie, then Accept-Language); public
    # pages narrow it to what their location offers, staff pages to the user's choice.
    "queueapp.middleware.LocaleMiddleware",
    "queueapp.middleware.CommonMiddleware",
    "queueapp.middleware.CsrfViewMiddleware",
    "queueapp.middleware.AuthenticationMiddleware",
    "queueapp.middleware.MessageMiddleware",
    "queueapp.middleware.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, so a view's pool timeout or lost connection reaches it first: 503, never 500.
    "queueapp.overload.DatabaseBusyMiddleware",
]
# Django finds the stock security/clickjacking/CSRF middleware by dotted path
# only; queueapp.E003 (queueapp/checks.py) checks for them or their subclasses.
SILENCED_SYSTEM_CHECKS = ["security.W001", "security.W002", "security.W003"]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "queueapp.context_processors.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
_db = dj_database_url.parse(DATABASE_URL)
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["OPTIONS"] = {
        # IMMEDIATE takes the write lock at BEGIN, so concurrent writers wait on
        # the busy timeout instead of failing with "database is locked" when a
        # read transaction tries to upgrade.
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Threads in the concurrency tests need a real file, not shared-cache memory.
    _db["TEST"] = {"NAME": str(BASE_DIR / "test_db.sqlite3")}
elif _db["ENGINE"] == "django.db.backends.postgresql":
    # Persistent connections leak under ASGI; psycopg's pool does not.
    _db["CONN_MAX_AGE"] = 0
    # The stock backend, plus a shorter pool wait for public arrivals (queueapp.overload).
    _db["ENGINE"] = "config.postgresql"
    _db["OPTIONS"] = {
        "pool": {
            "min_size": 2,
            "max_size": env_number("DB_POOL_MAX", 40, kind=int, minimum=2),
            "timeout": env_number("DB_POOL_TIMEOUT", 20.0),
        }
    }
DATABASES = {"default": _db}
# PostgreSQL: a request's SET must not reach the next borrower of a pooled
# connection. config/postgresql/base.py resets each connection as it goes back
# (one round trip, on the returning thread; off only to measure it).
DB_POOL_RESET = env_bool("DB_POOL_RESET", True)

# --- Admission of HTTP requests (config/admission.py) ------------------------
# At most HTTP_IN_FLIGHT requests per process hold a thread (default: the
# database pool's size, since nearly every request wants a connection);
# HTTP_STAFF_RESERVE of them only for requests with credentials (a login's
# session cookie, an Authorization header). The others wait on the event loop
# up to HTTP_ADMISSION_WAIT s (with credentials: HTTP_STAFF_ADMISSION_WAIT; a
# waiting room's visitor holding a place: HTTP_PLACED_ADMISSION_WAIT, since an
# admitted visitor's reload turned away runs down its admission's lifetime),
# then get the busy 503 with Retry-After. Static files and /healthz are not counted.
HTTP_IN_FLIGHT = env_number("HTTP_IN_FLIGHT", _db.get("OPTIONS", {}).get("pool", {}).get("max_size", 40),
                            kind=int, minimum=1)
HTTP_STAFF_RESERVE = env_number("HTTP_STAFF_RESERVE", max(1, HTTP_IN_FLIGHT // 5) if HTTP_IN_FLIGHT > 1 else 0,
                                kind=int, minimum=0)
if HTTP_STAFF_RESERVE >= HTTP_IN_FLIGHT:
    raise ImproperlyConfigured(f"HTTP_STAFF_RESERVE ({HTTP_STAFF_RESERVE}) must be below HTTP_IN_FLIGHT "
                               f"({HTTP_IN_FLIGHT}): anonymous requests would never get in")
HTTP_ADMISSION_WAIT = env_number("HTTP_ADMISSION_WAIT", 1.0)
HTTP_STAFF_ADMISSION_WAIT = env_number("HTTP_STAFF_ADMISSION_WAIT", 10.0)
HTTP_PLACED_ADMISSION_WAIT = env_number("HTTP_PLACED_ADMISSION_WAIT", 5.0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer --------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# One prefix for the channel layer's and the cache's keys: deployments (and
# parallel test workers, see tests/worker_env.py) sharing one Redis each set their own.
REDIS_PREFIX = os.environ.get("CHANNEL_PREFIX", "queueapp")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": os.environ.get(
                "CHANNEL_LAYER_BACKEND", "channels_redis.pubsub.RedisPubSubChannelLayer"
            ),
            "CONFIG": {
                # redis-py 8 defaults to a 5 s socket timeout and 100 connections:
                # idle consumers would die with 1011 (channels_redis issue 422).
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": None,
                        "max_connections": 10_000,
                    }
                ],
                "prefix": REDIS_PREFIX,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Seconds over which a stopping server closes its live screens (code 4012), so
# the phones' reconnects come back spread out rather than all at once.
LIVE_SHUTDOWN_SPREAD = env_number("LIVE_SHUTDOWN_SPREAD", 2.0)
# How a page's live connection comes back after a close or a failed attempt
# (htmx 4's hx-ws, given to it by the `<meta name="htmx-config">` of
# `{% live_client_config %}`): the first retry after `_DELAY` seconds, doubling
# up to `_MAX_DELAY`, each ± `_JITTER` × itself. htmx's own cap is 60 s: after
# a restart that kept phones away ~10 s, their next tries fell 8-20 s later and
# one lost wave (an overloaded server dropping handshakes) cost another 16-40 s
# (docs/benchmarks.md, "Issue 9, sixth pass"). A 5 s cap with ±50 % (Socket.IO's
# defaults: 5 s, 0.5) brings every phone back within 7.5 s of the server
# listening, spread evenly over that window, and a lost attempt costs at most that.
LIVE_RECONNECT_DELAY = env_number("LIVE_RECONNECT_DELAY", 0.5, minimum=0.05)
LIVE_RECONNECT_MAX_DELAY = env_number("LIVE_RECONNECT_MAX_DELAY", 5.0, minimum=0.05)
LIVE_RECONNECT_JITTER = env_number("LIVE_RECONNECT_JITTER", 0.5)
# Seconds between the batches in which a waiting room's events reach its open
# pages (queueapp.live.hub): one frame per page per batch.
LIVE_ROOM_UPDATE_EVERY = env_number("LIVE_ROOM_UPDATE_EVERY", 0.5, minimum=0.01)
# A page far back in a waiting room's line gets its new place less often
# (queueapp.live.batch.frame_every): the first LIVE_ROOM_NEAR places every
# batch, then a period growing with the place, at most LIVE_ROOM_FAR_EVERY
# seconds (plus one batch). An admission is sent at once, whatever the place.
LIVE_ROOM_NEAR = env_number("LIVE_ROOM_NEAR", 100, kind=int, minimum=1)
LIVE_ROOM_FAR_EVERY = env_number("LIVE_ROOM_FAR_EVERY", 5.0, minimum=0.0)
# Staff first: while an HTTP request runs, connecting public screens wait (queueapp/live/precedence.py).
# Off only to measure what it gives (bench/restart.py --variants off,on).
LIVE_STAFF_FIRST = env_bool("LIVE_STAFF_FIRST", True)
# Connections daphne takes from the listen queue per turn of its event loop
# (queueapp/live/server_tuning.py); 0: Twisted's own rule, without a bound.
# With the listen queue of 1,024 that `make run`, the Dockerfile and
# docker-compose give daphne, 20 a turn connected 5,000 cold screens at
# 1,042-1,092/s against 458-710/s unbounded with Twisted's 50, and brought them
# back 4.5 s after a SIGKILL against 13.9 s (docs/benchmarks.md, official runs of
# session 6, alone). On a machine whose CPU is taken by other work it did worse
# in development runs (likely, not shown: a deep queue serves phones that already
# gave up): 0 and the default backlog are the fallback.
LIVE_ACCEPTS_PER_TURN = env_number("LIVE_ACCEPTS_PER_TURN", 20, kind=int)
# Under daphne, live screens' frames are written straight to their sockets
# (queueapp/live/wire.py) instead of through Channels', daphne's and autobahn's
# send path and Twisted's write-later. Off only to measure what it gives
# (bench/live_fanout.py --variant stock:LIVE_DIRECT_SEND=0 --variant direct:LIVE_DIRECT_SEND=1).
LIVE_DIRECT_SEND = env_bool("LIVE_DIRECT_SEND", True)
# Under daphne, an open screen's connection keeps only what it needs once open
# (queueapp/live/server_tuning.py: lean_websocket_connections; the consumer's
# receive loop, queueapp/live/consumers.py). Off only to measure what it gives
# (bench/live_memory.py --variant stock:LIVE_LEAN_CONNECTIONS=0 --variant lean:LIVE_LEAN_CONNECTIONS=1).
LIVE_LEAN_CONNECTIONS = env_bool("LIVE_LEAN_CONNECTIONS", True)
# Under daphne, the hub freezes what survived each maintenance tick (gc.freeze) and makes
# the collector's full pass itself when no fan-out or request runs (queueapp/live/collector.py).
# Off only to measure what it gives
# (bench/live_fanout.py --stalls --variant stock:LIVE_GC_FREEZE=0 --variant freeze:LIVE_GC_FREEZE=1).
LIVE_GC_FREEZE = env_bool("LIVE_GC_FREEZE", True)
# The server process's young-generation garbage collection threshold (Python's
# 2,000; 0 leaves it): a burst of connects allocates more short-lived objects
# than that per loop turn (queueapp/live/server_tuning.py: young_collection_threshold;
# bench/cold_connect.py --variants "daphne/1024+20:GC_YOUNG_THRESHOLD=0,daphne/1024+20").
GC_YOUNG_THRESHOLD = env_number("GC_YOUNG_THRESHOLD", 50_000, kind=int)
# Before the server listens, import the request code and compile the URL patterns and
# templates (config/warm.py). Off only to measure what it gives (bench/first_request.py).
WARM_START = env_bool("WARM_START", True)

# --- Auth, i18n, static -----------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "console-home"
LOGOUT_REDIRECT_URL = "login"

# Languages (issue 15): the ones we ship complete translations for. A location
# offers a subset (`Location.languages`), a ticket remembers its holder's
# (`Ticket.language`), staff pick theirs (`StaffPreference`); queueapp/languages.py
# decides which one a request speaks. README "Languages" says how to add one.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("es", "Español"), ("ar", "العربية")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
HTTP_ADMISSION_EXEMPT = ("/" + STATIC_URL, "/healthz")  # no thread, no database: never turned away
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG and env_bool("STATIC_MANIFEST", True)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Security (production values pass `check --deploy`) --------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG and SECURE_SSL_REDIRECT)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_number("SECURE_HSTS_SECONDS", 0, kind=int)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
)
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- Cache and rate limits (pages engineer) --------------------------------
# The cache holds the per-client ticket counters (queueapp.ratelimit). With
# Redis it is shared by every web process; otherwise each process counts alone.
# One pool of at most REDIS_CACHE_CONNECTIONS connections per process, shared
# by its threads (config/redis_cache.py says why); a thread finding them all
# busy waits up to 5 s for one.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "config.redis_cache.SharedPoolRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": REDIS_PREFIX,
            "OPTIONS": {"max_connections": env_number("REDIS_CACHE_CONNECTIONS", 16, kind=int, minimum=1),
                        "timeout": 5},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def _rate(name: str, default: str) -> tuple[int, int]:
    value = os.environ.get(name, default)
    try:
        count, seconds = (int(part) for part in value.split("/"))
    except ValueError:
        raise ImproperlyConfigured(f"{name} must look like 5/600 (count/seconds), not {value!r}") from None
    return count, seconds


# Tickets one client may create: online joins are personal (a few per 10 min
# per browser), with a far higher cap per address (a waiting room shares one
# Wi-Fi address); a kiosk is one device issuing for everyone in the lobby.
TICKET_RATE_LIMITS = {
    "join": _rate("JOIN_RATE_LIMIT", "5/600"),
    "join_address": _rate("JOIN_ADDRESS_RATE_LIMIT", "200/600"),
    "kiosk": _rate("KIOSK_RATE_LIMIT", "60/60"),
    # New places in a waiting room per address (a browser keeps its place by
    # cookie; this stops a script from taking many; an office NAT stays under it).
    "wait": _rate("WAIT_RATE_LIMIT", "120/60"),
}
# How long a process keeps an API token it has read (queueapp/api/auth.py): a
# token revoked elsewhere than this process still works for at most so many
# seconds (in the process that revokes it, not at all); 0 reads it every time.
API_TOKEN_CACHE_SECONDS = env_number("API_TOKEN_CACHE_SECONDS", 5.0)
# A kiosk's join on PostgreSQL in the event loop, on a small async pool per
# process (queueapp/services/_join_async.py; issue 9: no request thread). Off
# until an A/B of bench/join_throughput.py shows it better (docs/benchmarks.md).
API_ASYNC_JOIN = env_bool("API_ASYNC_JOIN", False)
API_ASYNC_JOIN_CONNECTIONS = env_number("API_ASYNC_JOIN_CONNECTIONS", 4, kind=int, minimum=1)
# Where the retention purge writes the events it deletes (one CSV per purge).
RETENTION_ARCHIVE_DIR = Path(os.environ.get("RETENTION_ARCHIVE_DIR", BASE_DIR / "archive"))
# The `iss` of waiting rooms' admission tokens (queueapp.admission).
WAITING_ROOM_ISSUER = os.environ.get("WAITING_ROOM_ISSUER", "queueapp")
# Behind a reverse proxy, the header carrying the client address (e.g. HTTP_X_FORWARDED_FOR).
RATE_LIMIT_CLIENT_HEADER = os.environ.get("RATE_LIMIT_CLIENT_HEADER", "")

# --- Alerts and webhooks (queueapp.alerts; README "Alerts") -----------------
# Every sender's timeout (SMTP, HTTP to webhooks, SMS providers and push services).
ALERTS_SEND_TIMEOUT = env_number("ALERTS_SEND_TIMEOUT", 5.0, minimum=0.1)
# E-mail goes through Django's e-mail framework (its MAILERS setting): SMTP
# when EMAIL_HOST is set, the console otherwise (the embedded default).
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
MAILERS = {"default": {"BACKEND": "queueapp.alerts.mail.ConsoleEmailBackend"}}  # addresses masked
if EMAIL_HOST:
    MAILERS["default"] = {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": EMAIL_HOST,
            "port": env_number("EMAIL_PORT", 25, kind=int, minimum=1),
            "username": os.environ.get("EMAIL_HOST_USER", ""),
            "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
            "use_tls": env_bool("EMAIL_USE_TLS", False),
            "timeout": ALERTS_SEND_TIMEOUT,  # as every sender
        },
    }
del EMAIL_HOST  # deprecated as a setting since Django 6.1 (MAILERS replaces it)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "queue@localhost")
# Channels offered to ticket holders (push also needs the VAPID keys).
ALERTS_CHANNELS = [c.strip() for c in os.environ.get("ALERTS_CHANNELS", "sms,email,push").split(",")
                   if c.strip()]
# Absolute links in messages (stop links, offers): the public address of the site.
ALERTS_BASE_URL = os.environ.get("ALERTS_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
ALERTS_DEFAULT_REGION = os.environ.get("ALERTS_DEFAULT_REGION", "FR")  # phone numbers without +
ALERTS_SMS_BACKEND = os.environ.get("ALERTS_SMS_BACKEND", "queueapp.alerts.sms.ConsoleSmsBackend")
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
TWILIO_FROM = os.environ.get("TWILIO_FROM", "")  # a number, or a Messaging Service SID (MG...)
TWILIO_API_URL = os.environ.get("TWILIO_API_URL", "https://api.twilio.com")
VAPID_PRIVATE_KEY = os.environ.get("VAPID_PRIVATE_KEY", "")  # `manage.py generate_vapid_keys`
VAPID_PUBLIC_KEY = os.environ.get("VAPID_PUBLIC_KEY", "")
VAPID_SUBJECT = os.environ.get("VAPID_SUBJECT", "mailto:admin@localhost")
# Delivery: timeouts, retries with exponential back-off and jitter, dead letters.
ALERTS_RETRY_BASE_SECONDS = env_number("ALERTS_RETRY_BASE_SECONDS", 10.0, minimum=0.01)
ALERTS_RETRY_MAX_SECONDS = env_number("ALERTS_RETRY_MAX_SECONDS", 3600.0, minimum=0.01)
ALERTS_MAX_ATTEMPTS = env_number("ALERTS_MAX_ATTEMPTS", 15, kind=int, minimum=1)
ALERTS_MAX_AGE_HOURS = env_number("ALERTS_MAX_AGE_HOURS", 48.0)
ALERTS_CLAIM_SECONDS = env_number("ALERTS_CLAIM_SECONDS", 60.0, minimum=1)
ALERTS_BATCH = env_number("ALERTS_BATCH", 100, kind=int, minimum=1)
ALERTS_CONCURRENCY = env_number("ALERTS_CONCURRENCY", 16, kind=int, minimum=1)
ALERTS_IDLE_POLL_SECONDS = env_number("ALERTS_IDLE_POLL_SECONDS", 0.1, minimum=0.01)
ALERTS_OFFER_REMINDER_SECONDS = env_number("ALERTS_OFFER_REMINDER_SECONDS", 300, kind=int)
# An endpoint failing this long is switched off and its managers told.
ALERTS_ENDPOINT_DISABLE_AFTER_HOURS = env_number("ALERTS_ENDPOINT_DISABLE_AFTER_HOURS", 72.0)
# Contact addresses are blanked this long after their ticket ended; finished
# outbox rows and their attempts are deleted after ALERTS_OUTBOX_RETENTION_DAYS.
ALERTS_CONTACT_RETENTION_HOURS = env_number("ALERTS_CONTACT_RETENTION_HOURS", 24.0)
ALERTS_OUTBOX_RETENTION_DAYS = env_number("ALERTS_OUTBOX_RETENTION_DAYS", 30.0)
