"""Moved to `queueapp.errors` (below services and the live package, so both may
raise and catch them without importing each other); re-exported for callers."""

from ..errors import *  # noqa: F401,F403
from ..errors import __all__  # noqa: F401
