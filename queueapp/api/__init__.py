"""The JSON API (django-ninja), mounted at /api/; docs at /api/docs.

Routers live one per area (`tickets`, `queues`, `counters`, `waitlists`); each endpoint
checks access and calls one service function. Every endpoint needs a login
(session with CSRF, or `Authorization: Bearer <key>`) unless it says `auth=None`.
"""

from ninja import NinjaAPI

from . import bookings, counters, locations, queues, rooms, tickets, waitlist
from .auth import BearerTokenAuth, SessionAuth
from .errors import install_error_handlers

api = NinjaAPI(
    title="Queue API",
    version="1",
    description=(
        "Join queues, follow a ticket by its token, and act at a counter. Staff log in "
        "(session, with the X-CSRFToken header on writes) or send `Authorization: Bearer <key>` "
        "(`manage.py create_api_token`). Errors answer `{detail, code, field}`."
    ),
    docs_url="/docs",
    urls_namespace="api",
    auth=[BearerTokenAuth(), SessionAuth()],
)
install_error_handlers(api)
api.add_router("/", locations.router)
api.add_router("/tickets", tickets.router)
api.add_router("/queues", queues.router)
api.add_router("/counters", counters.router)
api.add_router("/waitlists", waitlist.router)
api.add_router("/rooms", rooms.router)
api.add_router("/", bookings.router)
