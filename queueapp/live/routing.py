"""WebSocket URLs (joined in config/asgi.py behind the origin check).

Only the staff screens (console, waitlist board) need to know who is connecting, so only they go through
Channels' `SessionMiddlewareStack` (the session cookie, no query); their
consumer looks the user up itself once the socket is accepted
(`LiveConsumer.logged_in_user`), so a database that does not answer closes
it with a retryable code instead of failing the handshake, as Channels'
`AuthMiddlewareStack` would (it looks the user up before the application
runs). The public screens (a patient's phone, the lobby display) skip both:
a reconnect storm of thousands of phones would otherwise cost a session
query each, for nothing.
Any other path, including a malformed token or id (the page URLs'
converters, `queueapp/converters.py`), is refused at the handshake (HTTP 403),
not answered with 500.
"""

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.sessions import SessionMiddlewareStack
from django.urls import path, re_path

from . import consumers


class UnknownPath(AsyncWebsocketConsumer):
    """A handshake to a path we do not serve: refused (daphne answers 403)."""

    async def connect(self) -> None:
        await self.close()


websocket_urlpatterns = [
    path("ws/ticket/<token:token>/", consumers.TicketConsumer.as_asgi()),
    path("ws/display/<slug:location_slug>/", consumers.DisplayConsumer.as_asgi()),
    path("ws/console/<id:counter_id>/", SessionMiddlewareStack(consumers.ConsoleConsumer.as_asgi())),
    path("ws/waitlist/<id:queue_id>/", SessionMiddlewareStack(consumers.WaitlistBoardConsumer.as_asgi())),
    re_path(r"", UnknownPath.as_asgi()),
]
