"""Admin: managers edit their queues' alert rules and webhook endpoints, and see
the outbox (filters by state; actions retry now and reset a dead message).

Run by a location's managers like its queues (`ManagedAtLocation`): a manager sees only the
locations they belong to. Contact addresses are never listed here.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from ..admin_scoping import ManagedAtLocation
from .delivery import do_reset_dead
from .models import AlertRule, DeliveryAttempt, OutboxMessage, OutboxState, WebhookEndpoint, say_reason


@admin.register(AlertRule)
class AlertRuleAdmin(ManagedAtLocation, admin.ModelAdmin):
    location_path = "queue__location"
    list_display = ["queue", "kind", "enabled", "threshold", "template"]
    list_filter = ["kind", "enabled"]
    list_editable = ["enabled", "threshold"]
    list_select_related = ["queue__location"]

    def _location_of(self, obj) -> int | None:
        return obj.queue.location_id


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ManagedAtLocation, admin.ModelAdmin):
    list_display = ["url", "location", "is_active", "event_types", "failing_since", "disabled_reason_shown"]
    list_filter = ["is_active"]
    list_select_related = ["location"]
    readonly_fields = ["created_at", "failing_since", "disabled_at", "disabled_reason_shown"]
    fields = ["location", "url", "event_types", "is_active", *readonly_fields]

    @admin.display(description=_("disabled reason"))
    def disabled_reason_shown(self, obj) -> str:
        return obj.disabled_reason_text  # stored as a code: said in the reader's language

    def save_model(self, request, obj, form, change):
        if change and "is_active" in form.changed_data and obj.is_active:
            obj.failing_since = obj.disabled_at = None
            obj.disabled_reason = ""
        super().save_model(request, obj, form, change)
        if not change:
            # The secret is shown this once; it is never displayed again.
            messages.warning(request, gettext("Signing secret of %(url)s (copy it now, it is not shown again): "
                                              "%(secret)s") % {"url": obj.url, "secret": obj.secret})


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = readonly_fields = ["at", "ok", "status_code", "error", "duration_ms", "note_shown"]

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("note"))
    def note_shown(self, obj) -> str:
        return say_reason(obj.note)  # stored as a code: said in the reader's language


class DueFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return OutboxState.choices

    def queryset(self, request, queryset):
        return queryset.filter(state=self.value()) if self.value() else queryset


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ManagedAtLocation, admin.ModelAdmin):
    list_display = ["message_id", "channel", "kind", "state", "attempts", "next_attempt_at", "created_at",
                    "last_error", "drop_reason_shown"]
    list_filter = [DueFilter, "channel", "kind"]
    list_select_related = ["queue__location"]
    search_fields = ["message_id"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name if f.name != "drop_reason" else "drop_reason_shown" for f in OutboxMessage._meta.fields]
    exclude = ["contact"]
    inlines = [AttemptInline]
    actions = ["retry_now", "reset_dead"]

    @admin.display(description=_("drop reason"))
    def drop_reason_shown(self, obj) -> str:
        return obj.drop_reason_text  # stored as a code: said in the reader's language

    def _location_of(self, obj) -> int | None:
        return obj.queue.location_id if obj.queue_id else obj.endpoint.location_id if obj.endpoint_id else None

    def get_queryset(self, request):
        # Its messages: of its queues, or of its endpoints (a row may have either).
        qs = admin.ModelAdmin.get_queryset(self, request)
        if request.user.is_superuser:
            return qs
        where = self._places(request)
        return qs.filter(Q(queue__location__in=where) | Q(endpoint__location__in=where))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # The list and its actions only; rows change through delivery.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Retry now (due or retrying messages)"))
    def retry_now(self, request, queryset):
        n = queryset.filter(state__in=[OutboxState.PENDING, OutboxState.RETRYING]).update(
            next_attempt_at=timezone.now())
        messages.success(request, ngettext("%(count)s message due now.", "%(count)s messages due now.", n) % {"count": n})

    @admin.action(description=_("Reset dead messages (try them again, attempts from zero; history kept)"))
    def reset_dead(self, request, queryset):
        n = do_reset_dead(queryset.values_list("pk", flat=True), acting_user=request.user)
        messages.success(request, ngettext("%(count)s dead message will be tried again.",
                                          "%(count)s dead messages will be tried again.", n) % {"count": n})
