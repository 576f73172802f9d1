"""Helpers for the WebSocket tests: connect to the real ASGI app, read frames."""

from __future__ import annotations

import asyncio
import re
from contextlib import asynccontextmanager

from channels.testing import WebsocketCommunicator

ORIGIN = (b"origin", b"http://testserver")


def ticket_state(frame: str) -> dict:
    """What a patient sees in a `#ticket-status` frame."""
    status = re.search(r'data-status="(\w+)"', frame)
    counter = re.search(r'data-counter="([^"]*)"', frame)
    position = re.search(r'class="position-number">(\d+)<', frame)
    number = re.search(r'class="ticket-number">([^<]+)<', frame)
    if "You are <strong>next</strong>" in frame:
        pos = 1
    else:
        pos = int(position.group(1)) if position else None
    return {"status": status and status.group(1), "position": pos,
            "counter": counter and counter.group(1), "number": number and number.group(1).strip()}


async def next_frame(comm: WebsocketCommunicator, *, contains: str = "", timeout: float = 5.0) -> str:
    """The next frame containing `contains` (others are skipped), within `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        left = deadline - loop.time()
        if left <= 0:
            raise AssertionError(f"no frame containing {contains!r} within {timeout} s")
        frame = await comm.receive_from(timeout=left)
        if contains in frame:
            return frame


async def wait_for_ticket(comm, predicate, *, timeout: float = 8.0) -> dict:
    """Read ticket frames until `predicate(state)` holds; return that state."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen = []
    while True:
        left = deadline - loop.time()
        if left <= 0:
            raise AssertionError(f"ticket screen never matched; saw {seen}")
        try:
            frame = await comm.receive_from(timeout=left)
        except asyncio.TimeoutError:
            raise AssertionError(f"ticket screen never matched; saw {seen}") from None
        state = ticket_state(frame)
        seen.append(state)
        if predicate(state):
            return state


@asynccontextmanager
async def screen(path: str, *, headers=None):
    """A connected WebSocket client on the real ASGI app; always disconnected."""
    from config.asgi import application

    comm = WebsocketCommunicator(application, path, headers=headers if headers is not None else [ORIGIN])
    connected, code = await comm.connect(timeout=5)
    try:
        yield comm, connected, code
    finally:
        if connected:
            await comm.disconnect()
