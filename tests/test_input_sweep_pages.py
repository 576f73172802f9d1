"""The hostile-input sweep (tests/input_sweep.py) over the pages (every route but the
API's and the admin's): each route and field with NUL bytes, Unicode digits, overlong
values, broken UTF-8 and the like, anonymously and as a superuser; never a 5xx, never
a partial write."""

import pytest

from tests.input_sweep import sweep, world  # noqa: F401  (the fixture)
from tests.pages_helpers import generous_rate_limits  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.mark.timeout(600)  # thousands of requests: past the suite's 300 s on a loaded machine
def test_every_page_route_and_field_survives_hostile_values(world, capsys):
    assert sweep(world, capsys, "pages") > 3500
