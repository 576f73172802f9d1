"""Alerts: who asked to be told, the rules per queue, webhook endpoints, the outbox.

The outbox (`OutboxMessage`) is the queue: one row per message and destination,
written in the same transaction as the event that made it due (see `decide`),
delivered by the worker (see `delivery`). Addresses live only on `Contact`, so
blanking a contact blanks it everywhere; messages carry texts with ticket
numbers, never an address or a token.
"""

from __future__ import annotations

import base64
import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, ngettext_lazy
from django.utils.translation import gettext_lazy as _

from ..models import Location, Queue, Ticket, TicketStatus, new_token, status_in_sentence


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", _("E-mail")
    PUSH = "push", _("Web push")
    WEBHOOK = "webhook", _("Webhook")


PERSON_CHANNELS = (Channel.SMS, Channel.EMAIL, Channel.PUSH)


class Contact(models.Model):
    """A ticket holder's explicit request to be told, on one channel.

    `address` is an E.164 phone number, an e-mail address or a push service
    endpoint (with its `keys`): personal data, never shown, logged or
    broadcast; blanked by the retention job once the ticket has ended.
    """

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="alert_contacts", verbose_name=_("ticket"))
    channel = models.CharField(max_length=8, choices=[(c.value, c.label) for c in PERSON_CHANNELS], verbose_name=_("channel"))
    address = models.CharField(max_length=1000, blank=True, verbose_name=_("address"))
    keys = models.JSONField(default=dict, blank=True, help_text=_("Web push: p256dh and auth."), verbose_name=_("keys"))
    consent_at = models.DateTimeField(default=timezone.now, verbose_name=_("consent at"))
    stop_token = models.CharField(max_length=32, unique=True, default=new_token, editable=False, verbose_name=_("stop token"))
    stopped_at = models.DateTimeField(null=True, blank=True, verbose_name=_("stopped at"))
    blanked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("blanked at"))

    class Meta:
        verbose_name = _("alert contact")
        verbose_name_plural = _("alert contacts")
        constraints = [
            models.UniqueConstraint(fields=["ticket", "channel"], name="contact_one_per_ticket_channel"),
        ]
        indexes = [
            models.Index(fields=["ticket"], condition=Q(stopped_at__isnull=True, blanked_at__isnull=True),
                         name="contact_active_by_ticket_idx"),
        ]

    def __str__(self) -> str:
        return gettext("%(channel)s for ticket %(ticket)s") % {"channel": self.get_channel_display(),
                                                               "ticket": self.ticket_id}

    @property
    def active(self) -> bool:
        return self.stopped_at is None and self.blanked_at is None and bool(self.address)


class StaffPushSubscription(models.Model):
    """A manager's browser that asked for staff alerts by web push (the console's
    "Notify me in this browser"). Staff alerts go to each of them as well as by
    e-mail; a push service answering 404/410 removes it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="alert_push_subscriptions", verbose_name=_("user"))
    address = models.CharField(max_length=1000, help_text=_("The push service endpoint."), verbose_name=_("address"))
    keys = models.JSONField(default=dict, help_text=_("p256dh and auth."), verbose_name=_("keys"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    stop_token = models.CharField(max_length=32, unique=True, default=new_token, editable=False, verbose_name=_("stop token"))

    class Meta:
        verbose_name = _("staff push subscription")
        verbose_name_plural = _("staff push subscriptions")
        constraints = [
            models.UniqueConstraint(fields=["user", "address"], name="staffpush_one_per_user_endpoint"),
        ]

    def __str__(self) -> str:
        return gettext("Web push for %(user)s (%(address)s)") % {"user": self.user, "address": masked(self.address)}


def masked(address: str) -> str:
    """What staff and logs may see of an address: enough to tell two apart."""
    if not address:
        return "(blank)"
    if "@" in address:
        name, _, domain = address.partition("@")
        return f"{name[:1]}…@{domain}"
    if address.startswith("http"):
        return address.split("/")[2] + "/…"
    return f"…{address[-3:]}"


class MessageKind(models.TextChoices):
    AHEAD = "ahead", _("N ahead of you")
    CALLED = "called", _("It's your turn (and again on recall)")
    MISSED = "missed", _("Missed call: back in line")
    CLOSED = "closed", _("Ticket closed after a no-show")
    TRANSFERRED = "transferred", _("Transferred to another queue")
    OFFERED = "offered", _("Seats offered")
    OFFER_REMINDER = "offer_reminder", _("Reminder before an offer lapses")
    CONFIRMED = "confirmed", _("Confirmed")
    EXPIRED = "expired", _("Offer expired")
    STAFF_WAIT = "staff_wait", _("Staff: longest wait over the queue's target")
    ENDPOINT_OFF = "endpoint_off", _("Staff: a webhook endpoint was switched off")
    EVENT = "event", _("Webhook: a queue event")


PATIENT_KINDS = (
    MessageKind.AHEAD, MessageKind.CALLED, MessageKind.MISSED, MessageKind.CLOSED,
    MessageKind.TRANSFERRED, MessageKind.OFFERED, MessageKind.OFFER_REMINDER,
    MessageKind.CONFIRMED, MessageKind.EXPIRED,
)


def validate_template(value: str) -> None:
    from .texts import FIELDS, check_template

    problem = check_template(value)
    if problem:
        raise ValidationError(_("%(problem)s Fields you may use: %(fields)s.") % {
            "problem": problem, "fields": ", ".join("{" + f + "}" for f in FIELDS)})


class AlertRule(models.Model):
    """One message of one queue: on or off, its threshold, its own text.

    A queue without a rule for a patient message sends it with the default text
    (on by default); "N ahead" defaults to 3. Several AHEAD rules give several
    thresholds. STAFF_WAIT has no threshold of its own: it fires when the
    longest wait passes the queue's service target (`Queue.target_wait_minutes`,
    the one fact; `queueapp.targets`); every queue with a target has the alert
    on unless its rule is switched off (the worker makes the rule when it first
    needs it), and `raised` remembers a crossing so managers hear of it once
    until the wait drops below the target again.
    """

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="alert_rules", verbose_name=_("queue"))
    kind = models.CharField(max_length=16, choices=[
        c for c in MessageKind.choices if c[0] not in ("event", "endpoint_off")], verbose_name=_("kind"))
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    threshold = models.PositiveIntegerField(
        null=True, blank=True,
        help_text=_("N ahead: how many ahead (default 3). Staff wait: leave empty; it is the queue's "
                  "service target."), verbose_name=_("threshold"))
    template = models.CharField(max_length=400, blank=True, validators=[validate_template],
                                help_text=_("Empty: the default text, in each ticket's language. A text written "
                                            "here is sent as written, whatever the ticket's language. Fields: "
                                            "{number}, {queue}, {counter}, {ahead}, {time}, {new_number}, "
                                            "{location}."), verbose_name=_("template"))
    raised = models.BooleanField(default=False, editable=False, verbose_name=_("raised"))

    class Meta:
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")
        ordering = ["queue", "kind", "threshold"]
        constraints = [
            models.UniqueConstraint(fields=["queue", "kind"], condition=Q(threshold__isnull=True),
                                    name="alertrule_unique_per_queue"),
            models.UniqueConstraint(fields=["queue", "kind", "threshold"], condition=Q(threshold__isnull=False),
                                    name="alertrule_unique_threshold_per_queue"),
            models.CheckConstraint(condition=~Q(kind="ahead") | Q(threshold__gte=1),
                                   name="alertrule_threshold_needed"),
            models.CheckConstraint(condition=~Q(kind="staff_wait") | Q(threshold__isnull=True),
                                   name="alertrule_staff_wait_uses_queue_target"),
        ]

    def __str__(self) -> str:
        suffix = f" ({self.threshold})" if self.threshold else ""
        return f"{self.queue}: {self.get_kind_display()}{suffix}"

    def clean(self):
        if self.kind == MessageKind.AHEAD and not self.threshold:
            raise ValidationError({"threshold": _("This rule needs a threshold of at least 1.")})
        if self.kind == MessageKind.STAFF_WAIT and self.threshold is not None:
            raise ValidationError({"threshold": _("Leave this empty: the staff wait alert fires at the queue's "
                                                  "service target (set it on the queue).")})


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


# Why an endpoint was switched off, why a message was dropped, what a manager
# did to a message (a note in its attempt log): stored as a code and its
# parameters, ":"-separated ("ticket_status:called", "reset_error:3:bob:HTTP 500"),
# and said in the reader's language when shown (the admin). Each code names its
# parameters; only the last may contain ":" (a timestamp, an error text). A text
# from before the codes (an English sentence) shows as stored.
REASONS = {
    "failing_since": (_("Failing since %(param)s."), ("param",)),
    "subscription_removed": (_("The recipient's subscription was removed."), ()),
    "alerts_stopped": (_("The recipient stopped alerts."), ()),
    "address_erased": (_("The address was erased."), ()),
    "endpoint_off": (_("The webhook endpoint is switched off."), ()),
    "no_email": (_("The staff member has no e-mail address."), ()),
    "ticket_gone": (_("The ticket no longer exists."), ()),
    "ticket_status": (_("The ticket is %(status)s now."), ("status",)),
    "push_gone": (_("The push subscription is gone."), ()),
    "reset": (ngettext_lazy("Reset by %(who)s after %(count)s attempt", "Reset by %(who)s after %(count)s attempts",
                            "count"), ("count", "who")),
    "reset_error": (ngettext_lazy("Reset by %(who)s after %(count)s attempt (last error: %(error)s)",
                                  "Reset by %(who)s after %(count)s attempts (last error: %(error)s)", "count"),
                    ("count", "who", "error")),
}
# How a stored parameter reads in a sentence, by its name.
DRESS = {
    "status": lambda value: status_in_sentence(value) if value in TicketStatus.values else value,
    "who": lambda value: value or gettext("a command"),  # empty: a management command did it
    "count": int,  # picks the plural form
}


def reason_code(code: str, *params: object) -> str:
    """What to store: `code`, then its parameters, ":"-separated (at most 200
    characters, the fields' length: a long last parameter is cut)."""
    names = REASONS[code][1]
    assert len(params) == len(names), (code, params)
    values = [str(p) for p in params]
    # A ":" inside a parameter other than the last would shift the ones after it.
    values[:-1] = [v.replace(":", " ") for v in values[:-1]]
    return ":".join((code, *values))[:200]


def say_reason(stored: str) -> str:
    """A stored reason or note as a sentence in the active language."""
    code, _sep, rest = (stored or "").partition(":")
    if code not in REASONS:
        return stored or ""
    sentence, names = REASONS[code]
    values = rest.split(":", len(names) - 1) if names else []
    if len(values) != len(names) or (not names and rest):
        return stored
    try:
        dressed = {name: DRESS.get(name, str)(value) for name, value in zip(names, values)}
    except ValueError:  # not a count: shown as stored rather than guessed at
        return stored
    # `%` on the lazy message (not on its str()): a plural one picks its form by the count.
    return str(sentence % dressed)


def reset_note(who: str, attempts: int, last_error: str) -> str:
    """A manager's reset of a dead message (`who` empty: a command), a note in
    its attempt log."""
    if last_error:
        return reason_code("reset_error", attempts, who, last_error)
    return reason_code("reset", attempts, who)


class WebhookEndpoint(models.Model):
    """A receiver of a location's events, signed to the Standard Webhooks spec."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="webhook_endpoints", verbose_name=_("location"))
    url = models.URLField(max_length=500, verbose_name=_("url"))
    event_types = models.JSONField(default=list, blank=True,
                                   help_text=_("Event kinds to send (e.g. [\"called\", \"completed\"]); "
                                             "empty: all."), verbose_name=_("event types"))
    secret = models.CharField(max_length=80, default=new_webhook_secret, editable=False, verbose_name=_("secret"))
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    failing_since = models.DateTimeField(null=True, blank=True, editable=False,
                                         help_text=_("First failure since the last success."), verbose_name=_("failing since"))
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False, verbose_name=_("disabled at"))
    disabled_reason = models.CharField(max_length=200, blank=True, editable=False, verbose_name=_("disabled reason"))

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["location", "url"]

    def __str__(self) -> str:
        return self.url

    @property
    def disabled_reason_text(self) -> str:
        return say_reason(self.disabled_reason)

    def wants(self, kind: str) -> bool:
        return not self.event_types or kind in self.event_types


class OutboxState(models.TextChoices):
    PENDING = "pending", _("Due")
    RETRYING = "retrying", _("Retrying")
    DELIVERED = "delivered", _("Delivered")
    DEAD = "dead", _("Dead (gave up)")
    DROPPED = "dropped", _("Dropped (no longer true)")


DUE_STATES = (OutboxState.PENDING, OutboxState.RETRYING)


def new_message_id() -> str:
    return "msg_" + uuid.uuid4().hex


class OutboxMessage(models.Model):
    """One message to one destination. Its `message_id` is the same on every
    attempt (the `webhook-id`, the e-mail's Message-ID), so a receiver can drop
    the duplicate an at-least-once delivery may cause."""

    message_id = models.CharField(max_length=40, unique=True, default=new_message_id, editable=False, verbose_name=_("message id"))
    channel = models.CharField(max_length=8, choices=Channel.choices, verbose_name=_("channel"))
    kind = models.CharField(max_length=16, choices=MessageKind.choices, verbose_name=_("kind"))
    reason = models.CharField(max_length=60, blank=True,
                              help_text=_("Why it was due (e.g. ahead:3, called:2): one message per reason."), verbose_name=_("reason"))
    queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("queue"))
    ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("ticket"))
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="messages", verbose_name=_("contact"))
    endpoint = models.ForeignKey(WebhookEndpoint, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="messages", verbose_name=_("endpoint"))
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+", help_text=_("Staff recipient (by e-mail, or web push below)."), verbose_name=_("user"))
    staff_push = models.ForeignKey(StaffPushSubscription, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="messages", help_text=_("Staff recipient's browser (web push)."), verbose_name=_("staff push"))
    subject = models.CharField(max_length=200, blank=True, verbose_name=_("subject"))
    body = models.TextField(blank=True, help_text=_("The text, or the webhook's JSON body."), verbose_name=_("body"))
    requires_status = models.CharField(
        max_length=100, blank=True,
        help_text=_("Comma-separated ticket statuses under which the message is still true."), verbose_name=_("requires status"))

    state = models.CharField(max_length=10, choices=OutboxState.choices, default=OutboxState.PENDING, verbose_name=_("state"))
    created_at = models.DateTimeField(default=timezone.now, help_text=_("When it became due: never changed."), verbose_name=_("created at"))
    reset_at = models.DateTimeField(
        null=True, blank=True, editable=False,
        help_text=_("When a manager last reset it from dead: its age limit counts from here."), verbose_name=_("reset at"))
    next_attempt_at = models.DateTimeField(default=timezone.now, verbose_name=_("next attempt at"))
    lease = models.CharField(max_length=32, blank=True, editable=False,
                             help_text=_("The claim of the worker sending it now."), verbose_name=_("lease"))
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))
    last_error = models.CharField(max_length=300, blank=True, verbose_name=_("last error"))
    drop_reason = models.CharField(max_length=200, blank=True, verbose_name=_("drop reason"))

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        ordering = ["-created_at"]
        constraints = [
            # "None sent twice for the same reason": one row per contact and reason.
            models.UniqueConstraint(fields=["contact", "reason"], condition=~Q(reason=""),
                                    name="outbox_one_per_contact_reason"),
            models.UniqueConstraint(fields=["user", "reason"], condition=~Q(reason="") & Q(channel="email"),
                                    name="outbox_one_email_per_user_reason"),
            models.UniqueConstraint(fields=["staff_push", "reason"], condition=~Q(reason=""),
                                    name="outbox_one_per_staff_push_reason"),
            models.CheckConstraint(
                condition=Q(channel="webhook", endpoint__isnull=False) | ~Q(channel="webhook"),
                name="outbox_webhook_has_endpoint"),
        ]
        indexes = [
            # The worker's claim: due rows in due order; partial, so it stays small.
            models.Index(fields=["next_attempt_at"], condition=Q(state__in=["pending", "retrying"]),
                         name="outbox_due_idx"),
            models.Index(fields=["state", "finished_at"], name="outbox_state_finished_idx"),
        ]

    def __str__(self) -> str:
        return gettext("%(id)s (%(channel)s, %(kind)s, %(state)s)") % {
            "id": self.message_id, "channel": self.get_channel_display(), "kind": self.get_kind_display(),
            "state": self.get_state_display()}

    @property
    def drop_reason_text(self) -> str:
        return say_reason(self.drop_reason)


class DeliveryAttempt(models.Model):
    """One try at sending a message: when, how it went. A row with `ok` None and
    a `note` is not a send but a manager's action in the message's history
    (a reset from dead)."""

    message = models.ForeignKey(OutboxMessage, on_delete=models.CASCADE, related_name="attempt_log", verbose_name=_("message"))
    at = models.DateTimeField(default=timezone.now, verbose_name=_("at"))
    ok = models.BooleanField(null=True, verbose_name=_("ok"))
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, verbose_name=_("status code"))
    error = models.CharField(max_length=300, blank=True, verbose_name=_("error"))
    duration_ms = models.PositiveIntegerField(default=0, verbose_name=_("duration ms"))
    note = models.CharField(max_length=200, blank=True, verbose_name=_("note"))

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["message", "at", "pk"]

    def __str__(self) -> str:
        if self.ok is None:
            return gettext("%(note)s at %(time)s") % {"note": say_reason(self.note), "time": f"{self.at:%H:%M:%S}"}
        values = {"status": self.status_code or "", "time": f"{self.at:%H:%M:%S}"}
        return (gettext("OK %(status)s at %(time)s") if self.ok else gettext("Failed %(status)s at %(time)s")) % values
