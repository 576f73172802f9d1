"""The Django admin for managers and auditors.

- Every list page selects its related rows up front (`list_select_related`), so it
  makes the same number of queries for 10 rows or 100 (pinned in tests).
- Nothing here writes a ticket or a queue's service-owned fields directly: those
  fields are read-only, and the actions call the same `do_*` services as the
  console, with the same permission checks (`queueapp.access`).
- `QueueEvent` is read-only for everyone (the database refuses UPDATE/DELETE too:
  migration 0003).
- Non-superusers see only the locations they belong to.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .access import check_manager_at, check_staff_at, locations_for
from .admin_scoping import LocationScoped, ManagedAtLocation
from .estimates import shown_minutes
from .forms import WholeNumberField
from .integrity import validate_queue_integrity
from .models import (
    ApiToken,
    Feedback,
    Booking,
    BookingSchedule,
    ClosedDay,
    Counter,
    CounterState,
    CounterStateChange,
    Location,
    OpeningHours,
    Purge,
    Queue,
    QueueEvent,
    SigningKey,
    StaffMembership,
    Ticket,
    TicketStatus,
    WaitingRoom,
    format_display_number,
)
from .reports import DateRangeForm, day_after, stream_queryset_csv
from .selectors import estimate_wait_range, position_of, transferred_from
from .services import (
    QueueActionError,
    do_cancel,
    do_cancel_booking,
    do_check_in,
    do_complete,
    do_confirm_waitlist,
    do_no_show,
    do_pause,
    do_recall,
    do_resume,
    do_set_counter_state,
    do_start_serving,
)
from .services.rooms import do_issue_room_key


class ScopedQueueFilter(admin.RelatedFieldListFilter):
    """Queues of the user's locations, with their location in one query (its name shows)."""

    def field_choices(self, field, request, model_admin):
        queues = Queue.objects.select_related("location").order_by("location__name", "name")
        if not request.user.is_superuser:
            queues = queues.filter(location__in=locations_for(request.user))
        return [(q.pk, str(q)) for q in queues]


class ScopedLocationFilter(admin.RelatedFieldListFilter):
    def field_choices(self, field, request, model_admin):
        return [(loc.pk, str(loc)) for loc in locations_for(request.user).order_by("name")]


def _run_each(request: HttpRequest, objects, act: Callable, label: Callable, check: Callable) -> None:
    """Call one service per selected object; report what worked and each refusal."""
    done, refused = 0, []
    for obj in objects:
        try:
            check(obj)
            act(obj)
            done += 1
        except QueueActionError as error:
            refused.append(f"{label(obj)}: {error.message}")
    if done:
        messages.success(request, ngettext("Done for %(count)s.", "Done for %(count)s.", done) % {"count": done})
    for text in refused:
        messages.error(request, text)


# --- Locations, staff, counters ----------------------------------------------

class MembershipInline(admin.TabularInline):
    model = StaffMembership
    extra = 0
    autocomplete_fields = ["user"]


class LocationForm(forms.ModelForm):
    """The offered languages as checkboxes (the model stores a list of codes)."""

    languages = forms.MultipleChoiceField(
        choices=settings.LANGUAGES, required=False, widget=forms.CheckboxSelectMultiple,
        label=_("Languages offered"), help_text=Location._meta.get_field("languages").help_text)

    class Meta:
        model = Location
        fields = "__all__"

    def clean_languages(self):
        return list(self.cleaned_data["languages"])


@admin.register(Location)
class LocationAdmin(LocationScoped, admin.ModelAdmin):
    form = LocationForm
    location_path = "pk"
    list_display = ["name", "slug", "timezone", "default_language", "queue_count", "counter_count"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_queues=Count("queues", distinct=True), n_counters=Count("counters", distinct=True))

    @admin.display(description=_("queues"), ordering="n_queues")
    def queue_count(self, obj):
        return obj.n_queues

    @admin.display(description=_("counters"), ordering="n_counters")
    def counter_count(self, obj):
        return obj.n_counters


@admin.register(StaffMembership)
class StaffMembershipAdmin(ManagedAtLocation, admin.ModelAdmin):
    list_display = ["user", "location", "role"]
    list_filter = [("location", ScopedLocationFilter), "role"]
    list_select_related = ["user", "location"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "location__name"]
    autocomplete_fields = ["user"]

    def get_autocomplete_fields(self, request):
        # The user search answers only to those who may view users; a manager
        # picks from the list of active users instead.
        return self.autocomplete_fields if request.user.has_perm("auth.view_user") else []

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not request.user.has_perm("auth.view_user"):
            kwargs["queryset"] = get_user_model().objects.filter(is_active=True).order_by("username")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Counter)
class CounterAdmin(ManagedAtLocation, admin.ModelAdmin):
    list_display = ["name", "location", "state", "break_reason", "serves"]
    list_filter = [("location", ScopedLocationFilter), "state"]
    list_select_related = ["location"]
    search_fields = ["name", "location__name"]
    filter_horizontal = ["queues"]
    # The state changes only through `do_set_counter_state` (history row, events):
    # the actions below, the console and the API.
    readonly_fields = ["state", "break_reason"]
    actions = ["open_counters", "close_counters"]

    def _set(self, request, queryset, state):
        _run_each(request, queryset, lambda c: do_set_counter_state(c.pk, state=state, acting_user=request.user),
                  str, lambda c: check_staff_at(request.user, c.location_id))

    @admin.action(description=_("Open the selected counters"))
    def open_counters(self, request, queryset):
        self._set(request, queryset, CounterState.OPEN)

    @admin.action(description=_("Close the selected counters (refused for one holding a ticket: use the console)"))
    def close_counters(self, request, queryset):
        self._set(request, queryset, CounterState.CLOSED)

    def get_queryset(self, request):
        # One extra query for all rows' queues, whatever the page size.
        return super().get_queryset(request).prefetch_related("queues")

    @admin.display(description=_("serves"))
    def serves(self, obj):
        return ", ".join(q.name for q in obj.queues.all())


# --- Queues and the integrity page -------------------------------------------

@admin.register(Queue)
class QueueAdmin(ManagedAtLocation, admin.ModelAdmin):
    list_display = ["name", "location", "prefix", "kind", "is_paused", "waiting", "capacity",
                    "seats_taken", "version"]
    list_filter = [("location", ScopedLocationFilter), "kind", "is_paused"]
    list_select_related = ["location"]
    search_fields = ["name", "slug", "prefix", "location__name"]
    prepopulated_fields = {"slug": ["name"]}
    actions = ["pause", "resume", "confirm_waitlist", "check_integrity"]
    change_list_template = "admin/queueapp/queue/change_list.html"

    def get_readonly_fields(self, request, obj=None):
        # Service-owned counters change only with their event, under the row lock.
        # A new capacity queue needs its capacity; afterwards it is service-owned too.
        owned = set(Queue.SERVICE_OWNED)
        if obj is None:
            owned -= {"capacity"}
        return sorted(owned)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_waiting=Count("tickets", filter=Q(tickets__status=TicketStatus.WAITING)))

    @admin.display(description=_("waiting"), ordering="n_waiting")
    def waiting(self, obj):
        return obj.n_waiting

    def _act(self, request, queryset, service):
        _run_each(request, queryset, lambda q: service(q.pk, acting_user=request.user), str,
                  lambda q: check_manager_at(request.user, q.location_id))

    @admin.action(description=_("Pause the selected queues"))
    def pause(self, request, queryset):
        self._act(request, queryset, do_pause)

    @admin.action(description=_("Resume the selected queues"))
    def resume(self, request, queryset):
        self._act(request, queryset, do_resume)

    @admin.action(description=_("Confirm the waitlist of the selected capacity queues"))
    def confirm_waitlist(self, request, queryset):
        self._act(request, queryset.filter(kind=Queue.Kind.CAPACITY), do_confirm_waitlist)

    @admin.action(description=_("Check the integrity of the selected queues"))
    def check_integrity(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        return TemplateResponse(request, "admin/queueapp/integrity.html",
                                self._integrity_context(request, ids))

    def get_urls(self):
        view = self.admin_site.admin_view(self.integrity_view)
        return [path("integrity/", view, name="queueapp_integrity"), *super().get_urls()]

    def integrity_view(self, request):
        """Run `validate_queue_integrity` on the queues this user may see and show it."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return TemplateResponse(request, "admin/queueapp/integrity.html",
                                self._integrity_context(request, None))

    def _integrity_context(self, request, queue_ids: list[int] | None) -> dict:
        queues = self.get_queryset(request).order_by("location__name", "name")
        if queue_ids is not None:
            queues = queues.filter(pk__in=queue_ids)
        if request.user.is_superuser and queue_ids is None:
            problems = validate_queue_integrity()
        else:
            problems = [p for q in queues for p in validate_queue_integrity(q)]
        names = {q.pk: str(q) for q in queues}
        return {
            **self.admin_site.each_context(request),
            "title": gettext("Integrity report"),
            "opts": self.model._meta,
            "checked": list(names.values()),
            "problems": [{"where": names.get(p.queue_id, gettext("counter %(id)s") % {"id": p.counter_id}), "problem": p}
                         for p in problems],
        }


# --- Tickets -------------------------------------------------------------------

DISPLAY_NUMBER = re.compile(r"^(?:(?P<prefix>[A-Za-z0-9]{1,4})-)?0*(?P<number>\d{1,9})$")


def search_tickets(queryset: QuerySet, term: str, prefix: str = "") -> QuerySet:
    """'A-017', '17' or a full token; `prefix` is the lookup path to the Ticket."""
    term = term.strip()
    match = DISPLAY_NUMBER.match(term)
    if match:
        q = Q(**{f"{prefix}number": int(match["number"])})
        if match["prefix"]:
            q &= Q(**{f"{prefix}queue__prefix": match["prefix"].upper()})
        return queryset.filter(q)
    return queryset.filter(**{f"{prefix}token": term})


class ReadOnly:
    """No add, edit or delete here, for anyone."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyRecords(ReadOnly, LocationScoped):
    """Records written only by the services, seen at the user's locations."""


class ReadOnlyTicketRecords(ReadOnlyRecords):
    """Tickets and events. Search takes a display number ('A-017', '17') or a token."""

    location_path = "queue__location"
    ticket_path = ""
    search_help_text = "A ticket number (A-017 or 17) or a patient's token."

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return search_tickets(queryset, search_term, prefix=self.ticket_path), False


def _export_form(request, admin_self, title: str):
    if not admin_self.has_view_permission(request):
        raise PermissionDenied
    # An empty range is the business day of the user's (first) location.
    form = DateRangeForm(request.GET or None, locations=locations_for(request.user))
    if request.GET and form.is_valid():
        return form, None
    context = {**admin_self.admin_site.each_context(request), "title": title, "form": form,
               "opts": admin_self.model._meta}
    status = 400 if request.GET else 200
    return form, render(request, "admin/queueapp/export.html", context, status=status)


@admin.register(Ticket)
class TicketAdmin(ReadOnlyTicketRecords, admin.ModelAdmin):
    list_display = ["display", "queue", "location", "status", "priority", "counter", "created_at",
                    "called_at", "finished_at", "call_count"]
    list_filter = [("queue__location", ScopedLocationFilter), ("queue", ScopedQueueFilter), "status",
                   "priority", "business_day", "created_at"]
    list_select_related = ["queue__location", "counter"]
    search_fields = ["number", "token"]  # handled by get_search_results
    date_hierarchy = "business_day"
    actions = ["recall", "start_serving", "complete", "no_show", "cancel"]
    fieldsets = [
        (None, {"fields": ["display", "queue", "status", "waiting_now", "priority", "party_size", "counter",
                           "note"]}),
        (_("Times"), {"fields": ["business_day", "created_at", "queued_at", "called_at", "serving_at",
                              "finished_at", "offer_expires_at", "confirmed_at"]}),
        (_("Counts and links"), {"fields": ["call_count", "no_show_count", "seq", "transferred_to",
                                          "came_from", "token"]}),
        (_("History"), {"fields": ["history"]}),
    ]
    change_list_template = "admin/queueapp/export_link_change_list.html"

    def get_readonly_fields(self, request, obj=None):
        return [f for fs in self.fieldsets for f in fs[1]["fields"]]


    @admin.display(description=_("number"), ordering="number")
    def display(self, obj):
        return obj.display_number

    @admin.display(description=_("location"), ordering="queue__location__name")
    def location(self, obj):
        return obj.queue.location

    @admin.display(description=_("position and estimated wait"))
    def waiting_now(self, obj):
        position = position_of(obj)
        if position is None:
            return "—"
        estimate = estimate_wait_range(obj.queue, position)
        low, high = (shown_minutes(t) for t in (estimate.low, estimate.high))
        rough = " (little recent history: a rough guide)" if estimate.thin else ""
        return f"#{position} in line; called in about {low}–{high} min{rough}"

    @admin.display(description=_("came from (transfer)"))
    def came_from(self, obj):
        previous = transferred_from(obj)[:1]
        return previous[0].display_number if previous else "—"

    @admin.display(description=_("what happened, in order"))
    def history(self, obj):
        """Every event of this ticket and of the tickets it was transferred from."""
        chain = [obj.pk, *(t.pk for t in transferred_from(obj, related=()))]
        events = (QueueEvent.objects.filter(ticket_id__in=chain)
                  .select_related("queue", "counter", "actor", "ticket__queue")
                  .order_by("created_at", "pk"))
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((e.created_at.strftime("%Y-%m-%d %H:%M:%S"), e.ticket.display_number, e.get_kind_display(),
              e.get_status_after_display() or "—", e.counter or "—", _who(e), _details(e.data))
             for e in events),
        )
        return format_html(
            "<table><thead><tr><th>when</th><th>ticket</th><th>what</th><th>status after</th>"
            "<th>counter</th><th>who</th><th>details</th></tr></thead><tbody>{}</tbody></table>", rows)

    def _act(self, request, queryset, service, **kwargs):
        _run_each(request, queryset.select_related("queue"),
                  lambda t: service(t.pk, acting_user=request.user, **kwargs),
                  lambda t: t.display_number,
                  lambda t: check_staff_at(request.user, t.queue.location_id))

    @admin.action(description=_("Recall (announce again)"))
    def recall(self, request, queryset):
        self._act(request, queryset, do_recall)

    @admin.action(description=_("Start serving"))
    def start_serving(self, request, queryset):
        self._act(request, queryset, do_start_serving)

    @admin.action(description=_("Complete"))
    def complete(self, request, queryset):
        self._act(request, queryset, do_complete)

    @admin.action(description=_("Mark as no-show"))
    def no_show(self, request, queryset):
        self._act(request, queryset, do_no_show)

    @admin.action(description=_("Cancel"))
    def cancel(self, request, queryset):
        self._act(request, queryset, do_cancel)

    def get_urls(self):
        view = self.admin_site.admin_view(self.export_view)
        return [path("export/", view, name="queueapp_ticket_export"), *super().get_urls()]

    def export_view(self, request):
        """Tickets of the chosen business days as CSV, streamed."""
        form, page = _export_form(request, self, gettext("Export tickets as CSV"))
        if page is not None:
            return page
        start, end = form.days
        queryset = self.get_queryset(request).filter(business_day__range=(start, end))
        fields = ["queue__location__slug", "queue__slug", "queue__prefix", "number", "business_day",
                  "status", "priority", "party_size", "counter__name", "call_count", "no_show_count",
                  "created_at", "queued_at", "called_at", "serving_at", "finished_at",
                  "confirmed_at", "offer_expires_at"]
        header = ["location", "queue", "number", *fields[4:]]
        return stream_queryset_csv(
            f"tickets-{start}-{end}.csv", header, queryset, fields,
            row=lambda v: [v[0], v[1], format_display_number(v[2], v[3]), *(_cell(x) for x in v[4:])])


def _who(event: QueueEvent) -> str:
    if event.actor_id:
        return event.actor.get_username()
    by = (event.data or {}).get("by")
    return "patient" if by == "patient" else "system / kiosk"


def _details(data: dict) -> str:
    shown = {k: v for k, v in (data or {}).items() if k not in {"ticket", "left", "entered"}}
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items()))


def _cell(value) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


# --- Events: read-only for everyone -------------------------------------------

@admin.register(CounterStateChange)
class CounterStateChangeAdmin(ReadOnlyRecords, admin.ModelAdmin):
    """A counter's history: opened, on a break (why), closed, by whom, and what
    happened to the ticket it held."""

    location_path = "counter__location"
    list_display = ["at", "counter", "previous_state", "state", "reason", "staff", "held_ticket",
                    "held_action"]
    list_filter = [("counter__location", ScopedLocationFilter), "state", "reason", "at"]
    list_select_related = ["counter", "staff", "held_ticket__queue"]
    date_hierarchy = "at"


@admin.register(QueueEvent)
class QueueEventAdmin(ReadOnlyTicketRecords, admin.ModelAdmin):
    ticket_path = "ticket__"
    list_display = ["created_at", "queue", "version", "kind", "ticket_number", "status_after",
                    "counter", "actor"]
    list_filter = [("queue__location", ScopedLocationFilter), ("queue", ScopedQueueFilter), "kind",
                   "created_at"]
    list_select_related = ["queue__location", "ticket__queue", "counter", "actor"]
    search_fields = ["ticket__number", "ticket__token"]  # handled by get_search_results
    date_hierarchy = "created_at"
    change_list_template = "admin/queueapp/export_link_change_list.html"


    @admin.display(description=_("ticket"), ordering="ticket__number")
    def ticket_number(self, obj):
        if obj.ticket_id is None:
            return "—"
        url = reverse("admin:queueapp_ticket_change", args=[obj.ticket_id])
        return format_html('<a href="{}">{}</a>', url, obj.ticket.display_number)

    def get_urls(self):
        view = self.admin_site.admin_view(self.export_view)
        return [path("export/", view, name="queueapp_queueevent_export"), *super().get_urls()]

    def export_view(self, request):
        """Events of the chosen days (server time zone) as CSV, streamed."""
        form, page = _export_form(request, self, gettext("Export events as CSV"))
        if page is not None:
            return page
        start, end = form.days
        queryset = self.get_queryset(request).filter(created_at__date__gte=start,
                                                     created_at__date__lt=day_after(end))
        fields = ["created_at", "queue__location__slug", "queue__slug", "version", "kind",
                  "ticket__queue__prefix", "ticket__number", "status_after", "counter__name",
                  "actor__username", "data"]
        header = ["created_at", "location", "queue", "version", "kind", "ticket", "status_after",
                  "counter", "actor", "data"]

        def row(v):
            ticket = format_display_number(v[5], v[6]) if v[6] is not None else ""
            return [_cell(v[0]), v[1], v[2], v[3], v[4], ticket, v[7], v[8] or "", v[9] or "",
                    _details(v[10])]

        return stream_queryset_csv(f"events-{start}-{end}.csv", header, queryset, fields, row=row)


@admin.register(ApiToken)
class ApiTokenAdmin(LocationScoped, admin.ModelAdmin):
    list_display = ["name", "kind", "location", "user", "created_at", "last_used_at"]
    list_filter = [("location", ScopedLocationFilter), "kind"]
    list_select_related = ["location", "user"]
    search_fields = ["name", "user__username"]
    readonly_fields = ["digest", "created_at", "last_used_at"]

    # A token's secret is shown once when it is made; that is the API's job
    # (its command/page), not a form that would store an empty digest.
    def has_add_permission(self, request):
        return False


# --- Retention purges: read-only records (append-only in the database too) ---

@admin.register(Purge)
class PurgeAdmin(ReadOnlyRecords, admin.ModelAdmin):
    list_display = ["created_at", "location", "cutoff", "tickets_deleted", "events_deleted", "by", "archive"]
    list_filter = [("location", ScopedLocationFilter)]
    list_select_related = ["location"]
    readonly_fields = ["location", "created_at", "cutoff", "retention_days", "by", "tickets_deleted",
                       "events_deleted", "numbers", "archive", "archive_sha256"]



# --- Waiting rooms and their signing keys ---------------------------------------

@admin.register(WaitingRoom)
class WaitingRoomAdmin(ManagedAtLocation, admin.ModelAdmin):
    """Rooms in front of other sites. A room and its queue are made together by
    `manage.py create_waiting_room` (the service checks every setting and
    prints the site's API key once); here managers change the target, the
    rate and the admission lifetime, issue a new key, and check integrity.
    The most inside is the room queue's capacity: shown here, not edited
    (the service owns it, under the queue's row lock)."""

    location_path = "queue__location"
    list_display = ["slug", "name", "location", "target_url", "admit_per_minute", "inside", "max_inside",
                    "waiting", "admission_seconds"]
    list_filter = [("queue__location", ScopedLocationFilter)]
    list_select_related = ["queue__location"]
    search_fields = ["slug", "queue__name", "target_url"]
    fields = ["slug", "queue", "target_url", "admit_per_minute", "admission_seconds", "inside", "max_inside",
              "next_admission_at", "has_key"]
    readonly_fields = ["slug", "queue", "inside", "max_inside", "next_admission_at", "has_key"]
    actions = ["issue_key", "check_integrity"]
    # The rate and the lifetime in digits 0-9 only, as every number a page takes.
    formfield_overrides = {models.PositiveIntegerField: {"form_class": WholeNumberField}}

    def _location_of(self, obj) -> int | None:
        return obj.queue.location_id

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_waiting=Count("queue__tickets", filter=Q(queue__tickets__status=TicketStatus.WAITING)))

    # Made with its queue by the service (manage.py create_waiting_room); its
    # tickets and events keep it: never deleted here.
    def has_add_permission(self, request, *args):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("name"), ordering="queue__name")
    def name(self, obj):
        return obj.queue.name

    @admin.display(description=_("location"), ordering="queue__location__name")
    def location(self, obj):
        return obj.queue.location

    @admin.display(description=_("inside now"))
    def inside(self, obj):
        return obj.queue.seats_taken

    @admin.display(description=_("most inside"))
    def max_inside(self, obj):
        return obj.max_inside

    @admin.display(description=_("waiting"), ordering="n_waiting")
    def waiting(self, obj):
        return getattr(obj, "n_waiting", None)

    @admin.display(description=_("API key issued"), boolean=True)
    def has_key(self, obj):
        return bool(obj.token_digest)

    @admin.action(description=_("Issue a new API key (the old one stops working)"))
    def issue_key(self, request, queryset):
        for room in queryset.select_related("queue"):
            try:
                check_manager_at(request.user, room.queue.location_id)
            except QueueActionError as error:
                messages.error(request, f"{room.slug}: {error.message}")
                continue
            key = do_issue_room_key(room)
            messages.warning(request, gettext("%(room)s: new API key %(key)s (shown once; give it to the protected site).")
                             % {"room": room.slug, "key": key})

    @admin.action(description=_("Check the integrity of the selected rooms"))
    def check_integrity(self, request, queryset):
        problems = [(room.slug, p) for room in queryset for p in validate_queue_integrity(room.queue_id)]
        if not problems:
            messages.success(request, ngettext("No problem found in %(count)s room.", "No problem found in %(count)s rooms.",
                                              queryset.count()) % {"count": queryset.count()})
        for slug, problem in problems:
            messages.error(request, f"{slug}: {problem}")


@admin.register(SigningKey)
class SigningKeyAdmin(ReadOnly, admin.ModelAdmin):
    """The keys that sign admission tokens: read-only, for everyone. Rotate with
    `manage.py rotate_signing_key` (docs/waiting-room.md): the new key signs
    from then on, the old one stays published in /.well-known/jwks.json until
    the tokens it signed have expired. The private half is never shown."""

    list_display = ["kid", "state", "created_at", "retire_after"]
    fields = ["kid", "state", "created_at", "retire_after"]
    readonly_fields = fields

    @admin.display(description=_("state"))
    def state(self, obj):
        from django.utils import timezone

        if obj.retire_after is None:
            return "signing now"
        return "published until it retires" if obj.retire_after > timezone.now() else "retired"


# --- Appointments -------------------------------------------------------------

class AsTheSchedule:
    """A schedule's inline rows: whoever may edit the schedule (a manager at its
    location, by role) may edit them, without model permissions of their own."""

    def _schedule_admin(self):
        return self.admin_site._registry[BookingSchedule]

    def _may_edit(self, request, obj) -> bool:
        parent = self._schedule_admin()
        return parent.has_change_permission(request, obj) if obj is not None else parent.has_add_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._schedule_admin().has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return self._may_edit(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._may_edit(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._may_edit(request, obj)


class OpeningHoursInline(AsTheSchedule, admin.TabularInline):
    model = OpeningHours
    extra = 1


class ClosedDayInline(AsTheSchedule, admin.TabularInline):
    model = ClosedDay
    extra = 0


@admin.register(BookingSchedule)
class BookingScheduleAdmin(ManagedAtLocation, admin.ModelAdmin):
    """Where a location's managers publish a queue's bookable slots: hours per
    weekday, slot length, people per slot, closed days, and the check-in window."""

    location_path = "queue__location"
    list_display = ["queue", "is_open", "slot_minutes", "per_slot", "days_ahead", "early_minutes",
                    "late_minutes", "grace_minutes"]
    list_select_related = ["queue__location"]
    inlines = [OpeningHoursInline, ClosedDayInline]
    fieldsets = [
        (None, {"fields": ["queue", "is_open", "slot_minutes", "per_slot", "days_ahead"]}),
        (_("Arrival"), {"fields": ["early_minutes", "late_minutes", "grace_minutes", "self_check_in"],
                     "description": _("Checked in from <i>early</i> minutes before the booked time to <i>late</i> "
                                      "minutes after it, a booking stands before the walk-ins of its priority who "
                                      "joined after the booked time minus <i>grace</i>; later it joins as a "
                                      "walk-in; never checked in by then, it is a no-show.")}),
    ]

    queue_filter = {"kind": Queue.Kind.COUNTER}  # the queue a schedule is for: a counter queue

    def _location_of(self, obj) -> int | None:
        return obj.queue.location_id


@admin.register(Booking)
class BookingAdmin(ReadOnlyRecords, admin.ModelAdmin):
    """Bookings are written by the services only; their contact is never shown."""

    location_path = "slot__queue__location"
    list_display = ["slot_time", "queue", "status", "priority", "arrived_late", "checked_in_by", "ticket"]
    list_filter = [("slot__queue", ScopedQueueFilter), "status", "arrived_late"]
    list_select_related = ["slot__queue__location", "ticket__queue"]
    search_fields = ["code"]
    date_hierarchy = "slot__starts_at"
    fields = ["slot_time", "queue", "status", "priority", "code", "ticket", "arrived_late", "checked_in_by",
              "checked_in_at", "created_at", "ended_at", "note"]
    readonly_fields = fields
    actions = ["check_in", "cancel"]

    @admin.display(description=_("slot"), ordering="slot__starts_at")
    def slot_time(self, obj):
        return obj.slot.starts_at

    @admin.display(description=_("queue"))
    def queue(self, obj):
        return obj.slot.queue

    def _act(self, request, queryset, act):
        _run_each(request, queryset.select_related("slot__queue"), act, label=lambda b: f"booking {b.code}",
                  check=lambda b: check_staff_at(request.user, b.slot.queue.location_id))

    @admin.action(description=_("Check in (the person is here)"))
    def check_in(self, request, queryset):
        self._act(request, queryset, lambda b: do_check_in(b.pk, via="staff", acting_user=request.user))

    @admin.action(description=_("Cancel the booking"))
    def cancel(self, request, queryset):
        self._act(request, queryset, lambda b: do_cancel_booking(b.pk, acting_user=request.user))


@admin.register(Feedback)
class FeedbackAdmin(ReadOnly, ManagedAtLocation, admin.ModelAdmin):
    """Ratings and comments after visits, read by the managers of the location
    (comments are personal data: here only, never on screens, events or logs)."""

    location_path = "ticket__queue__location"
    list_display = ["created_at", "rating", "comment", "ticket_number", "queue", "counter"]
    list_filter = [("ticket__queue__location", ScopedLocationFilter), ("ticket__queue", ScopedQueueFilter),
                   "rating", "created_at"]
    list_select_related = ["ticket__queue__location", "ticket__counter"]
    fields = ["created_at", "rating", "comment", "ticket_number", "queue", "counter"]
    readonly_fields = fields
    date_hierarchy = "created_at"

    def _location_of(self, obj) -> int | None:
        return obj.ticket.queue.location_id

    @admin.display(description=_("ticket"), ordering="ticket__number")
    def ticket_number(self, obj):
        return obj.ticket.display_number

    @admin.display(description=_("queue"), ordering="ticket__queue__name")
    def queue(self, obj):
        return obj.ticket.queue

    @admin.display(description=_("counter"), ordering="ticket__counter__name")
    def counter(self, obj):
        return obj.ticket.counter
