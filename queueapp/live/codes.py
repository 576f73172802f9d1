"""WebSocket close codes of the live screens (the table is in docs/architecture.md)."""

# Close codes. daphne refuses to send anything but 1000 and 3000-4999 from an
# application (the close raises and the socket stays open), so each is 4000 +
# the RFC 6455 code it stands for, or 4000 + the HTTP status of a refusal.
CLOSE_UNSUPPORTED = 4003  # a binary frame (1003 unsupported data)
CLOSE_POLICY = 4008  # too many messages (1008 policy violation)
CLOSE_TOO_BIG = 4009  # a message over MAX_TEXT (1009 message too big)
CLOSE_INTERNAL = 4011  # the screen failed to start (1011 internal error)
CLOSE_RESTART = 4012  # the server is shutting down: reconnect (1012 service restart)
CLOSE_RETRY = 4013  # the database did not answer: reconnect (1013 try again later)
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_REASONS = {
    CLOSE_UNSUPPORTED: "binary frame", CLOSE_POLICY: "too many messages",
    CLOSE_TOO_BIG: "message too big", CLOSE_INTERNAL: "could not start",
    CLOSE_RESTART: "server restarting", CLOSE_RETRY: "database unavailable, try again",
    CLOSE_UNAUTHENTICATED: "not logged in", CLOSE_FORBIDDEN: "forbidden", CLOSE_NOT_FOUND: "not found",
}
