"""WebSocket URLs (joined in config/asgi.py behind the origin check and auth)."""

from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/ticket/<str:token>/", consumers.TicketConsumer.as_asgi()),
    path("ws/display/<slug:location_slug>/", consumers.DisplayConsumer.as_asgi()),
    path("ws/console/<int:counter_id>/", consumers.ConsoleConsumer.as_asgi()),
]
