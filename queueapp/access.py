"""Who may do what, where. Views and API endpoints call these before a service.

Services themselves trust their caller (commands and the worker act as the
system), so every entry point for people goes through one of these checks.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from .models import ApiToken, Counter, Location, Queue, StaffMembership, Ticket
from .errors import NotFound, PermissionDenied


def _role(user, location_id: int) -> str | None:
    if not getattr(user, "is_authenticated", False):
        return None
    if user.is_superuser:
        return StaffMembership.Role.MANAGER
    return (StaffMembership.objects.filter(user=user, location_id=location_id)
            .values_list("role", flat=True).first())


def is_staff_at(user, location: Location | int) -> bool:
    return _role(user, location if isinstance(location, int) else location.pk) is not None


def is_manager_at(user, location: Location | int) -> bool:
    role = _role(user, location if isinstance(location, int) else location.pk)
    return role == StaffMembership.Role.MANAGER


def check_staff_at(user, location: Location | int) -> None:
    if not getattr(user, "is_authenticated", False):
        raise PermissionDenied(_("Log in as staff to do this."))
    if not is_staff_at(user, location):
        raise PermissionDenied(_("You are not staff at this location."))


def check_manager_at(user, location: Location | int) -> None:
    check_staff_at(user, location)
    if not is_manager_at(user, location):
        raise PermissionDenied(_("Only a manager at this location may do this."))


def locations_for(user) -> QuerySet[Location]:
    if not getattr(user, "is_authenticated", False):
        return Location.objects.none()
    if user.is_superuser:
        return Location.objects.all()
    return Location.objects.filter(memberships__user=user)


def managed_locations(user) -> QuerySet[Location]:
    """Where `user` is a manager (superusers: everywhere), by name: statistics,
    capacity, the admin, and whether the Statistics link is shown."""
    if not getattr(user, "is_authenticated", False):
        return Location.objects.none()
    if user.is_superuser:
        return Location.objects.order_by("name")
    return Location.objects.filter(memberships__user=user,
                                   memberships__role=StaffMembership.Role.MANAGER).order_by("name")


def check_token_location(token: ApiToken, location_id: int) -> None:
    """An API token acts only at the location it was issued for, whatever its user may do."""
    if token.location_id != location_id:
        raise PermissionDenied(_("This API token is for %(location)s; it cannot act at another location.") % {
            "location": token.location.name})


def find_queue(queue_id: int) -> Queue:
    queue = Queue.objects.select_related("location").filter(pk=queue_id).first()
    if queue is None:
        raise NotFound(_("Queue %(id)s does not exist.") % {"id": queue_id})
    return queue


def access_queue(user, queue_id: int, *, manager: bool = False) -> Queue:
    """The queue, if `user` may act on it; otherwise NotFound/PermissionDenied."""
    queue = find_queue(queue_id)
    (check_manager_at if manager else check_staff_at)(user, queue.location_id)
    return queue


def access_counter(user, counter_id: int) -> Counter:
    counter = Counter.objects.select_related("location").filter(pk=counter_id).first()
    if counter is None:
        raise NotFound(_("Counter %(id)s does not exist.") % {"id": counter_id})
    check_staff_at(user, counter.location_id)
    return counter


def access_ticket(user, ticket_id: int) -> Ticket:
    ticket = Ticket.objects.select_related("queue__location", "counter").filter(pk=ticket_id).first()
    if ticket is None:
        raise NotFound(_("Ticket %(id)s does not exist.") % {"id": ticket_id})
    check_staff_at(user, ticket.queue.location_id)
    return ticket
