"""Who is called next: the calling rules, in one place (docs/calling-rules.md).

Per queue (`Queue.calling_rule`), among its waiting tickets:

- ``priority`` (strict, the default): the head of the line, highest priority
  first, then the lowest `seq` (the line's own order);
- ``ratio``: `ratio_priority` tickets of the priority class (high or urgent),
  then `ratio_normal` of the normal class, and again; each class in line
  order; a class with nobody waiting gives its turn to the other. The run so
  far is `Queue.call_streak` (> 0: that many priority calls in a row, < 0:
  that many normal ones), moved by every call the rule made;
- plus, with either, `max_wait_minutes`: a ticket that entered the line more
  than that long ago is called before everyone else whatever its priority,
  the one that entered first first. "Entered" is the line clock of its place
  (`seq`): a walk-in's join, a no-show's return, an on-time appointment's
  booked time minus the grace. A ticket put first in its priority (`seq` below
  zero: a transfer or a closing counter's ticket "to the front") is already
  first in its class and is not forced ahead of higher priorities.

`pick` is a pure function of the candidates; `do_call_next` gives it the
database's candidates, the integrity replay (`queueapp.replay`) the ones of its
own replayed line, so both judge a call by the same rule. Each call records the
rule it followed in its event (`rule`, `streak`, `overdue_before`), as an
admission records `allow_skip`.

Across the queues of a counter (`Counter.across_queues`), among each queue's
own pick: an overdue ticket first (the one that entered first), then
``priority`` (highest priority, then longest waiting: the default),
``longest_wait`` (longest waiting), or ``weight`` (waiting time × the queue's
`call_weight`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils.functional import lazy
from django.utils.translation import gettext

from .models import Priority, line_clock
from .selectors import waiting_tickets


@dataclass(frozen=True)
class Rule:
    kind: str = "priority"          # "priority" or "ratio"
    ratio_priority: int = 2
    ratio_normal: int = 1
    max_wait_minutes: int | None = None

    @classmethod
    def of(cls, queue) -> Rule:
        return cls(queue.calling_rule, queue.ratio_priority, queue.ratio_normal, queue.max_wait_minutes)

    @property
    def is_default(self) -> bool:
        return self.kind == "priority" and self.max_wait_minutes is None

    def describe(self) -> str:
        """The rule in words (the console shows it); lazy, because the console's
        feed is read in no particular language and rendered in each viewer's."""
        return _rule_text(self.kind, self.ratio_priority, self.ratio_normal, self.max_wait_minutes)


def _rule_words(kind: str, ratio_priority: int, ratio_normal: int, max_wait_minutes: int | None) -> str:
    if kind == "ratio":
        words = gettext("%(priority)s priority then %(normal)s normal (each in line order)") % {
            "priority": ratio_priority, "normal": ratio_normal}
    else:
        words = gettext("highest priority first, then line order")
    if max_wait_minutes is not None:
        words = gettext("%(rule)s; anyone waiting over %(minutes)s min goes first") % {
            "rule": words, "minutes": max_wait_minutes}
    return words


_rule_text = lazy(_rule_words, str)


def overdue_before(rule: Rule, now: datetime) -> int | None:
    """The line-clock reading before which a ticket has waited too long (None: no limit)."""
    if rule.max_wait_minutes is None:
        return None
    return line_clock(now - timedelta(minutes=rule.max_wait_minutes))


def is_priority(priority: int) -> bool:
    return priority > Priority.NORMAL


@dataclass(frozen=True)
class Candidates:
    """(priority, seq, ticket id) of: the head of the line, the first of each class,
    and the overdue ticket that entered first (or None)."""

    head: tuple | None
    first_priority: tuple | None
    first_normal: tuple | None
    overdue: tuple | None


def pick(rule: Rule, found: Candidates, streak: int) -> tuple | None:
    """The ticket the rule names (one of the candidates), or None if nobody waits."""
    if found.overdue is not None:
        return found.overdue
    if rule.kind != "ratio":
        return found.head
    p, n = found.first_priority, found.first_normal
    if streak >= 0:
        wants_priority = streak < rule.ratio_priority
    else:
        wants_priority = -streak >= rule.ratio_normal
    if wants_priority:
        return p if p is not None else n
    return n if n is not None else p


def next_streak(streak: int, priority: int) -> int:
    """The run after a call of a ticket of `priority` (see the module's docstring)."""
    if is_priority(priority):
        return streak + 1 if streak >= 0 else 1
    return streak - 1 if streak <= 0 else -1


def across(counter_rule: str, picks: list, *, weights: dict[int, int], now: datetime):
    """Among each queue's pick (tickets with `queue_id`, `priority`, `seq`,
    `queued_at`, `pk` and `overdue`), the one the counter calls."""
    overdue = [t for t in picks if t.overdue]
    if overdue:
        return min(overdue, key=lambda t: (t.seq, t.pk))
    if counter_rule == "longest_wait":
        return min(picks, key=lambda t: (t.queued_at, t.pk))
    if counter_rule == "weight":
        return max(picks, key=lambda t: ((now - t.queued_at).total_seconds() * weights.get(t.queue_id, 1),
                                         -t.pk))
    return max(picks, key=lambda t: (t.priority, -t.queued_at.timestamp(), -t.pk))


def candidates(queue, rule: Rule, now: datetime) -> Candidates:
    """The candidates of a queue's waiting line from the database (queue row locked
    by the caller): one query under the default rule, up to four otherwise."""
    waiting = waiting_tickets(queue)
    head = waiting.first()
    if head is None:
        return Candidates(None, None, None, None)
    cutoff = overdue_before(rule, now)
    overdue = None
    if cutoff is not None:
        overdue = waiting.filter(seq__gt=0, seq__lt=cutoff).order_by("seq", "-priority", "pk").first()
    first_priority = first_normal = None
    if rule.kind == "ratio":
        if is_priority(head.priority):
            first_priority = head
            first_normal = waiting.filter(priority__lte=Priority.NORMAL).first()
        else:
            first_normal = head  # nobody of a higher priority waits
    return Candidates(head, first_priority, first_normal, overdue)
