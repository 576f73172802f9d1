"""The worker's side of the outbox: claim due rows, send, record, back off.

- **Claim** (one short transaction): the due rows, oldest first, `FOR UPDATE
  SKIP LOCKED` on PostgreSQL (workers on several machines take disjoint rows);
  on SQLite the IMMEDIATE transaction serialises the claims. A claim writes a
  lease and pushes `next_attempt_at` a lease length ahead, so a worker killed
  mid-send leaves rows that become due again by themselves. The attempt is
  counted at the claim, so a message that kills its worker still dies in time.
- **Drop** what is no longer true (the ticket was served before "3 ahead"
  went out, the person said stop, the endpoint was switched off), with a reason.
- **Send** the rest concurrently outside any transaction (no lock is held while
  a receiver hangs), each with a timeout.
- **Record** each attempt and the outcome, conditionally on the lease (a row
  taken over after its lease lapsed is the newer claim's to finish): delivered;
  or retried after an exponential back-off with jitter; or dead after
  ALERTS_MAX_ATTEMPTS attempts or ALERTS_MAX_AGE_HOURS (counted from its
  creation, or from a manager's reset: `do_reset_dead`).

At least once: a row is only finished after its send returned, so a crash
between send and record sends it again, with the same `message_id`.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from . import senders
from .models import (
    Channel,
    Contact,
    DeliveryAttempt,
    OutboxMessage,
    OutboxState,
    StaffPushSubscription,
    WebhookEndpoint,
    reason_code,
    reset_note,
)
from .outcome import Outcome

log = logging.getLogger(__name__)
DUE = (OutboxState.PENDING, OutboxState.RETRYING)


def backoff_seconds(attempts: int) -> float:
    """Exponential back-off with "equal jitter": base · 2^(n-1), capped, then
    half of it fixed and half random, so retries of a burst spread out."""
    delay = min(settings.ALERTS_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0),
                settings.ALERTS_RETRY_MAX_SECONDS)
    return delay / 2 + random.uniform(0, delay / 2)


def lease_seconds(batch: int) -> float:
    """How long a claim holds its rows: at least ALERTS_CLAIM_SECONDS, and long
    enough for the whole batch to time out wave after wave (so no other worker
    takes a row back while this one may still be sending it)."""
    waves = -(-batch // settings.ALERTS_CONCURRENCY)
    return max(settings.ALERTS_CLAIM_SECONDS, waves * (settings.ALERTS_SEND_TIMEOUT + 1))


def claim(limit: int | None = None) -> list[OutboxMessage]:
    limit = limit or settings.ALERTS_BATCH
    lease = uuid.uuid4().hex
    # Look before locking: an idle worker polls with a plain read, and never
    # takes SQLite's write lock (IMMEDIATE) away from staff clicks for nothing.
    if not OutboxMessage.objects.filter(state__in=DUE, next_attempt_at__lte=timezone.now()).exists():
        return []
    with transaction.atomic():
        now = timezone.now()
        due = (OutboxMessage.objects.filter(state__in=DUE, next_attempt_at__lte=now)
               .order_by("next_attempt_at"))
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("pk", flat=True)[:limit])
        if not ids:
            return []
        OutboxMessage.objects.filter(pk__in=ids).update(
            lease=lease, attempts=F("attempts") + 1,
            next_attempt_at=now + timedelta(seconds=lease_seconds(len(ids))))
    return list(OutboxMessage.objects.filter(pk__in=ids, lease=lease)
                .select_related("contact", "endpoint", "user", "staff_push", "ticket__queue"))


def drop_reason(message: OutboxMessage) -> str:
    """Why the message must not go out now (a reason code; `models.say_reason`
    says it); empty when it is still true."""
    if message.contact_id is None and message.user_id is None and message.endpoint_id is None:
        return reason_code("subscription_removed")
    if message.channel == Channel.PUSH and message.contact_id is None and message.staff_push_id is None:
        return reason_code("subscription_removed")
    if message.contact is not None and not message.contact.active:
        return reason_code("alerts_stopped" if message.contact.stopped_at else "address_erased")
    if message.endpoint is not None and not message.endpoint.is_active:
        return reason_code("endpoint_off")
    if message.channel == Channel.EMAIL and message.user is not None and not message.user.email:
        return reason_code("no_email")
    if message.requires_status:
        if message.ticket is None:
            return reason_code("ticket_gone")
        if message.ticket.status not in message.requires_status.split(","):
            return reason_code("ticket_status", message.ticket.status)
    return ""


_pool: ThreadPoolExecutor | None = None


def _send_all(messages: list[OutboxMessage]) -> list[Outcome]:
    global _pool
    if len(messages) == 1:
        return [senders.send(messages[0])]
    if _pool is None:
        _pool = ThreadPoolExecutor(settings.ALERTS_CONCURRENCY, thread_name_prefix="alerts-send")
    return list(_pool.map(senders.send, messages))


def deliver_due(limit: int | None = None) -> int:
    """One round: claim, drop, send, record. Returns how many rows it claimed."""
    batch = claim(limit)
    if not batch:
        return 0
    to_send, dropped = [], []
    for message in batch:
        reason = drop_reason(message)
        (dropped.append((message, reason)) if reason else to_send.append(message))
    outcomes = _send_all(to_send) if to_send else []
    _record(batch[0].lease, dropped, list(zip(to_send, outcomes, strict=True)))
    return len(batch)


def _record(lease: str, dropped, sent) -> None:
    now = timezone.now()
    max_age = timedelta(hours=settings.ALERTS_MAX_AGE_HOURS)
    mine = OutboxMessage.objects.filter(lease=lease)
    with transaction.atomic():
        for message, reason in dropped:
            mine.filter(pk=message.pk).update(state=OutboxState.DROPPED, drop_reason=reason[:200],
                                              finished_at=now, lease="")
        attempts, ok_endpoints, failed_endpoints, gone, delivered, retrying = [], set(), set(), [], [], {}
        for message, outcome in sent:
            attempts.append(DeliveryAttempt(message=message, at=now, ok=outcome.ok,
                                            status_code=outcome.status_code, error=outcome.error,
                                            duration_ms=outcome.duration_ms))
            if message.endpoint_id:
                (ok_endpoints if outcome.ok else failed_endpoints).add(message.endpoint_id)
            if outcome.ok:
                delivered.append(message.pk)
            elif outcome.gone:
                gone.append((message.contact_id, message.staff_push_id))
                mine.filter(pk=message.pk).update(state=OutboxState.DROPPED, finished_at=now, lease="",
                                                  drop_reason=reason_code("push_gone"),
                                                  last_error=outcome.error)
            elif (not outcome.retry or message.attempts >= settings.ALERTS_MAX_ATTEMPTS
                  or now - (message.reset_at or message.created_at) >= max_age):
                mine.filter(pk=message.pk).update(state=OutboxState.DEAD, finished_at=now,
                                                  last_error=outcome.error, lease="")
            else:
                retrying[message.pk] = (now + timedelta(seconds=backoff_seconds(message.attempts)),
                                        outcome.error)
        # The common outcomes in one statement each, however large the batch
        # (a receiver that is down fails the whole batch at once).
        if delivered:
            mine.filter(pk__in=delivered).update(state=OutboxState.DELIVERED, finished_at=now,
                                                 last_error="", lease="")
        if retrying:
            mine.filter(pk__in=retrying).update(
                state=OutboxState.RETRYING, lease="",
                next_attempt_at=Case(*[When(pk=pk, then=Value(due)) for pk, (due, _) in retrying.items()]),
                last_error=Case(*[When(pk=pk, then=Value(error)) for pk, (_, error) in retrying.items()]))
        DeliveryAttempt.objects.bulk_create(attempts)
        if ok_endpoints:
            WebhookEndpoint.objects.filter(pk__in=ok_endpoints, failing_since__isnull=False).update(
                failing_since=None)
        failed_endpoints -= ok_endpoints
        if failed_endpoints:
            WebhookEndpoint.objects.filter(pk__in=failed_endpoints, failing_since__isnull=True).update(
                failing_since=now)
        if gone:
            # "A push subscription that the push service answers 404/410 is removed."
            Contact.objects.filter(pk__in=[contact for contact, _ in gone if contact]).delete()
            StaffPushSubscription.objects.filter(pk__in=[staff for _, staff in gone if staff]).delete()


@transaction.atomic(durable=True)
def do_reset_dead(message_ids, *, acting_user) -> int:
    """A manager's "try again" on dead messages: due now with a fresh count of
    attempts and a fresh age limit (`reset_at`), its history kept: `created_at`
    stays when it first became due, earlier attempts stay, and the reset is a
    note in the attempt log. Messages that are not dead are left alone.
    Locks the dead rows (a second reset at the same time finds them due)."""
    now = timezone.now()
    dead = list(OutboxMessage.objects.select_for_update()
                .filter(pk__in=list(message_ids), state=OutboxState.DEAD).only("pk", "attempts", "last_error"))
    if not dead:
        return 0
    who = acting_user.get_username() if acting_user is not None else ""
    DeliveryAttempt.objects.bulk_create([
        DeliveryAttempt(message=m, at=now, ok=None, note=reset_note(who, m.attempts, m.last_error or ""))
        for m in dead])
    OutboxMessage.objects.filter(pk__in=[m.pk for m in dead]).update(
        state=OutboxState.RETRYING, attempts=0, next_attempt_at=now, finished_at=None, reset_at=now, lease="")
    return len(dead)


# --- The loop the worker runs beside its periodic jobs ------------------------

_loop: threading.Thread | None = None
_stop = threading.Event()


def run_loop(stop: threading.Event | None = None) -> None:
    """Deliver until stopped: another round at once while there is work, a short
    sleep when there is none (ALERTS_IDLE_POLL_SECONDS)."""
    stop = stop or _stop
    while not stop.is_set():
        close_old_connections()
        try:
            busy = deliver_due()
        except Exception:
            log.exception("alert delivery round failed")
            connection.close()
            stop.wait(1.0)
            continue
        if not busy:
            stop.wait(settings.ALERTS_IDLE_POLL_SECONDS)
    connection.close()


def ensure_loop() -> bool:
    """Start the delivery thread if it is not running (it restarts after a crash).
    Returns True when it had to start it."""
    global _loop
    if _loop is not None and _loop.is_alive():
        return False
    _stop.clear()
    _loop = threading.Thread(target=run_loop, name="alerts-delivery", daemon=True)
    _loop.start()
    return True


def stop_loop(timeout: float = 10) -> None:
    _stop.set()
    if _loop is not None:
        _loop.join(timeout)
