"""What the API takes and gives, as pydantic schemas (they are also the OpenAPI docs).

Inputs are strict (a priority is a JSON number, not "10" or true) and refuse
unknown fields, so a typo is a 400 naming it rather than a silently ignored
value. Outputs are built by the `*_out` functions below from model instances.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from django.http import HttpRequest
from ninja import Field, Schema
from pydantic import ConfigDict, StrictBool, StrictInt, field_validator

from ..languages import SHIPPED
from ..models import (
    AT_COUNTER,
    MAX_ID,
    BreakReason,
    Counter,
    CounterState,
    CounterStateChange,
    Location,
    Priority,
    Queue,
    Ticket,
    TicketStatus,
)
from ..selectors import estimate_wait, place_and_wait, position_of
from ..services.tickets import MAX_PARTY_SIZE

Id = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
LanguageCode = Literal[("", *SHIPPED)]


# What the note validator below takes, for the schema (generated clients and fuzzers).
NOTE_PATTERN = "^[^\\u0000-\\u0008\\u000A-\\u001F]*$"


class Input(Schema):
    model_config = ConfigDict(extra="forbid")


class JoinIn(Input):
    priority: StrictInt = Field(Priority.NORMAL, json_schema_extra={"enum": Priority.values},
                                description="0 normal, 10 high, 20 urgent. Above normal: staff, or a "
                                            "kiosk token issued with --allow-priority.")
    party_size: StrictInt = Field(1, ge=1, le=MAX_PARTY_SIZE,
                                  description="Seats wanted (capacity waitlists); 1 on counter queues.")
    note: str = Field("", max_length=200, json_schema_extra={"pattern": NOTE_PATTERN},
                      description="Staff-only note; never shown publicly. Kiosk tokens cannot set "
                                  "it. No control characters except tab.")
    language: LanguageCode = Field(
        "", description="The holder's language (their ticket page and alerts speak it); one the "
                        "location offers. Empty: the location's default language.")

    @field_validator("priority")
    @classmethod
    def known_priority(cls, value: int) -> int:
        if value not in Priority.values:
            allowed = ", ".join(f"{v} ({label.lower()})" for v, label in Priority.choices)
            raise ValueError(f"must be one of {allowed}")
        return value

    @field_validator("note")
    @classmethod
    def printable(cls, value: str) -> str:
        # PostgreSQL refuses NUL in text; control characters have no place in a note.
        if any(ord(c) < 32 and c not in "\t" for c in value):
            raise ValueError("must not contain control characters")
        # JSON may escape half a surrogate pair ("\ud800"): no database can store it as UTF-8.
        if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            raise ValueError("must be valid Unicode text (it holds half of a surrogate pair)")
        return value


class CallIn(Input):
    counter_id: Id


class CallNextIn(Input):
    queue_id: Id | None = Field(None, description="Only this queue; default: every queue the counter serves.")


class CounterStateIn(Input):
    state: str = Field(json_schema_extra={"enum": CounterState.values},
                       description="open, break (with a reason) or closed.")
    reason: str = Field("", json_schema_extra={"enum": ["", *BreakReason.values]},
                        description="Why the counter is on a break; only with state=break.")
    held: str = Field("", json_schema_extra={"enum": ["", *CounterStateChange.HeldTicket.values]},
                      description="What to do with a ticket the counter holds (called or serving) "
                                  "when it goes on a break or closes: finish, requeue (to the front "
                                  "of its queue) or transfer (to to_queue). Without it such a "
                                  "change is refused (409 counter_holds_ticket).")
    held_ticket: Id | None = Field(None, description="The ticket you saw at the counter: refused if "
                                                     "it holds another one by now.")
    to_queue: Id | None = Field(None, description="With held=transfer: the queue to move it to.")

    @field_validator("state", "reason", "held")
    @classmethod
    def choice(cls, value: str, info) -> str:
        allowed = {"state": CounterState.values, "reason": ["", *BreakReason.values],
                   "held": ["", *CounterStateChange.HeldTicket.values]}[info.field_name]
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(v for v in allowed if v)}")
        return value


class TransferIn(Input):
    to_queue: Id
    to_front: StrictBool = Field(False, description="First in line for its priority (e.g. after "
                                                    "triage); default: back of the line.")


class ErrorOut(Schema):
    detail: str
    code: str
    field: str | None


ERRORS = {status: ErrorOut for status in (400, 401, 403, 404, 409)}


def _seconds(wait: timedelta | None) -> int | None:
    return None if wait is None else round(wait.total_seconds())


def patient_path(ticket: Ticket) -> str:
    return f"/t/{ticket.token}/"


class JoinOut(Schema):
    id: int
    number: str = Field(description="As shown and announced: A-017.")
    status: str
    token: str = Field(description="The holder's credential: keep it private.")
    position: int | None
    estimated_wait_seconds: int | None
    patient_path: str
    patient_url: str


def join_out(request: HttpRequest, ticket: Ticket) -> JoinOut:
    """The new ticket; its place and wait read after the join committed (one statement)."""
    position, wait = place_and_wait(ticket)
    path = patient_path(ticket)
    return JoinOut(id=ticket.pk, number=ticket.display_number, status=ticket.status,
                   token=ticket.token, position=position, estimated_wait_seconds=_seconds(wait),
                   patient_path=path, patient_url=request.build_absolute_uri(path))


class TicketStatusOut(Schema):
    """What the holder of a token may see: numbers and places, never names or notes."""

    number: str
    status: str
    status_label: str
    queue: str
    location: str
    position: int | None
    estimated_wait_seconds: int | None
    counter: str | None = Field(description="Where to go, while called or being served.")
    call_count: int
    transferred_to_path: str | None = Field(description="The patient page of the new ticket after a transfer.")


def ticket_status_out(ticket: Ticket) -> TicketStatusOut:
    position = position_of(ticket)
    new = ticket.transferred_to
    return TicketStatusOut(
        number=ticket.display_number, status=ticket.status, status_label=str(ticket.get_status_display()),
        queue=ticket.queue.name, location=ticket.queue.location.name, position=position,
        estimated_wait_seconds=_seconds(estimate_wait(ticket.queue, position)),
        counter=ticket.counter.name if ticket.status in AT_COUNTER else None,
        call_count=ticket.call_count,
        transferred_to_path=patient_path(new) if ticket.status == TicketStatus.TRANSFERRED and new else None,
    )


class TicketOut(Schema):
    """A ticket as staff see it."""

    id: int
    number: str
    status: str
    priority: int
    party_size: int
    queue_id: int
    queue: str
    counter_id: int | None
    counter: str | None
    position: int | None
    call_count: int
    no_show_count: int
    note: str
    transferred_to_id: int | None
    created_at: datetime
    queued_at: datetime
    called_at: datetime | None
    serving_at: datetime | None
    finished_at: datetime | None


def ticket_out(ticket: Ticket) -> TicketOut:
    return TicketOut(
        id=ticket.pk, number=ticket.display_number, status=ticket.status, priority=ticket.priority,
        party_size=ticket.party_size, queue_id=ticket.queue_id, queue=ticket.queue.name,
        counter_id=ticket.counter_id, counter=ticket.counter.name if ticket.counter_id else None,
        position=position_of(ticket), call_count=ticket.call_count,
        no_show_count=ticket.no_show_count, note=ticket.note,
        transferred_to_id=ticket.transferred_to_id, created_at=ticket.created_at,
        queued_at=ticket.queued_at, called_at=ticket.called_at, serving_at=ticket.serving_at,
        finished_at=ticket.finished_at,
    )


class CallNextOut(Schema):
    ticket: TicketOut | None = Field(description="The ticket called; null when nobody is waiting.")
    detail: str


class WaitingTicketOut(Schema):
    id: int
    number: str
    priority: int
    party_size: int
    position: int
    queued_at: datetime
    note: str


class QueueOut(Schema):
    id: int
    name: str
    slug: str
    location: str
    kind: str
    is_paused: bool
    max_waiting: int | None
    waiting: int
    version: int


def queue_out(queue: Queue, *, waiting: int) -> QueueOut:
    return QueueOut(id=queue.pk, name=queue.name, slug=queue.slug, location=queue.location.slug,
                    kind=queue.kind, is_paused=queue.is_paused, max_waiting=queue.max_waiting,
                    waiting=waiting, version=queue.version)


class LocationOut(Schema):
    id: int
    name: str
    slug: str
    timezone: str


def location_out(location: Location) -> LocationOut:
    return LocationOut(id=location.pk, name=location.name, slug=location.slug, timezone=location.timezone)


class CounterOut(Schema):
    id: int
    name: str
    location: str = Field(description="The location's slug.")
    is_open: bool = Field(description="Open: it calls tickets and counts in wait estimates.")
    state: str = Field(description="open, break or closed.")
    reason: str = Field(description="Why it is on a break (lunch, short, meeting, other); empty otherwise.")
    queue_ids: list[int] = Field(description="The queues it calls from.")


def counter_out(counter: Counter) -> CounterOut:
    return CounterOut(id=counter.pk, name=counter.name, location=counter.location.slug,
                      is_open=counter.is_open, state=counter.state, reason=counter.break_reason,
                      queue_ids=sorted(q.pk for q in counter.queues.all()))


class WaitingLineOut(Schema):
    queue: QueueOut
    tickets: list[WaitingTicketOut] = Field(description="In serving order; at most `limit`.")
