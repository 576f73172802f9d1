"""The project's ASGI application whose first catch-up reads fail, for
tests/test_live_catch_up_retry.py (daphne serves this module instead of
config.asgi; never served outside the tests): the first
`FAILING_CATCH_UPS` (environment, default 2) reads of missed events
(`queueapp.live.reads.event_messages`, what every screen's catch-up reads)
raise `OperationalError`, as when the database drops a connection under load."""

import os

from django.db import OperationalError

from config.asgi import application  # noqa: F401  (sets Django up)
from queueapp.live import reads

_failures = int(os.environ.get("FAILING_CATCH_UPS", "2"))
_real_event_messages = reads.event_messages


def _failing_event_messages(*args, **kwargs):
    global _failures
    if _failures > 0:
        _failures -= 1
        raise OperationalError("failing-catch-up test: the read of missed events failed")
    return _real_event_messages(*args, **kwargs)


reads.event_messages = _failing_event_messages
