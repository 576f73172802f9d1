"""How one attempt at sending went: every sender and back-end answers with this."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Outcome:
    ok: bool
    status_code: int | None = None
    error: str = ""
    retry: bool = True      # False: the receiver refused for good (dead at once)
    gone: bool = False      # the push subscription no longer exists: remove it
    duration_ms: int = 0
