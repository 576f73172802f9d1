"""Capacity waitlists under real concurrency: real threads, the real database, no mocks.

SQLite runs these on its file test database (IMMEDIATE transactions + busy
timeout serialise the writers); PostgreSQL on row locks.
"""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
from django.db.models import Max, Sum

from queueapp.integrity import validate_queue_integrity
from queueapp.models import Queue, QueueEvent, Ticket, TicketStatus
from queueapp.services import (
    InvalidTransition,
    OfferExpired,
    do_accept_offer,
    do_cancel,
    do_confirm_waitlist,
    do_expire_offers,
    do_join,
)
from tests.conftest import make_queue
from tests.test_concurrency import in_threads

pytestmark = pytest.mark.django_db(transaction=True)

S = TicketStatus
HOLDING = (S.CONFIRMED, S.OFFERED)


def run_together(*targets) -> list:
    """Start every target at once on its own thread; re-raise the first failure."""
    return in_threads(len(targets), lambda i: targets[i]())


def seats_held(queue_id: int) -> int:
    return Ticket.objects.filter(queue_id=queue_id, status__in=HOLDING).aggregate(
        s=Sum("party_size"))["s"] or 0


def test_300_concurrent_requests_for_100_seats_with_staff_confirming_and_people_cancelling(location):
    train = make_queue(location, "Train 101", "T", kind=Queue.Kind.CAPACITY, capacity=100)
    joins_done = threading.Event()
    peak = [0]
    cancelled_confirmed: list[int] = []

    joiners_left = [6]
    count_lock = threading.Lock()

    def joiner():
        try:
            for _ in range(50):
                do_join(train.pk)
        finally:
            with count_lock:
                joiners_left[0] -= 1
                if joiners_left[0] == 0:
                    joins_done.set()

    def staff():
        # A person at a desk, clicking *Confirm* every few milliseconds.
        while not joins_done.wait(0.005):
            do_confirm_waitlist(train.pk)

    def canceller():
        rng = random.Random(7)
        while len(cancelled_confirmed) < 40:
            status = S.CONFIRMED if rng.random() < 0.8 else S.WAITING
            ids = list(Ticket.objects.filter(queue_id=train.pk, status=status).values_list("pk", flat=True))
            if not ids:
                continue
            pick = rng.choice(ids)
            try:
                do_cancel(pick, by_patient=True)
            except InvalidTransition:  # a staff confirmation got there first: fine
                continue
            if status == S.CONFIRMED:
                cancelled_confirmed.append(pick)

    def sampler():
        while not joins_done.wait(0.001):
            peak[0] = max(peak[0], seats_held(train.pk))

    run_together(*[joiner] * 6, staff, canceller, sampler)

    train.refresh_from_db()
    tickets = Ticket.objects.filter(queue=train)
    assert tickets.count() == 300
    assert peak[0] <= 100
    # Every cancelled seat went to the next in line: the train is full again, people still wait.
    assert train.seats_taken == seats_held(train.pk) == 100
    assert tickets.filter(status=S.CONFIRMED).count() == 100
    assert tickets.filter(status=S.WAITING).exists()
    assert len(cancelled_confirmed) == 40
    # Order respected: confirmations went strictly down the line, and nobody still
    # waiting stands ahead of anyone who was ever confirmed.
    confirmed_seqs = list(QueueEvent.objects.filter(queue=train, kind=QueueEvent.Kind.CONFIRMED)
                          .order_by("version").values_list("ticket__seq", flat=True))
    assert confirmed_seqs == sorted(confirmed_seqs) and len(set(confirmed_seqs)) == len(confirmed_seqs)
    assert len(confirmed_seqs) == 140
    first_waiting = tickets.filter(status=S.WAITING).order_by("seq").first()
    assert first_waiting.seq > max(confirmed_seqs)
    assert validate_queue_integrity(train) == []


def test_two_expiry_workers_racing_handle_each_offer_once_and_offer_the_next_once(location):
    trains = [make_queue(location, f"Train {n}", f"T{n}", kind=Queue.Kind.CAPACITY, capacity=5,
                         offer_seconds=60) for n in (1, 2)]
    first = {t.pk: [do_join(t.pk) for _ in range(5)] for t in trains}
    second = {t.pk: [do_join(t.pk) for _ in range(5)] for t in trains}
    assert {x.status for batch in first.values() for x in batch} == {S.OFFERED}

    lapse = Ticket.objects.aggregate(m=Max("offer_expires_at"))["m"] + timedelta(seconds=1)
    handled: list[int] = []
    run_together(*[lambda: handled.append(do_expire_offers(now=lapse))] * 2)
    assert sum(handled) == 10                        # not 20: each offer expired once

    for train in trains:
        for ticket in first[train.pk]:
            assert QueueEvent.objects.filter(ticket=ticket, kind="expired").count() == 1
            assert Ticket.objects.get(pk=ticket.pk).status == S.EXPIRED
        for ticket in second[train.pk]:
            assert QueueEvent.objects.filter(ticket=ticket, kind="offered").count() == 1
            ticket.refresh_from_db()
            assert ticket.status == S.OFFERED and ticket.offer_expires_at == lapse + timedelta(seconds=60)
        assert validate_queue_integrity(train) == []

    # The next round races too, and finds the second offers, once each.
    handled.clear()
    again = lapse + timedelta(seconds=61)
    run_together(*[lambda: handled.append(do_expire_offers(now=again))] * 2)
    assert sum(handled) == 10
    assert Ticket.objects.filter(status=S.EXPIRED).count() == 20
    assert QueueEvent.objects.filter(kind="expired").count() == 20
    for train in trains:
        train.refresh_from_db()
        assert train.seats_taken == 0
        assert validate_queue_integrity(train) == []


def test_acceptances_racing_the_expiry_workers_end_each_offer_exactly_one_way(location):
    """People accept in their last second while the workers' clocks are already past
    expiry: each offer is either kept or expired (and passed on), never both."""
    train = make_queue(location, "Train 7", "T", kind=Queue.Kind.CAPACITY, capacity=8, offer_seconds=60)
    offers = [do_join(train.pk) for _ in range(8)]
    waiting = [do_join(train.pk) for _ in range(8)]
    expiry = max(t.offer_expires_at for t in offers)
    refused: list[int] = []

    def accept(ticket):
        def run():
            try:
                do_accept_offer(ticket.pk, now=ticket.offer_expires_at - timedelta(seconds=1))
            except OfferExpired:
                refused.append(ticket.pk)
        return run

    def worker():
        do_expire_offers(now=expiry + timedelta(seconds=1))

    run_together(*[accept(t) for t in offers], worker, worker)

    ended = {t.pk: Ticket.objects.get(pk=t.pk).status for t in offers}
    assert set(ended.values()) <= {S.CONFIRMED, S.EXPIRED}
    expired = [pk for pk, status in ended.items() if status == S.EXPIRED]
    assert sorted(refused) == sorted(expired)
    for ticket in offers:
        kinds = list(QueueEvent.objects.filter(ticket=ticket, kind__in=["accepted", "expired"])
                     .values_list("kind", flat=True))
        assert kinds == (["expired"] if ticket.pk in expired else ["accepted"])
    # Exactly as many of the waiting got an offer as offers expired, each once.
    offered_next = [t for t in waiting if Ticket.objects.get(pk=t.pk).status == S.OFFERED]
    assert [t.pk for t in offered_next] == [t.pk for t in waiting[:len(expired)]]
    assert QueueEvent.objects.filter(ticket__in=waiting, kind="offered").count() == len(expired)
    assert validate_queue_integrity(train) == []
