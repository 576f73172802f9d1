"""Fixtures the page tests share (imported by those modules)."""

import pytest


@pytest.fixture(autouse=True)
def generous_rate_limits(settings):
    # Every test posts from 127.0.0.1 into a cache that may outlive it (Redis);
    # only the rate-limit tests set tight limits, with their own client address.
    settings.TICKET_RATE_LIMITS = {"join": (10_000, 60), "join_address": (10_000, 60), "kiosk": (10_000, 60)}
