import pytest

from queueapp.access import access_counter, access_queue, check_manager_at, check_staff_at
from queueapp.services import NotFound, PermissionDenied

pytestmark = pytest.mark.django_db


def test_staff_may_act_at_their_location_only(staff, other_staff, location, queue):
    check_staff_at(staff, location)
    assert access_queue(staff, queue.pk) == queue
    with pytest.raises(PermissionDenied, match="not staff at this location"):
        access_queue(other_staff, queue.pk)


def test_only_managers_may_do_manager_things(staff, manager, location):
    check_manager_at(manager, location)
    with pytest.raises(PermissionDenied, match="Only a manager"):
        check_manager_at(staff, location)


def test_anonymous_is_told_to_log_in(location):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(PermissionDenied, match="Log in"):
        check_staff_at(AnonymousUser(), location)


def test_unknown_counter_is_not_found(staff):
    with pytest.raises(NotFound, match="Counter 999 does not exist"):
        access_counter(staff, 999)
