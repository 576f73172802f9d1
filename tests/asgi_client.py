"""One HTTP request through an ASGI application, in process (no socket)."""

from __future__ import annotations

from asgiref.testing import ApplicationCommunicator

RESPONSE_TIMEOUT = 30  # seconds for one answer: a deadlock fails the test instead of hanging it


async def asgi_request(application, method: str, path: str, *, body: bytes = b"",
                       headers: list[tuple[bytes, bytes]] = ()) -> tuple[int, bytes]:
    """(status, body) of one request to `application`."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
        "headers": [(b"host", b"testserver"), *headers],
    }
    app = ApplicationCommunicator(application, scope)
    await app.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await app.receive_output(RESPONSE_TIMEOUT)
    chunks = []
    while True:
        message = await app.receive_output(RESPONSE_TIMEOUT)
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    await app.wait(RESPONSE_TIMEOUT)
    return start["status"], b"".join(chunks)
