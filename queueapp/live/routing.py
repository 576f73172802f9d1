"""WebSocket URLs (joined in config/asgi.py behind the origin check).

Only the staff screens (console, waitlist board) need to know who is connecting, so only they go through
Channels' `AuthMiddlewareStack` (a session and a user lookup). The public
screens (a patient's phone, the lobby display) skip it: a reconnect storm of
thousands of phones would otherwise cost a session query each, for nothing.
Any other path, including a malformed token or id (the page URLs'
converters, `queueapp/converters.py`), is refused at the handshake (HTTP 403),
not answered with 500.
"""

from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path, re_path

from . import consumers


class UnknownPath(AsyncWebsocketConsumer):
    """A handshake to a path we do not serve: refused (daphne answers 403)."""

    async def connect(self) -> None:
        await self.close()


websocket_urlpatterns = [
    path("ws/ticket/<token:token>/", consumers.TicketConsumer.as_asgi()),
    path("ws/display/<slug:location_slug>/", consumers.DisplayConsumer.as_asgi()),
    path("ws/console/<id:counter_id>/", AuthMiddlewareStack(consumers.ConsoleConsumer.as_asgi())),
    path("ws/waitlist/<id:queue_id>/", AuthMiddlewareStack(consumers.WaitlistBoardConsumer.as_asgi())),
    re_path(r"", UnknownPath.as_asgi()),
]
