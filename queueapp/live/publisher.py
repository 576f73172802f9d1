"""Hands committed events to the channel layer without making the request wait.

(The first version: send in a daemon thread. Issue 3 replaces it with the full
non-blocking publisher with retries.)
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_sink = []  # tests may attach a list-like sink


def publish(message: dict) -> None:
    for sink in _sink:
        sink.append(message)
