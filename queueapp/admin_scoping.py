"""The admin's location scoping, shared by every app's admin (`queueapp.admin`,
`queueapp.alerts.admin`); below both, so neither imports the other's models."""

from __future__ import annotations

from .access import locations_for
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
