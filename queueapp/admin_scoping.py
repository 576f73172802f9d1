"""The admin's location scoping, shared by every app's admin (`queueapp.admin`,
`queueapp.alerts.admin`): `LocationScoped` (lists and forms limited to the
user's locations) and `ManagedAtLocation` (managers run these rows at their
locations without model permissions). Below both admins, so neither imports
the other (the alerts admin importing `queueapp.admin` would be a cycle
through the services)."""

from __future__ import annotations

from .access import locations_for, managed_locations
from .models import Location, Queue


class LocationScoped:
    """Limit a model admin to the locations its user belongs to (superusers: all).

    `location_path` is the lookup from the model to its Location.
    """

    location_path = "location"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{f"{self.location_path}__in": locations_for(request.user)})

    # Forms offer only the user's own locations and their queues, so nobody can
    # attach a counter, queue or membership to a location they do not belong to.
    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Location and not request.user.is_superuser:
            kwargs["queryset"] = locations_for(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.related_model is Queue and not request.user.is_superuser:
            kwargs["queryset"] = Queue.objects.filter(location__in=locations_for(request.user))
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class ManagedAtLocation(LocationScoped):
    """What a location's managers run themselves: they view, add, change and
    delete these rows at the locations they manage, and only there, without
    Django model permissions. Anyone else needs the model permissions as usual
    (superusers: everything, everywhere)."""

    queue_filter: dict = {}  # narrows the queues a form offers (e.g. counter queues only)

    def _places(self, request):
        """Where this user runs these rows: the locations they manage when that
        is their access here, else every location they belong to."""
        return managed_locations(request.user) if self._by_role(request) else locations_for(request.user)

    def _by_role(self, request) -> bool:
        """This user's access here comes from managing a location, not from permissions."""
        user = request.user
        return not user.is_superuser and not user.has_perm(
            f"{self.opts.app_label}.view_{self.opts.model_name}")

    def _manages(self, request, obj=None) -> bool:
        if obj is None:
            return managed_locations(request.user).exists()
        location_id = self._location_of(obj)
        return managed_locations(request.user).filter(pk=location_id).exists()

    def _location_of(self, obj) -> int | None:
        return obj.location_id

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if self._by_role(request):
            qs = qs.filter(**{f"{self.location_path}__in": managed_locations(request.user)})
        return qs

    def has_module_permission(self, request):
        return super().has_module_permission(request) or self._manages(request)

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or self._manages(request, obj)

    def has_add_permission(self, request, *args):
        return super().has_add_permission(request, *args) or self._manages(request)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) or self._manages(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) or self._manages(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Narrowed after LocationScoped's choice (every location the user belongs
        # to), which would otherwise offer a manager the places they only work at.
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is None or request.user.is_superuser:
            return field
        if db_field.related_model is Location:
            field.queryset = field.queryset.filter(pk__in=self._places(request))
        elif db_field.related_model is Queue:
            field.queryset = field.queryset.filter(location__in=self._places(request), **self.queue_filter)
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.related_model is Queue and self._by_role(request):
            field.queryset = field.queryset.filter(location__in=managed_locations(request.user))
        return field
