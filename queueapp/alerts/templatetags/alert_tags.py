"""The opt-in pieces the ticket, kiosk and join pages include."""

from django import template
from django.conf import settings

from ...access import managed_locations
from .. import push
from ..contacts import offered_channels
from ..models import Contact, StaffPushSubscription, masked

register = template.Library()


@register.inclusion_tag("alerts/optin.html", takes_context=True)
def alert_optin(context, ticket):
    """The ticket page's "tell me" box: which channels are on, a form, a push button."""
    on = [(c.channel, masked(c.address), c.stop_token) for c in
          Contact.objects.filter(ticket=ticket, stopped_at__isnull=True, blanked_at__isnull=True)
          .order_by("channel")]
    channels = offered_channels()
    return {"ticket": ticket, "on": on, "channels": channels, "csrf_token": context.get("csrf_token"),
            "form_channels": [c for c in channels if c in ("sms", "email")],
            "push": "push" in channels, "vapid_public_key": settings.VAPID_PUBLIC_KEY,
            "error": context.get("alert_error"), "field": context.get("alert_field"),
            "chosen": context.get("alert_channel") or "sms", "address": context.get("alert_address", ""),
            "final": ticket.is_final}


@register.inclusion_tag("alerts/staff_push.html", takes_context=True)
def staff_push_optin(context):
    """Console home: a manager's "Notify me in this browser" for staff alerts, and a
    stop button per browser already subscribed. Nothing for staff who manage nothing."""
    user = context["request"].user
    if not (push.enabled() and managed_locations(user).exists()):
        return {"show": False}
    return {"show": True, "csrf_token": context.get("csrf_token"), "vapid_public_key": settings.VAPID_PUBLIC_KEY,
            "subscriptions": [(masked(s.address), s.stop_token)
                              for s in StaffPushSubscription.objects.filter(user=user).order_by("created_at")]}


@register.inclusion_tag("alerts/join_fields.html", takes_context=True)
def alert_join_fields(context):
    """Kiosk and online join: an optional phone or e-mail field with its consent box."""
    channels = [c for c in offered_channels() if c in ("sms", "email")]
    return {"channels": channels, "field": context.get("alert_field"),
            "value": context.get("alert_value", "")}


@register.inclusion_tag("alerts/stats_counts.html")
def alert_counts(location):
    """The statistics page's outbox counts for one location."""
    from ..models import OutboxState
    from ..selectors import totals_by_state

    totals = totals_by_state(location.pk)
    return {"rows": [(label, totals[value]) for value, label in OutboxState.choices]}
