"""ASGI entry point: HTTP through Django, WebSockets through Channels.

WebSockets: the origin check for all; the session lookup only for the staff
console (see queueapp/live/routing.py); unknown paths refused at the handshake.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from config.asgi_handler import get_asgi_application  # noqa: E402

# Django's handler, reusing request threads instead of starting two per request
# (config/asgi_handler.py says why).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from queueapp.live.routing import websocket_urlpatterns  # noqa: E402
from django.conf import settings  # noqa: E402

from config.warm import import_request_code  # noqa: E402

from queueapp.live.server_tuning import (  # noqa: E402
    body_left_to_the_application, bounded_accepts, exit_without_finalizing, lazy_autobahn_config_log,
    lean_websocket_connections, retryable_handshake_timeout,
    stop_listening_at_shutdown, warm_before_first_connect, young_collection_threshold,
)

lazy_autobahn_config_log()
body_left_to_the_application()
bounded_accepts(settings.LIVE_ACCEPTS_PER_TURN)
stop_listening_at_shutdown()
retryable_handshake_timeout()
lean_websocket_connections(settings.LIVE_LEAN_CONNECTIONS)
exit_without_finalizing()
young_collection_threshold(settings.GC_YOUNG_THRESHOLD)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
if settings.WARM_START:
    import_request_code()  # before the server listens: no request pays for an import or a compile
warm_before_first_connect()
