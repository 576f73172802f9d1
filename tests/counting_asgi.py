"""The project's ASGI application, counting every SQL statement the server runs.

For tests that bound what a burst of WebSocket connects costs the database
over a real daphne socket (`tests/test_live_connect_cost.py`): daphne serves
this module instead of `config.asgi`, and `GET /__test__/queries` answers the
number of statements run so far by any thread of the server process. Never
served outside the tests.
"""

import threading

from django.db.backends import utils

from config.asgi import application as real_application

_lock = threading.Lock()
_count = [0]
_execute, _executemany = utils.CursorWrapper._execute, utils.CursorWrapper._executemany


def _counted(method):
    def counting(self, *args, **kwargs):
        with _lock:
            _count[0] += 1
        return method(self, *args, **kwargs)

    return counting


utils.CursorWrapper._execute = _counted(_execute)
utils.CursorWrapper._executemany = _counted(_executemany)


async def application(scope, receive, send):
    if scope["type"] == "http" and scope["path"] == "/__test__/queries":
        body = str(_count[0]).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    await real_application(scope, receive, send)
