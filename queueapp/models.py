"""The queue domain: locations, queues, counters, tickets and their events.

Every invariant a database can hold is a named constraint here; what it cannot
hold (gapless numbers and versions, statuses agreeing with events) is checked
by `queueapp.integrity.validate_queue_integrity`.

Ordering rule (one place, used everywhere): a waiting ticket's place is given
by the immutable key (priority DESC, seq ASC). `seq` is given when the ticket
enters the line (`services._line`: the instant it takes its place, on a line
clock that never goes back per queue; a booking checked in on time takes the
place of its booked time minus the queue's grace), so a position is derived by
counting the tickets ahead and nothing is ever renumbered.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


def validate_timezone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(gettext("%(value)s is not a known time zone (e.g. Europe/Paris)") % {"value": repr(value)})


def default_languages() -> list[str]:
    return ["en"]


def validate_languages(value) -> None:
    shipped = {code for code, _ in settings.LANGUAGES}
    if not isinstance(value, list) or not all(isinstance(code, str) for code in value):
        raise ValidationError(_("Give the languages as a list of codes, e.g. [\"en\", \"de\"]."))
    unknown = [code for code in value if code not in shipped]
    if unknown:
        raise ValidationError(gettext("%(code)s is not a language we ship (%(shipped)s).") % {
            "code": repr(unknown[0]), "shipped": ", ".join(sorted(shipped))})


class Location(models.Model):
    """A site or branch: a clinic, a pharmacy, an office, a station."""

    name = models.CharField(max_length=120, verbose_name=_("name"))
    slug = models.SlugField(max_length=60, unique=True, verbose_name=_("slug"))
    timezone = models.CharField(
        max_length=64, default="UTC", validators=[validate_timezone],
        help_text=_("Ticket numbers restart each business day in this time zone."), verbose_name=_("timezone")
    )
    # One fact per language: the display's speech, its page and a new ticket's
    # first guess all read `default_language`; a visitor may pick any of `languages`.
    default_language = models.CharField(
        max_length=8, choices=settings.LANGUAGES, default="en",
        help_text=_("The lobby display's language (page and announcements) and a visitor's "
                  "language when their browser asks for none the location offers."), verbose_name=_("default language")
    )
    languages = models.JSONField(
        default=default_languages, blank=True, validators=[validate_languages],
        help_text=_("The languages visitors may pick on the kiosk, the join page and their "
                  "ticket page (the default language is always offered)."), verbose_name=_("languages")
    )
    retention_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("Delete ended tickets (and what they hold about a person) this many days after "
                  "their business day; their statistics stay as daily summaries and their events "
                  "go to a CSV archive. Empty: keep everything."), verbose_name=_("retention days")
    )

    class Meta:
        verbose_name = _("location")
        verbose_name_plural = _("locations")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def offered_languages(self) -> list[str]:
        """The languages a visitor may pick here: the default first, then the
        others in the order of settings.LANGUAGES (unknown codes dropped)."""
        chosen = set(self.languages or ()) | {self.default_language}
        others = [code for code, _ in settings.LANGUAGES if code in chosen and code != self.default_language]
        return [self.default_language, *others]

    def business_day(self, now=None) -> date:
        now = now or timezone.now()
        return now.astimezone(ZoneInfo(self.timezone)).date()

    def retention_cutoff(self, now=None) -> datetime | None:
        """Tickets that ended before this instant are due for deletion: the start
        (local time) of the business day `retention_days` before today. None:
        the location keeps everything."""
        if not self.retention_days:
            return None
        day = self.business_day(now) - timedelta(days=self.retention_days)
        return datetime.combine(day, time(), ZoneInfo(self.timezone))


class StaffPreference(models.Model):
    """A staff member's own settings: the language their pages speak."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="preference", verbose_name=_("user"))
    language = models.CharField(max_length=8, choices=settings.LANGUAGES, blank=True,
                                help_text=_("Empty: follow the browser's language."), verbose_name=_("language"))

    def __str__(self) -> str:
        language = self.get_language_display() if self.language else gettext("the browser's language")
        return gettext("%(user)s: %(language)s") % {"user": self.user, "language": language}

    class Meta:
        verbose_name = _("staff preference")
        verbose_name_plural = _("staff preferences")


class StaffMembership(models.Model):
    """Who may act at a location. Managers may also pause queues and see stats."""

    class Role(models.TextChoices):
        STAFF = "staff", "Staff"
        MANAGER = "manager", "Manager"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="memberships", verbose_name=_("user"))
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("location"))
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STAFF, verbose_name=_("role"))

    class Meta:
        verbose_name = _("staff membership")
        verbose_name_plural = _("staff memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "location"], name="membership_unique_user_location"),
        ]

    def __str__(self) -> str:
        return gettext("%(user)s at %(location)s (%(role)s)") % {
            "user": self.user, "location": self.location, "role": self.get_role_display()}


class Queue(models.Model):
    """A line of tickets. Its row is the lock every action on the queue takes."""

    class Kind(models.TextChoices):
        COUNTER = "counter", "Counter queue (served one at a time)"
        CAPACITY = "capacity", "Capacity waitlist (seats confirmed in order)"

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="queues", verbose_name=_("location"))
    name = models.CharField(max_length=120, verbose_name=_("name"))
    slug = models.SlugField(max_length=60, verbose_name=_("slug"))
    prefix = models.CharField(
        max_length=4, validators=[RegexValidator(r"^[A-Z0-9]{1,4}$", "Use 1-4 capital letters or digits.")],
        help_text=_("Shown before the number: A-017."), verbose_name=_("prefix")
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.COUNTER, verbose_name=_("kind"))
    is_paused = models.BooleanField(default=False, verbose_name=_("is paused"))
    max_waiting = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Refuse joins beyond this many waiting. Empty: no limit."), verbose_name=_("max waiting")
    )
    recall_limit = models.PositiveSmallIntegerField(
        default=2, help_text=_("How many times a no-show goes back in line before it is final."), verbose_name=_("recall limit")
    )
    default_service_seconds = models.PositiveIntegerField(
        default=300, help_text=_("Used for wait estimates until there is recent history."), verbose_name=_("default service seconds")
    )
    target_wait_minutes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("Service target: the longest wait you aim for, in minutes. Tickets waiting longer are "
                  "flagged on the console and the display, the statistics show the share served within "
                  "it, and managers are alerted (if the staff wait alert is on) when the longest wait "
                  "passes it. Empty: no target."), verbose_name=_("target wait minutes")
    )

    # Capacity waitlists (one queue per resource and date).
    service_date = models.DateField(null=True, blank=True, verbose_name=_("service date"))
    capacity = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("capacity"))
    seats_taken = models.PositiveIntegerField(
        default=0, help_text=_("Seats held by confirmed requests and open offers."), verbose_name=_("seats taken")
    )
    allow_skip = models.BooleanField(
        default=False,
        help_text=_("When the head needs more seats than are free, let smaller requests behind it "
                  "through. Off: strict order, everyone waits for the head."), verbose_name=_("allow skip")
    )
    offer_seconds = models.PositiveIntegerField(
        null=True, blank=True,
        help_text=_("If set, confirmations are first offers that hold the seats this long."), verbose_name=_("offer seconds")
    )
    batch_size = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Admit at most this many per confirmation cycle."), verbose_name=_("batch size")
    )
    max_open_offers = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("At most this many offers outstanding at once."), verbose_name=_("max open offers")
    )

    # Who is called next (queueapp.calling; docs/calling-rules.md).
    class CallingRule(models.TextChoices):
        PRIORITY = "priority", _("Strict priority, then line order")
        RATIO = "ratio", _("A ratio of priority and normal tickets")

    calling_rule = models.CharField(max_length=16, choices=CallingRule.choices, default=CallingRule.PRIORITY, verbose_name=_("calling rule"))
    ratio_priority = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(1)],
        help_text=_("With the ratio rule: this many priority (high or urgent) tickets in a row ..."), verbose_name=_("ratio priority"))
    ratio_normal = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text=_("... then this many normal ones."), verbose_name=_("ratio normal"))
    max_wait_minutes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("Anyone waiting longer than this is called first, whatever their priority. Empty: no limit."), verbose_name=_("max wait minutes"))
    call_weight = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)],
        help_text=_("For counters that pick across their queues by weight: waiting time counts this many times."), verbose_name=_("call weight"))

    # Counters the queue row owns; only written under its row lock.
    version = models.BigIntegerField(default=0, help_text=_("Version of the last event."), verbose_name=_("version"))
    call_streak = models.IntegerField(
        default=0, help_text=_("The ratio rule's run: > 0 priority calls in a row, < 0 normal ones."), verbose_name=_("call streak"))
    number_day = models.DateField(null=True, blank=True, verbose_name=_("number day"))
    last_number = models.PositiveIntegerField(default=0, verbose_name=_("last number"))
    last_seq = models.BigIntegerField(default=0, verbose_name=_("last seq"))
    first_seq = models.BigIntegerField(default=0, help_text=_("Decreases when a ticket is put first."), verbose_name=_("first seq"))

    class Meta:
        verbose_name = _("queue")
        verbose_name_plural = _("queues")
        ordering = ["location", "name"]
        constraints = [
            models.UniqueConstraint(fields=["location", "slug"], name="queue_unique_slug_per_location"),
            models.CheckConstraint(
                condition=Q(capacity__isnull=True, seats_taken=0)
                | Q(capacity__isnull=False, seats_taken__lte=F("capacity")),
                name="queue_seats_within_capacity",
            ),
            models.CheckConstraint(
                condition=Q(kind="counter", capacity__isnull=True)
                | Q(kind="capacity", capacity__isnull=False),
                name="queue_capacity_iff_capacity_kind",
            ),
            models.CheckConstraint(condition=Q(version__gte=0), name="queue_version_not_negative"),
            models.CheckConstraint(condition=Q(target_wait_minutes__isnull=True) | Q(target_wait_minutes__gte=1),
                                   name="queue_target_wait_positive"),
        ]

    # Written only by service functions under the row lock, each with its event.
    # A plain save() of a (possibly stale) instance must never overwrite them.
    SERVICE_OWNED = frozenset({
        "version", "number_day", "last_number", "last_seq", "first_seq",
        "seats_taken", "is_paused", "capacity", "call_streak",
    })

    def save(self, *args, **kwargs):
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name for f in self._meta.concrete_fields
                if not f.primary_key and f.name not in self.SERVICE_OWNED
            ]
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"{self.location.name} / {self.name}" if self.location_id else self.name

    @property
    def group_name(self) -> str:
        return f"queue.{self.pk}"

    @property
    def seats_free(self) -> int:
        return (self.capacity or 0) - self.seats_taken

    @property
    def room_slug(self) -> str | None:
        """The slug of the waiting room this queue backs, if any (`WaitingRoom`)."""
        try:
            return self.waiting_room.slug
        except models.ObjectDoesNotExist:
            return None


class CounterState(models.TextChoices):
    # Contexts: "Open" the state reads "Geöffnet", "Open" the console's button "Öffnen".
    OPEN = "open", pgettext_lazy("counter state", "Open")
    BREAK = "break", pgettext_lazy("counter state", "On break")
    CLOSED = "closed", pgettext_lazy("counter state", "Closed")


class BreakReason(models.TextChoices):
    LUNCH = "lunch", pgettext_lazy("break reason", "Lunch")
    SHORT = "short", pgettext_lazy("break reason", "Short break")
    MEETING = "meeting", pgettext_lazy("break reason", "Meeting")
    OTHER = "other", pgettext_lazy("break reason", "Other")


# A counter's state in each place it is said, as whole phrases and sentences: a
# label spliced into another sentence cannot be right in every language (German
# nouns keep their capital, Arabic agrees with the subject), so each language
# writes each one. Keyed by (state, break reason); "other" reads as a plain break.
_STATE_LABELS = {
    ("open", ""): CounterState.OPEN.label,
    ("closed", ""): CounterState.CLOSED.label,
    ("break", ""): CounterState.BREAK.label,
    ("break", "lunch"): _("On a lunch break"),
    ("break", "short"): _("On a short break"),
    ("break", "meeting"): _("In a meeting"),
}
_STATE_SENTENCES = {
    "is": {
        ("open", ""): _("%(counter)s is open."),
        ("closed", ""): _("%(counter)s is closed."),
        ("break", ""): _("%(counter)s is on a break."),
        ("break", "lunch"): _("%(counter)s is on a lunch break."),
        ("break", "short"): _("%(counter)s is on a short break."),
        ("break", "meeting"): _("%(counter)s is in a meeting."),
    },
    "already": {
        ("open", ""): _("%(counter)s is already open."),
        ("closed", ""): _("%(counter)s is already closed."),
        ("break", ""): _("%(counter)s is already on a break."),
        ("break", "lunch"): _("%(counter)s is already on a lunch break."),
        ("break", "short"): _("%(counter)s is already on a short break."),
        ("break", "meeting"): _("%(counter)s is already in a meeting."),
    },
    "cannot_call": {
        ("open", ""): _("%(counter)s is open."),
        ("closed", ""): _("%(counter)s is closed; open it before calling tickets."),
        ("break", ""): _("%(counter)s is on a break; open it before calling tickets."),
        ("break", "lunch"): _("%(counter)s is on a lunch break; open it before calling tickets."),
        ("break", "short"): _("%(counter)s is on a short break; open it before calling tickets."),
        ("break", "meeting"): _("%(counter)s is in a meeting; open it before calling tickets."),
    },
}


def _state_key(state: str, reason: str) -> tuple[str, str]:
    return (state, reason if state == CounterState.BREAK and reason in ("lunch", "short", "meeting") else "")


def counter_state_words(state: str, reason: str = "") -> str:
    """'On a lunch break', 'Closed', 'Open': the one wording of a counter's state
    as a label (the display's tile, the console's badge and feed)."""
    return _counter_state_text(state, reason)


def _counter_state_words(state: str, reason: str) -> str:
    return str(_STATE_LABELS[_state_key(state, reason)])


# Lazy: the live reads run in no particular language; each screen's render picks its own.
_counter_state_text = lazy(_counter_state_words, str)


def counter_state_sentence(counter: Counter, *, said: str = "is") -> str:
    """The sentence saying a counter's state, in the active language: `said` is
    "is" (after a change: "Counter 3 is on a lunch break."), "already" (a change
    to the state it has) or "cannot_call" (a call refused while not open). The
    one place for these sentences: the counter service, call-next and the console."""
    return str(_STATE_SENTENCES[said][_state_key(counter.state, counter.break_reason)]) % {"counter": counter.name}


class Counter(models.Model):
    """A desk, window or room where staff serve tickets from some queues."""

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="counters", verbose_name=_("location"))
    name = models.CharField(max_length=60, help_text=_("As announced: 'Counter 3', 'Room 2'."), verbose_name=_("name"))
    queues = models.ManyToManyField(Queue, related_name="counters", blank=True, verbose_name=_("queues"))
    # Set only by `services.counters.do_set_counter_state`, which also writes the
    # history row (`CounterStateChange`) and the queues' events.
    state = models.CharField(max_length=8, choices=CounterState.choices, default=CounterState.OPEN,
                             help_text=_("Open counters call tickets and count in wait estimates."), verbose_name=_("state"))
    break_reason = models.CharField(max_length=16, choices=BreakReason.choices, blank=True,
                                    help_text=_("Why the counter is on a break (only while on a break)."), verbose_name=_("break reason"))

    class AcrossQueues(models.TextChoices):
        PRIORITY = "priority", _("Highest priority, then longest waiting")
        LONGEST_WAIT = "longest_wait", _("Longest waiting")
        WEIGHT = "weight", _("Waiting time times the queue's weight")

    across_queues = models.CharField(
        max_length=16, choices=AcrossQueues.choices, default=AcrossQueues.PRIORITY,
        help_text=_("How Call next chooses between the queues this counter serves (each queue first "
                  "applies its own rule)."), verbose_name=_("across queues"))

    class Meta:
        verbose_name = _("counter")
        verbose_name_plural = _("counters")
        ordering = ["location", "name"]
        constraints = [
            models.UniqueConstraint(fields=["location", "name"], name="counter_unique_name_per_location"),
            models.CheckConstraint(
                condition=(Q(state=CounterState.BREAK) & ~Q(break_reason=""))
                | (~Q(state=CounterState.BREAK) & Q(break_reason="")),
                name="counter_break_has_reason"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_open(self) -> bool:
        return self.state == CounterState.OPEN

    @property
    def state_words(self) -> str:
        """What the display's tile and the console say of a counter that is not open."""
        return counter_state_words(self.state, self.break_reason)


class CounterStateChange(models.Model):
    """Append-only history of a counter's state: one row per change, in the same
    transaction as the change. The statistics read time open, on a break and
    closed from it (each row lasts until the counter's next row)."""

    class HeldTicket(models.TextChoices):
        FINISH = "finish", _("Finish it (completed)")
        REQUEUE = "requeue", _("Put it back at the front of its queue")
        TRANSFER = "transfer", _("Transfer it to another queue")

    counter = models.ForeignKey(Counter, on_delete=models.PROTECT, related_name="state_changes", verbose_name=_("counter"))
    state = models.CharField(max_length=8, choices=CounterState.choices, verbose_name=_("state"))
    reason = models.CharField(max_length=16, choices=BreakReason.choices, blank=True, verbose_name=_("reason"))
    previous_state = models.CharField(max_length=8, choices=CounterState.choices, verbose_name=_("previous state"))
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="counter_state_changes", verbose_name=_("staff"))
    at = models.DateTimeField(default=timezone.now, verbose_name=_("at"))
    held_ticket = models.ForeignKey("Ticket", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", help_text=_("The ticket the counter held, if any."), verbose_name=_("held ticket"))
    held_action = models.CharField(max_length=8, choices=HeldTicket.choices, blank=True, verbose_name=_("held action"))

    class Meta:
        verbose_name = _("counter state change")
        verbose_name_plural = _("counter state changes")
        ordering = ["counter", "at", "pk"]
        indexes = [models.Index(fields=["counter", "at"], name="counterstate_by_counter_time")]

    def __str__(self) -> str:
        return gettext("%(counter)s: %(state)s at %(at)s") % {
            "counter": self.counter, "state": self.get_state_display(), "at": f"{self.at:%Y-%m-%d %H:%M}"}


# Primary keys are 64-bit: a larger number names no row (and would overflow the driver).
MAX_ID = 2**63 - 1
TOKEN_BYTES = 16
# What every token looks like: 16 bytes as unpadded URL-safe base64 (22 characters).
# URL converters, the API and the WebSocket routes check a token's shape against
# this before it can reach a query (PostgreSQL refuses a NUL byte with an error).
TOKEN_PATTERN = r"[A-Za-z0-9_-]{22}"


def new_token() -> str:
    # 128 bits from the OS CSPRNG, URL-safe: the patient's only credential.
    return secrets.token_urlsafe(TOKEN_BYTES)


class Priority(models.IntegerChoices):
    NORMAL = 0, _("Normal")
    HIGH = 10, _("High")
    URGENT = 20, _("Urgent")


class TicketStatus(models.TextChoices):
    WAITING = "waiting", _("Waiting")
    CALLED = "called", _("Called")
    SERVING = "serving", _("Being served")
    COMPLETED = "completed", _("Completed")
    NO_SHOW = "no_show", _("No-show")
    CANCELLED = "cancelled", _("Cancelled")
    TRANSFERRED = "transferred", _("Transferred")
    OFFERED = "offered", _("Offered a place")
    CONFIRMED = "confirmed", _("Confirmed")
    DECLINED = "declined", _("Declined")
    EXPIRED = "expired", _("Offer expired")


# A ticket's status as it reads inside a sentence ("A-017 is being served"): its
# own message per language, not the label lowercased (German keeps "in Bedienung").
_STATUS_IN_SENTENCE = {
    TicketStatus.WAITING: pgettext_lazy("ticket status inside a sentence", "waiting"),
    TicketStatus.CALLED: pgettext_lazy("ticket status inside a sentence", "called"),
    TicketStatus.SERVING: pgettext_lazy("ticket status inside a sentence", "being served"),
    TicketStatus.COMPLETED: pgettext_lazy("ticket status inside a sentence", "completed"),
    TicketStatus.NO_SHOW: pgettext_lazy("ticket status inside a sentence", "a no-show"),
    TicketStatus.CANCELLED: pgettext_lazy("ticket status inside a sentence", "cancelled"),
    TicketStatus.TRANSFERRED: pgettext_lazy("ticket status inside a sentence", "transferred"),
    TicketStatus.OFFERED: pgettext_lazy("ticket status inside a sentence", "offered a place"),
    TicketStatus.CONFIRMED: pgettext_lazy("ticket status inside a sentence", "confirmed"),
    TicketStatus.DECLINED: pgettext_lazy("ticket status inside a sentence", "declined"),
    TicketStatus.EXPIRED: pgettext_lazy("ticket status inside a sentence", "an expired offer"),
}


def status_in_sentence(status: str) -> str:
    """A ticket status as the middle of a sentence, in the active language; a
    value no status has (corrupt data the integrity check reports) as it is."""
    return str(_STATUS_IN_SENTENCE[status]) if status in _STATUS_IN_SENTENCE else status


AT_COUNTER = (TicketStatus.CALLED, TicketStatus.SERVING)
FINAL_STATUSES = (
    TicketStatus.COMPLETED, TicketStatus.NO_SHOW, TicketStatus.CANCELLED,
    TicketStatus.TRANSFERRED, TicketStatus.DECLINED, TicketStatus.EXPIRED,
)
HOLDING_SEATS = (TicketStatus.OFFERED, TicketStatus.CONFIRMED)
# What its holder (or staff) may still cancel; being served is finished by completing it.
CANCELLABLE = (TicketStatus.WAITING, TicketStatus.CALLED, TicketStatus.OFFERED, TicketStatus.CONFIRMED)

# What the ticket's holder reads about each status: the patient page's first
# paint and its live fragment both take it from here (`status_sentence` filter).
# Waiting, called, serving and offered carry more (a place, a counter, a
# deadline) and the fragment adds it after the sentence's facts.
STATUS_SENTENCES = {
    TicketStatus.WAITING: _("You are in line."),
    TicketStatus.CALLED: _("It is your turn."),
    TicketStatus.SERVING: _("You are being served."),
    TicketStatus.COMPLETED: _("You have been served. Thank you for your visit."),
    TicketStatus.NO_SHOW: _("You were called but did not come, so this ticket has ended. "
                          "Take a new ticket if you still need to be seen."),
    TicketStatus.CANCELLED: _("This ticket was cancelled. Take a new ticket if you still need to be seen."),
    TicketStatus.TRANSFERRED: _("Your ticket was moved to another service."),
    TicketStatus.OFFERED: _("A place is offered to you."),
    TicketStatus.CONFIRMED: _("Your place is confirmed."),
    TicketStatus.DECLINED: _("You declined the place offered to you, so this request has ended."),
    TicketStatus.EXPIRED: _("The place offered to you was not accepted in time, so it went to the "
                          "next person. Make a new request if you still need one."),
}


def missed_call_sentence(*, status: str, no_show_count: int, recall_limit: int, called_at,
                         tz: str) -> str:
    """What a ticket's holder reads after missing a call and going back in line
    (the first paint and the live screen: `Ticket.missed_call`, `TicketView`);
    empty otherwise. The next miss is final once the recall limit is used up."""
    if status != TicketStatus.WAITING or not no_show_count or called_at is None:
        return ""
    at = timezone.localtime(called_at, ZoneInfo(tz)).strftime("%H:%M")
    return _missed_call_text(at, no_show_count >= recall_limit)


def _missed_call_words(at: str, last_chance: bool) -> str:
    if last_chance:
        return gettext("You missed your call at %(time)s; you are back in line, last chance.") % {"time": at}
    return gettext("You missed your call at %(time)s; you are back in line.") % {"time": at}


# Lazy: the reads run in no particular language; the words are chosen where the
# fragment is rendered, in the ticket's language.
_missed_call_text = lazy(_missed_call_words, str)


def format_display_number(prefix: str, number: int) -> str:
    """How a ticket number is shown and spoken everywhere: "A-017"."""
    return f"{prefix}-{number:03d}"


# The line clock: `Ticket.seq` is the instant a ticket took its place, in
# milliseconds since the epoch times TICKS_PER_MS (services._line keeps it
# going up; calling.py compares waits against it).
TICKS_PER_MS = 1000


def line_clock(at: datetime) -> int:
    """The line-clock reading of an instant (below 2**53: exact in JSON and JavaScript)."""
    return int(at.timestamp() * 1000) * TICKS_PER_MS


class Ticket(models.Model):
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="tickets", verbose_name=_("queue"))
    business_day = models.DateField(verbose_name=_("business day"))
    number = models.PositiveIntegerField(verbose_name=_("number"))
    token = models.CharField(max_length=32, unique=True, default=new_token, editable=False, verbose_name=_("token"))
    priority = models.SmallIntegerField(choices=Priority.choices, default=Priority.NORMAL, verbose_name=_("priority"))
    seq = models.BigIntegerField(help_text=_("Ordering key within its priority; set on entering the line."), verbose_name=_("seq"))
    status = models.CharField(max_length=16, choices=TicketStatus.choices, default=TicketStatus.WAITING, verbose_name=_("status"))
    party_size = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)], verbose_name=_("party size"))
    counter = models.ForeignKey(Counter, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="tickets", verbose_name=_("counter"))
    call_count = models.PositiveSmallIntegerField(default=0, verbose_name=_("call count"))
    no_show_count = models.PositiveSmallIntegerField(default=0, verbose_name=_("no show count"))
    transferred_to = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT,
                                          related_name="transferred_from", verbose_name=_("transferred to"))
    note = models.CharField(max_length=200, blank=True,
                            help_text=_("Staff-only note; never shown on public screens."), verbose_name=_("note"))
    # db_default: a row written by SQL that names no language (a repair script,
    # the waiting room's one-statement insert of an older release) reads English.
    language = models.CharField(
        max_length=8, choices=settings.LANGUAGES, default="en", db_default="en",
        help_text=_("The holder's language: their ticket page and their alerts speak it."), verbose_name=_("language")
    )

    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    queued_at = models.DateTimeField(default=timezone.now,
                                     help_text=_("When it last entered the line (join, requeue)."), verbose_name=_("queued at"))
    called_at = models.DateTimeField(null=True, blank=True, verbose_name=_("called at"))
    serving_at = models.DateTimeField(null=True, blank=True, verbose_name=_("serving at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))
    offer_expires_at = models.DateTimeField(null=True, blank=True, verbose_name=_("offer expires at"))
    confirmed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("confirmed at"))

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-priority", "seq"]
        constraints = [
            models.UniqueConstraint(
                fields=["queue", "business_day", "number"], name="ticket_unique_number_per_day"
            ),
            models.CheckConstraint(condition=Q(number__gt=0), name="ticket_number_positive"),
            models.UniqueConstraint(
                fields=["queue", "seq"], condition=Q(status="waiting"),
                name="ticket_unique_place_while_waiting",
            ),
            models.UniqueConstraint(
                fields=["counter"], condition=Q(status__in=["called", "serving"]),
                name="ticket_one_active_per_counter",
            ),
            models.CheckConstraint(
                # Called/serving tickets stand at exactly one counter; waiting ones at none.
                # Finished tickets keep the counter that served them, for the record.
                condition=(Q(status__in=["called", "serving"]) & Q(counter__isnull=False))
                | (Q(status="waiting") & Q(counter__isnull=True))
                | ~Q(status__in=["called", "serving", "waiting"]),
                name="ticket_counter_matches_status",
            ),
            models.CheckConstraint(
                condition=(Q(status="offered") & Q(offer_expires_at__isnull=False))
                | ~Q(status="offered"),
                name="ticket_offer_has_expiry",
            ),
            models.CheckConstraint(condition=Q(party_size__gte=1), name="ticket_party_size_positive"),
        ]
        indexes = [
            # Serves "next waiting ticket" and position counts: a partial index
            # over waiting tickets only, so it stays small however long the history.
            models.Index(
                F("queue"), F("priority").desc(), F("seq"),
                condition=Q(status="waiting"), name="ticket_waiting_order_idx",
            ),
            models.Index(fields=["queue", "status"], name="ticket_queue_status_idx"),
            # The tickets no longer waiting, by place: a waiting room's position by
            # arithmetic (`selectors.room_position_sql`) counts those between the
            # head and a place, a range of this index that holds few or none.
            models.Index(fields=["queue", "seq"], condition=~Q(status="waiting"), name="ticket_left_line_idx"),
            models.Index(fields=["status", "offer_expires_at"], name="ticket_offer_expiry_idx",
                         condition=Q(status="offered")),
        ]

    @property
    def missed_call(self) -> str:
        return missed_call_sentence(status=self.status, no_show_count=self.no_show_count,
                                    recall_limit=self.queue.recall_limit, called_at=self.called_at,
                                    tz=self.queue.location.timezone)

    def __str__(self) -> str:
        return self.display_number

    @property
    def display_number(self) -> str:
        return format_display_number(self.queue.prefix, self.number)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class WaitingCount(models.Model):
    """How many tickets of a queue wait at one priority, kept by the database.

    Triggers on the ticket table (migration 0016, PostgreSQL and SQLite) move
    the count whenever a ticket enters or leaves the line, changes priority
    or moves queue, in the same statement, whatever wrote it (a service, a
    bulk update, the admin): no code path can forget it. It answers "how many
    wait at this priority or above" without counting the line, which a new
    ticket's place needs (`selectors.place_and_wait_read`: a count over 6,000
    waiting took 2.7 ms of the database's CPU per join, issue 9).
    `validate_queue_integrity` checks it against the line."""

    pk = models.CompositePrimaryKey("queue", "priority")
    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="waiting_counts",
                              verbose_name=_("queue"))
    priority = models.SmallIntegerField(choices=Priority.choices, verbose_name=_("priority"))
    waiting = models.IntegerField(default=0, verbose_name=_("waiting"))

    class Meta:
        verbose_name = _("waiting count")
        verbose_name_plural = _("waiting counts")


class QueueEvent(models.Model):
    """Append-only: one row per state change, version +1 per queue.

    The audit trail, the source of live updates, and what a reconnecting screen
    catches up from.
    """

    class Kind(models.TextChoices):
        JOINED = "joined"
        CALLED = "called"
        RECALLED = "recalled"
        STARTED = "started"
        COMPLETED = "completed"
        NO_SHOW = "no_show"
        REQUEUED = "requeued"
        CANCELLED = "cancelled"
        TRANSFERRED_OUT = "transferred_out"
        TRANSFERRED_IN = "transferred_in"
        PAUSED = "paused"
        RESUMED = "resumed"
        CONFIRMED = "confirmed"
        OFFERED = "offered"
        ACCEPTED = "accepted"
        DECLINED = "declined"
        EXPIRED = "expired"
        CAPACITY_CHANGED = "capacity_changed"
        # Appointments (no ticket until check-in, whose ticket joins with JOINED).
        BOOKED = "booked"
        BOOKING_MOVED = "booking_moved"
        BOOKING_CANCELLED = "booking_cancelled"
        BOOKING_MISSED = "booking_missed"
        # A counter serving this queue opened, went on a break or closed.
        COUNTER_STATE = "counter_state"

    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="events", verbose_name=_("queue"))
    version = models.BigIntegerField(verbose_name=_("version"))
    kind = models.CharField(max_length=32, choices=Kind.choices, verbose_name=_("kind"))
    ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.PROTECT,
                               related_name="events", verbose_name=_("ticket"))
    counter = models.ForeignKey(Counter, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="events", verbose_name=_("counter"))
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.PROTECT, related_name="queue_events", verbose_name=_("actor"))
    status_after = models.CharField(max_length=16, choices=TicketStatus.choices, blank=True,
                                    help_text=_("The ticket's status once this event applied."), verbose_name=_("status after"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    data = models.JSONField(default=dict, blank=True, verbose_name=_("data"))

    class Meta:
        verbose_name = _("queue event")
        verbose_name_plural = _("queue events")
        ordering = ["queue", "version"]
        constraints = [
            models.UniqueConstraint(fields=["queue", "version"], name="event_unique_version_per_queue"),
            models.CheckConstraint(condition=Q(version__gt=0), name="event_version_positive"),
        ]
        indexes = [
            models.Index(fields=["ticket", "version"], name="event_ticket_history_idx"),
            models.Index(fields=["created_at"], name="event_created_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.queue_id}@{self.version} {self.kind}"


class ApiToken(models.Model):
    """A bearer token for the JSON API. Only its SHA-256 digest is stored."""

    class Kind(models.TextChoices):
        STAFF = "staff", "Staff (acts as its user)"
        KIOSK = "kiosk", "Kiosk (may only create tickets at its location)"

    name = models.CharField(max_length=80, verbose_name=_("name"))
    kind = models.CharField(max_length=16, choices=Kind.choices, verbose_name=_("kind"))
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="api_tokens", verbose_name=_("location"))
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.CASCADE, related_name="api_tokens", verbose_name=_("user"))
    digest = models.CharField(max_length=64, unique=True, editable=False, verbose_name=_("digest"))
    may_set_priority = models.BooleanField(
        default=False,
        help_text=_("Kiosk tokens: may create tickets above normal priority (e.g. a triage desk). "
                  "Staff tokens always may."), verbose_name=_("may set priority"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    last_used_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last used at"))

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="kiosk") | Q(user__isnull=False),
                name="apitoken_staff_has_user",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class DailySummary(models.Model):
    """A business day's statistics, kept when the day's tickets are purged.

    Written once per location and day by the retention purge, before it deletes
    anything, from `queueapp.stats` itself; the statistics page reads these
    rows for summarised days instead of the (gone) tickets. `queue` empty: the
    whole location (percentiles do not add up from the queues' rows).
    """

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="daily_summaries", verbose_name=_("location"))
    queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="daily_summaries", verbose_name=_("queue"))
    day = models.DateField(verbose_name=_("day"))
    figures = models.JSONField(help_text=_("`queueapp.stats.Figures` of that day, as stored."), verbose_name=_("figures"))
    hours = models.JSONField(default=dict, blank=True,
                             help_text=_("The day's hour-of-day parts by local hour (`queueapp.stats`): "
                                       "counts, sums and duration histograms that add up across days."), verbose_name=_("hours"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("daily summary")
        verbose_name_plural = _("daily summaries")
        constraints = [
            models.UniqueConstraint(fields=["location", "queue", "day"], condition=Q(queue__isnull=False),
                                    name="summary_unique_queue_day"),
            models.UniqueConstraint(fields=["location", "day"], condition=Q(queue__isnull=True),
                                    name="summary_unique_location_day"),
        ]
        indexes = [models.Index(fields=["location", "day"], name="summary_location_day_idx")]

    def __str__(self) -> str:
        return f"{self.location_id}/{self.queue_id or '*'} {self.day}"


class Purge(models.Model):
    """One retention run at a location: what it deleted and where the events went.

    Append-only (database triggers, migration 0005). The events it deleted are
    named by its `PurgedRange` rows, which the events' append-only trigger
    checks: an event row can be deleted only once a purge has recorded its
    version, so nothing can drop events quietly. `numbers` keeps, per queue
    and business day, the ticket numbers deleted (`{"<queue id>": {"<day>":
    [[first, last], ...]}}`), so `validate_queue_integrity` tells a purge from
    a gap.
    """

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="purges", verbose_name=_("location"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    cutoff = models.DateTimeField(help_text=_("Tickets that ended before this were deleted."), verbose_name=_("cutoff"))
    retention_days = models.PositiveIntegerField(verbose_name=_("retention days"))
    by = models.CharField(max_length=150, help_text=_("worker, or the user who ran the command."), verbose_name=_("by"))
    tickets_deleted = models.PositiveIntegerField(default=0, verbose_name=_("tickets deleted"))
    events_deleted = models.PositiveIntegerField(default=0, verbose_name=_("events deleted"))
    numbers = models.JSONField(default=dict, blank=True, verbose_name=_("numbers"))
    archive = models.CharField(max_length=255, blank=True,
                               help_text=_("CSV file of the deleted events, under RETENTION_ARCHIVE_DIR."), verbose_name=_("archive"))
    archive_sha256 = models.CharField(max_length=64, blank=True, verbose_name=_("archive sha256"))

    class Meta:
        verbose_name = _("purge")
        verbose_name_plural = _("purges")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"purge {self.pk} at {self.location_id}: {self.tickets_deleted} tickets"


class PurgedRange(models.Model):
    """Versions `first_version`..`last_version` of a queue's events, deleted by `purge`."""

    purge = models.ForeignKey(Purge, on_delete=models.PROTECT, related_name="ranges", verbose_name=_("purge"))
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="purged_ranges", verbose_name=_("queue"))
    first_version = models.BigIntegerField(verbose_name=_("first version"))
    last_version = models.BigIntegerField(verbose_name=_("last version"))

    class Meta:
        verbose_name = _("purged range")
        verbose_name_plural = _("purged ranges")
        constraints = [
            models.CheckConstraint(condition=Q(first_version__gt=0, last_version__gte=F("first_version")),
                                   name="purgedrange_versions_ordered"),
        ]
        indexes = [models.Index(fields=["queue", "first_version"], name="purgedrange_queue_idx")]

class WaitingRoom(models.Model):
    """A virtual waiting room in front of another site (ticket sales, a checkout).

    Built on a capacity queue: each visitor is a ticket of one seat, the
    queue's `capacity` is the most visitors inside at once and `seats_taken`
    how many are inside now (the check constraint never lets it pass the
    capacity). A visitor is *admitted* (CONFIRMED) at most `admit_per_minute`
    a minute, evenly spaced (`next_admission_at`), and *released* when the
    protected site reports done/abandoned or when the admission lapses after
    `admission_seconds`. See `queueapp.services.rooms`.
    """

    queue = models.OneToOneField(Queue, on_delete=models.PROTECT, related_name="waiting_room", verbose_name=_("queue"))
    slug = models.SlugField(max_length=60, unique=True, help_text=_("The room's address: /wait/<slug>/."), verbose_name=_("slug"))
    target_url = models.URLField(
        help_text=_("The protected site's base URL; the visitor's return path is appended to it."), verbose_name=_("target url"))
    admit_per_minute = models.PositiveIntegerField(
        validators=[MinValueValidator(1)], help_text=_("Admissions per minute, evenly spaced."), verbose_name=_("admit per minute"))
    admission_seconds = models.PositiveIntegerField(
        default=600, validators=[MinValueValidator(10)],
        help_text=_("How long an admission (and its token) lasts unless the site reports earlier."), verbose_name=_("admission seconds"))
    token_digest = models.CharField(
        max_length=64, blank=True, editable=False,
        help_text=_("SHA-256 of the room's API key (manage.py create_room_token)."), verbose_name=_("token digest"))
    # Owned by the admission cycle, written under the queue row lock.
    next_admission_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next admission at"))
    # The instants (epoch seconds) of the latest admissions, at most one rate
    # window's worth: no window admits more than the rate allows
    # (`services.rooms.admission_allowance`). Owned like `next_admission_at`.
    recent_admissions = models.JSONField(default=list, blank=True, editable=False,
                                         verbose_name=_("recent admissions"))

    class Meta:
        verbose_name = _("waiting room")
        verbose_name_plural = _("waiting rooms")
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(condition=Q(admit_per_minute__gte=1), name="room_rate_positive"),
            models.CheckConstraint(condition=Q(admission_seconds__gte=10), name="room_admission_lifetime_min"),
        ]

    def __str__(self) -> str:
        return self.slug

    @property
    def max_inside(self) -> int:
        return self.queue.capacity or 0

    @property
    def admission_interval(self) -> float:
        """Seconds between two admissions at the room's rate."""
        return 60.0 / self.admit_per_minute


class SigningKey(models.Model):
    """An Ed25519 key signing admission tokens; its public half is in the JWKS.

    Rotation (`manage.py rotate_signing_key`): a new key signs from now on;
    older keys stay published until `retire_after`, so tokens they signed
    still verify until they expire.
    """

    kid = models.CharField(max_length=40, unique=True, verbose_name=_("kid"))
    private_pem = models.TextField(editable=False, verbose_name=_("private pem"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    retire_after = models.DateTimeField(null=True, blank=True,
                                        help_text=_("Empty: the current key. Set when a newer key takes over."), verbose_name=_("retire after"))

    class Meta:
        verbose_name = _("signing key")
        verbose_name_plural = _("signing keys")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.kid


# -- Appointments beside walk-ins ------------------------------------------------
#
# A queue may publish bookable slots (`BookingSchedule`: opening hours per weekday,
# slot length, people per slot, closed days). A `Slot` row exists once somebody
# books it; its `booked` count never passes its `capacity` (check constraint, the
# same guard as a waitlist's seats), and it is only written under the queue row's
# lock (`services.bookings`). A booking enters the line as a ticket when its holder
# checks in (see `services._line.booking_place` for where it stands).


class BookingSchedule(models.Model):
    """The bookable slots a queue publishes, and how its appointments enter the line."""

    queue = models.OneToOneField(Queue, on_delete=models.CASCADE, related_name="booking_schedule", verbose_name=_("queue"))
    is_open = models.BooleanField(default=True, help_text=_("Off: no new bookings (existing ones stay)."), verbose_name=_("is open"))
    slot_minutes = models.PositiveSmallIntegerField(
        default=15, validators=[MinValueValidator(5)], help_text=_("Length of one slot."), verbose_name=_("slot minutes"))
    per_slot = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text=_("How many people one slot takes."), verbose_name=_("per slot"))
    days_ahead = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(1)], help_text=_("How far ahead slots may be booked."), verbose_name=_("days ahead"))
    early_minutes = models.PositiveSmallIntegerField(
        default=15, help_text=_("Check-in opens this long before the booked time."), verbose_name=_("early minutes"))
    late_minutes = models.PositiveSmallIntegerField(
        default=10, help_text=_("Check-in on time closes this long after the booked time; later arrivals "
                              "join as walk-ins, and a booking nobody checked in by then is a no-show."), verbose_name=_("late minutes"))
    grace_minutes = models.PositiveSmallIntegerField(
        default=5, help_text=_("A booking checked in on time stands before the walk-ins who joined after "
                             "its booked time minus this."), verbose_name=_("grace minutes"))
    self_check_in = models.BooleanField(
        default=True, help_text=_("Holders may check in from their booking page during their window."), verbose_name=_("self check in"))

    class Meta:
        verbose_name = _("booking schedule")
        verbose_name_plural = _("booking schedules")
        constraints = [
            models.CheckConstraint(condition=Q(slot_minutes__gte=5, slot_minutes__lte=480),
                                   name="schedule_slot_length_range"),
            models.CheckConstraint(condition=Q(per_slot__gte=1), name="schedule_per_slot_positive"),
            models.CheckConstraint(condition=Q(days_ahead__gte=1, days_ahead__lte=366),
                                   name="schedule_days_ahead_range"),
        ]

    def __str__(self) -> str:
        return f"Bookings for {self.queue}"


class OpeningHours(models.Model):
    """One bookable stretch of a weekday (several per day for a lunch break)."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"
        SATURDAY = 5, "Saturday"
        SUNDAY = 6, "Sunday"

    schedule = models.ForeignKey(BookingSchedule, on_delete=models.CASCADE, related_name="hours", verbose_name=_("schedule"))
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices, verbose_name=_("weekday"))
    opens = models.TimeField(verbose_name=_("opens"))
    closes = models.TimeField(help_text=_("The last slot ends by this time."), verbose_name=_("closes"))

    class Meta:
        ordering = ["weekday", "opens"]
        verbose_name = _("opening hours")
        verbose_name_plural = _("opening hours")
        constraints = [
            models.CheckConstraint(condition=Q(closes__gt=F("opens")), name="hours_close_after_open"),
            models.CheckConstraint(condition=Q(weekday__gte=0, weekday__lte=6), name="hours_weekday_range"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}-{self.closes:%H:%M}"


class ClosedDay(models.Model):
    schedule = models.ForeignKey(BookingSchedule, on_delete=models.CASCADE, related_name="closed_days", verbose_name=_("schedule"))
    day = models.DateField(verbose_name=_("day"))
    reason = models.CharField(max_length=120, blank=True, verbose_name=_("reason"))

    class Meta:
        verbose_name = _("closed day")
        verbose_name_plural = _("closed days")
        ordering = ["day"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "day"], name="closed_day_unique_per_schedule"),
        ]

    def __str__(self) -> str:
        return f"{self.day} closed"


class Slot(models.Model):
    """A booked slot: created by its first booking, its count written under the queue lock."""

    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="slots", verbose_name=_("queue"))
    starts_at = models.DateTimeField(verbose_name=_("starts at"))
    ends_at = models.DateTimeField(verbose_name=_("ends at"))
    capacity = models.PositiveSmallIntegerField(help_text=_("People this slot takes (the schedule's, when created)."), verbose_name=_("capacity"))
    booked = models.PositiveSmallIntegerField(default=0, help_text=_("Bookings holding a place in it."), verbose_name=_("booked"))

    class Meta:
        verbose_name = _("slot")
        verbose_name_plural = _("slots")
        ordering = ["queue", "starts_at"]
        constraints = [
            models.UniqueConstraint(fields=["queue", "starts_at"], name="slot_unique_start_per_queue"),
            # The database itself refuses an overbooked slot, whatever the code above it does.
            models.CheckConstraint(condition=Q(booked__gte=0, booked__lte=F("capacity")),
                                   name="slot_never_overbooked"),
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="slot_ends_after_start"),
        ]

    def __str__(self) -> str:
        return f"{self.queue_id} @ {self.starts_at:%Y-%m-%d %H:%M}"


BOOKING_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed
BOOKING_CODE_LENGTH = 8
BOOKING_CODE_PATTERN = rf"[{BOOKING_CODE_ALPHABET}]{{{BOOKING_CODE_LENGTH}}}"


def new_booking_code() -> str:
    # 40 bits: typed at the kiosk or told to staff; the booking page needs the 128-bit token.
    return "".join(secrets.choice(BOOKING_CODE_ALPHABET) for _ in range(BOOKING_CODE_LENGTH))


class BookingStatus(models.TextChoices):
    BOOKED = "booked", _("Booked")
    CHECKED_IN = "checked_in", _("Checked in")
    CANCELLED = "cancelled", _("Cancelled")
    MISSED = "missed", _("No-show")


_BOOKING_STATUS_IN_SENTENCE = {
    "booked": pgettext_lazy("booking status inside a sentence", "booked"),
    "checked_in": pgettext_lazy("booking status inside a sentence", "checked in"),
    "cancelled": pgettext_lazy("booking status inside a sentence", "cancelled"),
    "missed": pgettext_lazy("booking status inside a sentence", "missed"),
}


def booking_status_in_sentence(status: str) -> str:
    """A booking status as the middle of a sentence, in the active language."""
    return str(_BOOKING_STATUS_IN_SENTENCE[status])


# Statuses that hold a place in their slot (a missed booking keeps its count: the place was used up).
HOLDING_SLOT = (BookingStatus.BOOKED, BookingStatus.CHECKED_IN, BookingStatus.MISSED)


class Booking(models.Model):
    """An appointment in one slot. Personal data: only the optional contact, erased when it ends."""

    slot = models.ForeignKey(Slot, on_delete=models.PROTECT, related_name="bookings", verbose_name=_("slot"))
    token = models.CharField(max_length=32, unique=True, default=new_token, editable=False, verbose_name=_("token"))
    code = models.CharField(max_length=BOOKING_CODE_LENGTH, unique=True, default=new_booking_code,
                            editable=False, verbose_name=_("code"))
    status = models.CharField(max_length=16, choices=BookingStatus.choices, default=BookingStatus.BOOKED, verbose_name=_("status"))
    priority = models.SmallIntegerField(choices=Priority.choices, default=Priority.NORMAL, verbose_name=_("priority"))
    ticket = models.OneToOneField(Ticket, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="booking", verbose_name=_("ticket"))
    arrived_late = models.BooleanField(default=False, help_text=_("Checked in after its window: a walk-in."), verbose_name=_("arrived late"))
    checked_in_by = models.CharField(max_length=16, blank=True,
                                     help_text=_("kiosk, page (its holder) or staff."), verbose_name=_("checked in by"))
    contact_channel = models.CharField(max_length=8, blank=True, verbose_name=_("contact channel"))
    contact_address = models.CharField(max_length=1000, blank=True,
                                       help_text=_("Personal data: handed to the ticket's alerts at check-in, "
                                                 "erased when the booking ends."), verbose_name=_("contact address"))
    note = models.CharField(max_length=200, blank=True, help_text=_("Staff-only note."), verbose_name=_("note"))
    booked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="bookings_made", verbose_name=_("booked by"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    checked_in_at = models.DateTimeField(null=True, blank=True, verbose_name=_("checked in at"))
    ended_at = models.DateTimeField(null=True, blank=True, help_text=_("Cancelled or marked a no-show."), verbose_name=_("ended at"))

    class Meta:
        verbose_name = _("booking")
        verbose_name_plural = _("bookings")
        ordering = ["slot__starts_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="checked_in", checked_in_at__isnull=False) | ~Q(status="checked_in"),
                name="booking_checked_in_has_time",
            ),
            models.CheckConstraint(
                condition=Q(status="booked", ticket__isnull=True) | ~Q(status="booked"),
                name="booking_booked_has_no_ticket",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "slot"], condition=Q(status="booked"), name="booking_open_idx"),
        ]

    def __str__(self) -> str:
        return f"booking {self.pk} ({self.status})"


# --- Feedback after a visit (see `services/feedback.py`) ---------------------

FEEDBACK_WINDOW = timedelta(days=1)  # a rating is taken up to a day after completion
FEEDBACK_COMMENT_MAX = 1000


class Feedback(models.Model):
    """A ticket holder's rating (1-5) and optional comment, once per completed
    ticket. The comment is personal data: shown only in the admin to the
    location's staff, never on public screens, in events or logs; it goes with
    its ticket when retention deletes it (CASCADE). Per counter and staff
    member through the ticket's COMPLETED event (`stats.desk_stats`)."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="feedback", verbose_name=_("ticket"))
    rating = models.PositiveSmallIntegerField(verbose_name=_("rating"))
    comment = models.TextField(max_length=FEEDBACK_COMMENT_MAX, blank=True, verbose_name=_("comment"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("feedback")
        verbose_name_plural = _("feedback")
        constraints = [
            models.CheckConstraint(condition=Q(rating__gte=1, rating__lte=5), name="feedback_rating_1_to_5"),
        ]

    def __str__(self) -> str:
        return f"{self.rating}/5"
