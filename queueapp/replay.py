"""Replay a queue's audit trail against a reference of the ordering rule.

`validate_queue_integrity` (queueapp.integrity) calls `replay_problems` for
each queue. The replay walks the events in version order and keeps, in plain
Python, what the services keep in the database: the waiting line (each
ticket's ordering key `(priority, seq)` as its events say it entered), every
ticket's status, the seats held, the capacity and whether the queue is paused.
At each call, confirmation and offer it asks the reference rule who should
have gone, and reports every event that took someone else:

- counter queues (`services.tickets.do_call_next`): a call takes the head of
  the line, highest priority first, then the lowest `seq` (transfers "to the
  front" and requeued no-shows are already in their key). A call staff made
  for one chosen ticket (`do_call_ticket`, marked `out_of_turn` in the event)
  may take anyone waiting. A counter serving several queues picks among their
  heads; per queue that is still the head, which is what is checked here;
- capacity waitlists (`services.waitlist.admit_locked`): strict order admits
  the head only if it fits the free seats, and nobody while it does not;
  `allow_skip` (as the admission event recorded it) admits the first request
  in line that fits. Nobody is admitted or called while the queue is paused.

It also checks every ticket event's `status_after` against the status the
replay gives (and that the event could happen from the status before), and the
seats an admission recorded against the seats the replay holds.

Cost: one pass, O(E · B · log N) for E events, N tickets and B distinct party
sizes waiting (1 on a counter queue): the line is kept as one heap per party
size with lazy deletion, so "the first request that fits" looks at no more
than B heap tops. A history with purged events (retention), one that does not
start at version 1, or events that enter the line without their ordering key
(rows written before keys were recorded) make the line and the seats unknown
from there on: the replay then checks statuses only.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db.models import Case, F, JSONField, When
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import calling
from .models import QueueEvent, TicketStatus, format_display_number, status_in_sentence

K = QueueEvent.Kind
S = TicketStatus

# kind -> (statuses the ticket may have before, its status after). None: a new ticket.
TRANSITIONS: dict[str, tuple[frozenset | None, str]] = {
    K.JOINED: (None, S.WAITING),
    K.TRANSFERRED_IN: (None, S.WAITING),
    K.CALLED: (frozenset({S.WAITING}), S.CALLED),
    K.RECALLED: (frozenset({S.CALLED}), S.CALLED),
    K.STARTED: (frozenset({S.CALLED}), S.SERVING),
    # A waiting room's visitor inside (confirmed) is reported done, abandoned or expires
    # (services.rooms); a waitlist's offer expires.
    K.COMPLETED: (frozenset({S.CALLED, S.SERVING, S.CONFIRMED}), S.COMPLETED),
    K.NO_SHOW: (frozenset({S.CALLED}), S.NO_SHOW),
    # A no-show back in line (called), or a closing counter's ticket to the front (called or serving).
    K.REQUEUED: (frozenset({S.CALLED, S.SERVING}), S.WAITING),
    K.CANCELLED: (frozenset({S.WAITING, S.CALLED, S.OFFERED, S.CONFIRMED}), S.CANCELLED),
    K.TRANSFERRED_OUT: (frozenset({S.WAITING, S.CALLED, S.SERVING}), S.TRANSFERRED),
    K.CONFIRMED: (frozenset({S.WAITING}), S.CONFIRMED),
    K.OFFERED: (frozenset({S.WAITING}), S.OFFERED),
    K.ACCEPTED: (frozenset({S.OFFERED}), S.CONFIRMED),
    K.DECLINED: (frozenset({S.OFFERED}), S.DECLINED),
    K.EXPIRED: (frozenset({S.OFFERED, S.CONFIRMED}), S.EXPIRED),
}
ENTERS_LINE = (K.JOINED, K.REQUEUED, K.TRANSFERRED_IN)
# What a call made under a rule other than the default records (services.tickets.do_call_next).
RULE_KEYS = ("rule", "ratio", "streak", "overdue_before")
WHOLE_DATA_KINDS = (K.CONFIRMED, K.OFFERED, K.CAPACITY_CHANGED)
TAKES_FROM_LINE = (K.CALLED, K.CONFIRMED, K.OFFERED)


def event_rows(events) -> list[tuple]:
    """(version, kind, ticket_id, status_after, data) for a QueueEvent queryset in
    version order (one query). Decoding every event's whole payload (it carries a
    ticket snapshot) was most of the check's time: only the two keys most events
    need are read, and the whole payload only for the rare kinds that need more
    (admissions: `allow_skip`, `seats_taken`; capacity changes: `from`, `to`)."""
    whole = Case(When(kind__in=WHOLE_DATA_KINDS, then=F("data")), default=None, output_field=JSONField())
    rows = events.order_by("version").values_list(
        "version", "kind", "ticket_id", "status_after", "data__entered", "data__out_of_turn",
        "data__rule", "data__ratio", "data__streak", "data__overdue_before", whole)
    out = []
    for version, kind, ticket_id, status_after, entered, out_of_turn, *rule, data in rows:
        data = data or {}
        if entered is not None:
            data["entered"] = entered
        if out_of_turn:
            data["out_of_turn"] = True
        for key, value in zip(RULE_KEYS, rule):
            if value is not None:
                data[key] = value
        out.append((version, kind, ticket_id, status_after, data))
    return out


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    ticket_id: int | None = None


@dataclass(frozen=True)
class QueueFacts:
    """What the replay needs of the queue row and its tickets (read by the caller)."""

    prefix: str
    capacity: int | None          # now; the capacity events say what it was before
    allow_skip: bool              # now; admission events say what it was then
    numbers: dict[int, int]       # ticket id -> number
    party_sizes: dict[int, int]   # ticket id -> party size


class Line:
    """The waiting line: one heap per party size of ((-priority, seq), ticket id)."""

    def __init__(self) -> None:
        self.keys: dict[int, tuple[int, int]] = {}   # ticket id -> (-priority, seq) while waiting
        self.heaps: dict[int, list] = {}
        self.steps = 0  # heap operations and tops looked at: the replay's cost, for its tests

    def enter(self, ticket_id: int, key: tuple[int, int], party: int) -> None:
        self.keys[ticket_id] = key
        self.steps += 1
        heapq.heappush(self.heaps.setdefault(party, []), (key, ticket_id))

    def leave(self, ticket_id: int) -> None:
        self.keys.pop(ticket_id, None)  # its heap entry goes stale; dropped when it reaches the top

    def _top(self, party: int) -> tuple | None:
        heap = self.heaps[party]
        self.steps += 1
        while heap and self.keys.get(heap[0][1]) != heap[0][0]:
            self.steps += 1
            heapq.heappop(heap)
        return heap[0] if heap else None

    def first(self, *, fits: int | None = None) -> int | None:
        """The ticket the rule names: the head, or the first whose party fits `fits` seats."""
        best = None
        for party in self.heaps:
            if fits is not None and party > fits:
                continue
            top = self._top(party)
            if top is not None and (best is None or top < best):
                best = top
        return best[1] if best else None

    def candidates(self, *, ratio: bool, cutoff: int | None) -> calling.Candidates:
        """What `calling.pick` chooses from, read from the replayed line (a scan of
        the waiting keys: only for queues under a rule other than the default)."""
        head = self.first()
        if head is None:
            return calling.Candidates(None, None, None, None)
        waiting = [((-key[0], key[1]), ticket_id) for ticket_id, key in self.keys.items()]
        overdue = None
        if cutoff is not None:
            late = [(seq, -priority, tid) for (priority, seq), tid in waiting if 0 < seq < cutoff]
            overdue = min(late)[2] if late else None
        first_priority = first_normal = None
        if ratio:
            prio = [((-p, s), tid) for (p, s), tid in waiting if calling.is_priority(p)]
            normal = [((-p, s), tid) for (p, s), tid in waiting if not calling.is_priority(p)]
            first_priority = min(prio)[1] if prio else None
            first_normal = min(normal)[1] if normal else None
        return calling.Candidates(head, first_priority, first_normal, overdue)

    def party_of_head(self, party_sizes: dict[int, int]) -> tuple[int | None, int]:
        head = self.first()
        return head, party_sizes.get(head, 1) if head is not None else 0


def replay_problems(facts: QueueFacts, events: Iterable[tuple], *, complete: bool = True,
                    line: Line | None = None) -> Iterator[Finding]:
    """Yield what the events break. `events`: (version, kind, ticket_id, status_after, data)
    in version order; `complete=False` when events are missing on purpose (a retention
    purge). `line` may be given to see the replay's cost afterwards."""
    events = list(events)
    line = line if line is not None else Line()
    status: dict[int, str] = {}
    known = complete       # is the waiting line known (history complete, keys recorded)?
    paused = None          # unknown until the first pause/resume says
    seats = 0
    streak = 0             # the ratio rule's run (calling.next_streak), from the calls it made
    # The capacity before the first change is that change's "from"; without one, today's.
    capacity = next((e[4].get("from") for e in events if e[1] == K.CAPACITY_CHANGED and e[4]),
                    facts.capacity)

    def name(ticket_id: int | None) -> str:
        number = facts.numbers.get(ticket_id)
        return (format_display_number(facts.prefix, number) if number is not None
                else _("ticket %(id)s") % {"id": ticket_id})

    for index, (version, kind, ticket_id, status_after, data) in enumerate(events):
        data = data or {}
        if index == 0 and version != 1:
            known = False
        if kind in (K.PAUSED, K.RESUMED):
            paused = kind == K.PAUSED
            continue
        if kind == K.CAPACITY_CHANGED:
            capacity = data.get("to", capacity)
            continue
        rule = TRANSITIONS.get(kind)
        if rule is None or ticket_id is None:
            continue
        allowed_before, after = rule
        before = status.get(ticket_id)
        if allowed_before is not None and before is not None and before not in allowed_before:
            yield Finding("impossible_transition", _("v%(version)s: %(ticket)s %(kind)s while %(before)s.") % {
                "version": version, "ticket": name(ticket_id), "kind": kind, "before": status_in_sentence(before)}, ticket_id)
        if status_after and status_after != after:
            yield Finding("event_status_mismatch", _(
                "v%(version)s: %(kind)s of %(ticket)s records status %(recorded)s, the replay gives %(after)s.") % {
                "version": version, "kind": kind, "ticket": name(ticket_id), "recorded": status_in_sentence(status_after),
                "after": status_in_sentence(after)}, ticket_id)
        party = facts.party_sizes.get(ticket_id, 1)

        if kind in TAKES_FROM_LINE and known:
            yield from _judge(facts, line, version, kind, ticket_id, data, paused=paused,
                              free=None if capacity is None else capacity - seats, name=name, streak=streak)
        if kind == K.CALLED and data.get("rule") == "ratio" and not data.get("out_of_turn"):
            key = line.keys.get(ticket_id)
            if key is not None:
                streak = calling.next_streak(streak, -key[0])
        if kind in TAKES_FROM_LINE or (kind in (K.CANCELLED, K.TRANSFERRED_OUT) and before == S.WAITING):
            line.leave(ticket_id)
        if kind in ENTERS_LINE:
            entered = data.get("entered")
            if entered is None:
                known = False
            else:
                line.enter(ticket_id, (-entered[0], entered[1]), party)

        if kind in (K.CONFIRMED, K.OFFERED):
            seats += party
            if "seats_taken" in data and data["seats_taken"] != seats and known:
                yield Finding("seats_replay_mismatch", _(
                    "v%(version)s: %(kind)s of %(ticket)s records %(recorded)s seats taken, "
                    "the replay holds %(seats)s.") % {
                    "version": version, "kind": kind, "ticket": name(ticket_id),
                    "recorded": data["seats_taken"], "seats": seats}, ticket_id)
        elif before in (S.OFFERED, S.CONFIRMED) and after not in (S.OFFERED, S.CONFIRMED):
            seats -= party  # a held place released: declined, expired, cancelled, a visitor done
        status[ticket_id] = after


def _judge(facts: QueueFacts, line: Line, version: int, kind: str, ticket_id: int, data: dict,
           *, paused: bool | None, free: int | None, name, streak: int = 0) -> Iterator[Finding]:
    """Did this call or admission take who the rule named?"""
    if paused:
        yield Finding("taken_while_paused", _("v%(version)s: %(ticket)s %(kind)s while the queue was paused.") % {
            "version": version, "ticket": name(ticket_id), "kind": kind}, ticket_id)
    if ticket_id not in line.keys:
        yield Finding("taken_but_not_waiting", _(
            "v%(version)s: %(ticket)s %(kind)s but it was not waiting in line.") % {
            "version": version, "ticket": name(ticket_id), "kind": kind}, ticket_id)
        return
    params = {"version": version, "kind": kind, "ticket": name(ticket_id)}
    if kind == K.CALLED:
        if data.get("out_of_turn"):
            return  # staff called this one ticket on purpose
        if "rule" not in data:
            expected = line.first()
            rule = HEAD_OF_LINE
        else:
            ratio = data.get("ratio") or [1, 1]
            called_by = calling.Rule(data["rule"], ratio[0], ratio[1],
                                     1 if data.get("overdue_before") is not None else None)
            found = line.candidates(ratio=called_by.kind == "ratio", cutoff=data.get("overdue_before"))
            expected = calling.pick(called_by, found, streak)
            rule = RULE_WITH_MAXIMUM_WAIT if "overdue_before" in data else RULE
            params["rule"] = called_by.kind
            if data.get("streak") is not None and data["streak"] != streak and called_by.kind == "ratio":
                yield Finding("streak_mismatch", _(
                    "v%(version)s: the call of %(ticket)s records a run of %(recorded)s, the replay has %(run)s.") % {
                    **params, "recorded": data["streak"], "run": streak}, ticket_id)
    else:
        skip = data.get("allow_skip", facts.allow_skip)
        params["free"] = free
        if skip:
            expected = line.first(fits=free) if free is not None else line.first()
            rule = FIRST_THAT_FITS
        else:
            head, party = line.party_of_head(facts.party_sizes)
            expected = head if free is None or party <= free else None
            rule = HEAD_OF_LINE
            if expected is None:
                rule = HEAD_DOES_NOT_FIT
                params.update(head=name(head), party=party)
    if expected != ticket_id:
        if expected is None and rule is not HEAD_DOES_NOT_FIT:
            rule = NOBODY
        params["expected"] = name(expected) if expected is not None else ""
        yield Finding("out_of_order", str(rule) % params, ticket_id)


# What the ordering rule named, when an event took someone else (whole sentences:
# the rule's part is not spliced in, so each language words it its own way).
HEAD_OF_LINE = gettext_lazy(
    "v%(version)s: %(kind)s %(ticket)s, but the ordering rule named %(expected)s, the head of the line.")
RULE = gettext_lazy(
    "v%(version)s: %(kind)s %(ticket)s, but the ordering rule named %(expected)s, the %(rule)s rule.")
RULE_WITH_MAXIMUM_WAIT = gettext_lazy(
    "v%(version)s: %(kind)s %(ticket)s, but the ordering rule named %(expected)s, "
    "the %(rule)s rule with a maximum wait.")
FIRST_THAT_FITS = gettext_lazy(
    "v%(version)s: %(kind)s %(ticket)s, but the ordering rule named %(expected)s, "
    "the first request that fits %(free)s free seats.")
HEAD_DOES_NOT_FIT = gettext_lazy(
    "v%(version)s: %(kind)s %(ticket)s, but the ordering rule named nobody: the head %(head)s needs "
    "%(party)s seats, %(free)s were free (strict order).")
NOBODY = gettext_lazy("v%(version)s: %(kind)s %(ticket)s, but the ordering rule named nobody.")
