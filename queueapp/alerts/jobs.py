"""The alerts' periodic jobs (registered with the worker's `@periodic`).

- `deliver_alerts`: keeps the delivery loop (`delivery.run_loop`) running in
  its own thread, so a hanging receiver never delays offer expiry or ticks;
- `staff_wait_alerts`: managers hear once per crossing of a queue's service
  target by its longest wait (by e-mail, and by web push in each browser where
  they asked for it on the console);
- `switch_off_failing_endpoints`: an endpoint failing for
  ALERTS_ENDPOINT_DISABLE_AFTER_HOURS is switched off, its managers told;
- `erase_alert_contacts`: addresses blanked after their ticket ended and the
  retention period passed; finished outbox rows deleted after theirs.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from ..languages import preferred_language
from ..models import FINAL_STATUSES, Location, Queue, StaffMembership, Ticket, TicketStatus
from ..targets import past_target
from ..worker import periodic
from . import delivery, push
from .models import (
    AlertRule,
    Channel,
    Contact,
    MessageKind,
    OutboxMessage,
    OutboxState,
    StaffPushSubscription,
    WebhookEndpoint,
    reason_code,
)

log = logging.getLogger(__name__)


@periodic(1)
def deliver_alerts() -> None:
    if delivery.ensure_loop():
        log.info("alert delivery loop started")


def managers_of(location_id: int):
    return get_user_model().objects.filter(memberships__location_id=location_id,
                                           memberships__role=StaffMembership.Role.MANAGER, is_active=True)


def _tell_managers(location_id: int, *, kind: str, reason: str, words, queue=None) -> int:
    """One message per manager's e-mail address and per browser that asked for
    web push; the (recipient, reason) constraints make a second call for the
    same reason write nothing. `words()` gives (subject, body) in the active
    language: each manager reads them in their own (their staff preference, else
    the location's default language)."""
    managers = list(managers_of(location_id).select_related("preference"))
    default = Location.objects.values_list("default_language", flat=True).get(pk=location_id)
    said = {}
    for user in managers:
        with translation.override(preferred_language(user) or default):
            said[user.pk] = words()
    rows = [OutboxMessage(channel=Channel.EMAIL, kind=kind, reason=reason, user=user, queue=queue,
                          subject=said[user.pk][0], body=said[user.pk][1]) for user in managers if user.email]
    if push.enabled():
        rows += [OutboxMessage(channel=Channel.PUSH, kind=kind, reason=reason, user_id=sub.user_id,
                               staff_push=sub, queue=queue, subject=said[sub.user_id][0], body=said[sub.user_id][1])
                 for sub in StaffPushSubscription.objects.filter(user__in=managers)]
    OutboxMessage.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


@periodic(15)
def staff_wait_alerts(now=None) -> int:
    """Raise the staff wait alert of each queue whose longest wait passed its
    service target (`targets.past_target`, the rule the console and display
    flag by), once: `raised` is claimed with a conditional update in the same
    transaction as the messages; re-armed once the wait is back under.

    Every queue with a target has the alert unless a manager switched its rule
    off; the rule row (which holds `raised`) is made the first time it is needed."""
    now = now or timezone.now()
    targeted = list(Queue.objects.filter(target_wait_minutes__isnull=False).values_list("pk", flat=True))
    if not targeted:
        return 0
    AlertRule.objects.bulk_create([AlertRule(queue_id=pk, kind=MessageKind.STAFF_WAIT) for pk in targeted],
                                  ignore_conflicts=True)  # the (queue, kind) constraint keeps existing ones
    rules = list(AlertRule.objects.filter(kind=MessageKind.STAFF_WAIT, enabled=True, queue_id__in=targeted)
                 .select_related("queue__location"))
    oldest = dict(Ticket.objects.filter(queue_id__in={r.queue_id for r in rules}, status=TicketStatus.WAITING)
                  .values("queue_id").annotate(since=Min("queued_at")).values_list("queue_id", "since"))
    raised = 0
    for rule in rules:
        queue, since = rule.queue, oldest.get(rule.queue_id)
        over = since is not None and past_target(queue, since, now)
        if over and not rule.raised:
            with transaction.atomic():
                if AlertRule.objects.filter(pk=rule.pk, raised=False).update(raised=True):
                    crossing = f"{since.timestamp():.6f}"  # one message per crossing, even with two workers
                    values = {"queue": queue.name, "target": queue.target_wait_minutes,
                              "location": queue.location.name,
                              "minutes": int((now - since).total_seconds() // 60)}
                    _tell_managers(
                        queue.location_id, kind=MessageKind.STAFF_WAIT, queue=queue,
                        reason=f"wait:{rule.pk}:{crossing}",
                        words=lambda values=values: (
                            _("%(queue)s: longest wait over %(target)s min") % values,
                            _("At %(location)s, the longest wait in %(queue)s is %(minutes)s min "
                              "(service target %(target)s min).") % values))
                    raised += 1
        elif not over and rule.raised:
            AlertRule.objects.filter(pk=rule.pk, raised=True).update(raised=False)
    return raised


@periodic(60)
def switch_off_failing_endpoints(now=None) -> int:
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.ALERTS_ENDPOINT_DISABLE_AFTER_HOURS)
    switched = 0
    for endpoint in WebhookEndpoint.objects.filter(is_active=True, failing_since__lte=cutoff):
        with transaction.atomic():
            since = f"{endpoint.failing_since:%Y-%m-%d %H:%M} UTC"
            reason = reason_code("failing_since", since)  # said in the reader's language (admin)
            if not WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
                    is_active=False, disabled_at=now, disabled_reason=reason):
                continue
            location = Location.objects.get(pk=endpoint.location_id)
            _tell_managers(
                endpoint.location_id, kind=MessageKind.ENDPOINT_OFF,
                reason=f"endpoint_off:{endpoint.pk}:{int(now.timestamp())}",
                words=lambda: (
                    _("Webhook endpoint switched off at %(location)s") % {"location": location.name},
                    _("The webhook endpoint %(url)s has been failing since %(since)s and was switched off. "
                      "Messages for it are dropped until a manager switches it on again in the admin.")
                    % {"url": endpoint.url, "since": since}))
            switched += 1
    return switched


@periodic(300)
def erase_alert_contacts(now=None) -> int:
    """Blank addresses whose ticket ended more than ALERTS_CONTACT_RETENTION_HOURS
    ago (or that are older than that and a day, for tickets left open), and
    delete finished outbox rows older than ALERTS_OUTBOX_RETENTION_DAYS."""
    now = now or timezone.now()
    retention = timedelta(hours=settings.ALERTS_CONTACT_RETENTION_HOURS)
    ended = Q(ticket__status__in=FINAL_STATUSES, ticket__finished_at__lte=now - retention)
    stale = Q(ticket__created_at__lte=now - retention - timedelta(days=1))
    blanked = (Contact.objects.filter(blanked_at__isnull=True).filter(ended | stale)
               .update(address="", keys={}, blanked_at=now))
    OutboxMessage.objects.filter(
        state__in=[OutboxState.DELIVERED, OutboxState.DEAD, OutboxState.DROPPED],
        finished_at__lte=now - timedelta(days=settings.ALERTS_OUTBOX_RETENTION_DAYS)).delete()
    return blanked
