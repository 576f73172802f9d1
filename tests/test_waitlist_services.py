"""Capacity waitlists: admission in order, party sizes, offers, batches, capacity changes."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from queueapp.integrity import validate_queue_integrity
from queueapp.models import Priority, Queue, QueueEvent, Ticket, TicketStatus
from queueapp.selectors import estimate_wait, position_of
from queueapp.services import (
    InvalidInput,
    InvalidTransition,
    OfferExpired,
    QueueFull,
    QueuePaused,
    do_accept_offer,
    do_cancel,
    do_confirm_waitlist,
    do_decline_offer,
    do_expire_offers,
    do_join,
    do_pause,
    do_resume,
    do_set_capacity,
    run_waitlist_cycles,
)
from tests.conftest import make_queue

pytestmark = pytest.mark.django_db

S = TicketStatus


def make_waitlist(location, capacity=4, **kwargs) -> Queue:
    return make_queue(location, kwargs.pop("name", "Train 101"), kwargs.pop("prefix", "T"),
                      kind=Queue.Kind.CAPACITY, capacity=capacity, **kwargs)


def fresh(ticket) -> Ticket:
    return Ticket.objects.select_related("queue").get(pk=ticket.pk)


def statuses(*tickets) -> list[str]:
    return [fresh(t).status for t in tickets]


def assert_clean(queue):
    assert validate_queue_integrity(queue) == []


def test_requests_are_confirmed_while_seats_remain_then_wait_with_a_position(location):
    train = make_waitlist(location, capacity=3)
    a = do_join(train, party_size=2)
    b = do_join(train)
    c = do_join(train)
    d = do_join(train)
    assert (a.status, b.status) == (S.CONFIRMED, S.CONFIRMED)
    assert (position_of(a), position_of(b)) == (None, None)
    assert (c.status, position_of(c)) == (S.WAITING, 1)
    assert position_of(d) == 2
    # Seats free up by cancellations: no time to promise.
    assert estimate_wait(train, position_of(d)) is None
    train.refresh_from_db()
    assert train.seats_taken == 3
    assert_clean(train)


def test_a_party_takes_as_many_seats_as_people_and_cannot_exceed_capacity(location):
    train = make_waitlist(location, capacity=4)
    do_join(train, party_size=3)
    with pytest.raises(InvalidInput, match="4 places in all; a party of 5 cannot fit") as err:
        do_join(train, party_size=5)
    assert err.value.field == "party_size"
    train.refresh_from_db()
    assert train.seats_taken == 3


def test_strict_order_keeps_smaller_requests_behind_a_head_that_does_not_fit(location):
    train = make_waitlist(location, capacity=4)
    first = do_join(train, party_size=3)
    big = do_join(train, party_size=3)      # 1 seat free: waits
    single = do_join(train)                  # would fit, but the head goes first
    assert statuses(big, single) == [S.WAITING, S.WAITING]
    do_cancel(first)
    # 4 free: the party of 3 first, then the single fits in the last seat.
    assert statuses(big, single) == [S.CONFIRMED, S.CONFIRMED]
    assert_clean(train)


def test_when_a_blocking_head_cancels_the_request_behind_it_goes_through(location):
    train = make_waitlist(location, capacity=4)
    do_join(train, party_size=3)
    big = do_join(train, party_size=3)
    single = do_join(train)
    do_cancel(big)
    assert statuses(single) == [S.CONFIRMED]
    assert_clean(train)


def test_allow_skip_lets_smaller_requests_through_and_the_head_keeps_its_place(location):
    train = make_waitlist(location, capacity=4, allow_skip=True)
    first = do_join(train, party_size=3)
    big = do_join(train, party_size=3)
    single = do_join(train)
    assert statuses(big, single) == [S.WAITING, S.CONFIRMED]
    late_single = do_join(train)            # no seat left for anyone now
    do_cancel(single)                               # 1 free: big still does not fit
    assert statuses(big, late_single) == [S.WAITING, S.CONFIRMED]
    do_cancel(first)                                # 3 free: the head goes first
    assert statuses(big) == [S.CONFIRMED]
    assert_clean(train)


def test_priority_goes_first_then_first_come(location):
    train = make_waitlist(location, capacity=1)
    holder = do_join(train)
    normal = do_join(train)
    urgent = do_join(train, priority=Priority.URGENT)
    do_cancel(holder)
    assert statuses(urgent, normal) == [S.CONFIRMED, S.WAITING]


def test_full_waitlist_refuses_only_requests_that_would_have_to_wait(location):
    train = make_waitlist(location, capacity=2, max_waiting=1)
    do_join(train)
    do_join(train)                      # both confirmed: the waitlist is still empty
    do_join(train)                      # waits (1 of 1)
    with pytest.raises(QueueFull, match="fully booked and its waitlist is full"):
        do_join(train)
    train.refresh_from_db()
    assert train.last_number == 3       # the refused request left no number behind
    assert_clean(train)


def test_no_waitlist_at_all_confirms_or_refuses(location):
    train = make_waitlist(location, capacity=1, max_waiting=0)
    assert do_join(train).status == S.CONFIRMED
    with pytest.raises(QueueFull):
        do_join(train)


def test_every_admission_is_an_event_that_says_who_left_the_line(location, published,
                                                                  django_capture_on_commit_callbacks):
    train = make_waitlist(location, capacity=1)
    holder = do_join(train)
    waiting = do_join(train)
    with django_capture_on_commit_callbacks(execute=True):
        do_cancel(holder)
    cancelled, confirmed = published[-2:]
    assert (cancelled["kind"], confirmed["kind"]) == ("cancelled", "confirmed")
    assert confirmed["left"] == [waiting.priority, waiting.seq]
    assert confirmed["ticket"]["status"] == "confirmed" and confirmed["seats_taken"] == 1
    event = QueueEvent.objects.get(queue=train, kind=QueueEvent.Kind.CONFIRMED, ticket=waiting)
    assert event.status_after == S.CONFIRMED


def test_staff_confirm_runs_a_cycle_and_refuses_a_paused_or_counter_queue(location, queue, staff):
    room = make_waitlist(location, capacity=10, batch_size=2)
    tickets = [do_join(room) for _ in range(5)]
    assert statuses(*tickets) == [S.WAITING] * 5      # a waiting room waits for its cycle
    confirmed = do_confirm_waitlist(room, acting_user=staff)
    assert [t.pk for t in confirmed] == [t.pk for t in tickets[:2]]
    assert QueueEvent.objects.filter(queue=room, kind="confirmed", actor=staff).count() == 2
    with pytest.raises(InvalidInput, match="counter queue, not a waitlist"):
        do_confirm_waitlist(queue)
    do_pause(room)
    with pytest.raises(QueuePaused, match="resume it before confirming"):
        do_confirm_waitlist(room)


def test_batch_admission_admits_one_batch_per_cycle_and_caps_open_offers(location):
    room = make_waitlist(location, capacity=100, batch_size=3, offer_seconds=600, max_open_offers=4)
    tickets = [do_join(room) for _ in range(10)]
    assert run_waitlist_cycles() == 3
    assert run_waitlist_cycles() == 1          # 4 offers open: the cap, not the batch, limits
    assert run_waitlist_cycles() == 0
    assert statuses(*tickets[:5]) == [S.OFFERED] * 4 + [S.WAITING]
    do_accept_offer(tickets[0])                # an accepted offer is no longer open
    do_decline_offer(tickets[1])
    assert run_waitlist_cycles() == 2
    assert statuses(*tickets[4:7]) == [S.OFFERED, S.OFFERED, S.WAITING]
    assert_clean(room)


def test_set_capacity_admits_on_increase_and_refuses_below_seats_taken(location, manager):
    train = make_waitlist(location, capacity=2)
    do_join(train, party_size=2)
    waiting = do_join(train)
    with pytest.raises(InvalidInput, match="2 seats are already confirmed or offered, so the capacity "
                                           "cannot go below 2") as err:
        do_set_capacity(train, capacity=1)
    assert err.value.field == "capacity"
    do_set_capacity(train, capacity=3, acting_user=manager)
    assert fresh(waiting).status == S.CONFIRMED
    change = QueueEvent.objects.get(queue=train, kind=QueueEvent.Kind.CAPACITY_CHANGED)
    assert change.data["from"] == 2 and change.data["to"] == 3 and change.actor == manager
    for bad in (-1, "3", 2.5, None, True):
        with pytest.raises(InvalidInput, match="Capacity must be a whole number"):
            do_set_capacity(train, capacity=bad)
    assert_clean(train)


def test_the_database_refuses_overbooking_on_its_own(location):
    train = make_waitlist(location, capacity=2)
    do_join(train, party_size=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        Queue.objects.filter(pk=train.pk).update(seats_taken=F("seats_taken") + 1)


def test_paused_waitlist_admits_nobody_until_resumed(location):
    train = make_waitlist(location, capacity=1)
    holder = do_join(train)
    waiting = do_join(train)
    do_pause(train)
    do_cancel(holder)
    assert fresh(waiting).status == S.WAITING
    do_resume(train)
    assert fresh(waiting).status == S.CONFIRMED
    assert_clean(train)


# --- offers -------------------------------------------------------------------

def test_admission_with_offers_holds_the_seats_until_accepted(location):
    train = make_waitlist(location, capacity=2, offer_seconds=900)
    before = timezone.now()
    offer = do_join(train, party_size=2)
    assert offer.status == S.OFFERED
    assert before + timedelta(seconds=900) <= offer.offer_expires_at
    train.refresh_from_db()
    assert train.seats_taken == 2
    accepted = do_accept_offer(offer)
    assert accepted.status == S.CONFIRMED and accepted.confirmed_at is not None
    assert [e.kind for e in QueueEvent.objects.filter(ticket=offer)] == ["joined", "offered", "accepted"]
    assert_clean(train)


def test_offer_accepted_one_second_before_expiry_is_kept(location):
    train = make_waitlist(location, capacity=1, offer_seconds=900)
    offer = do_join(train)
    do_accept_offer(offer, now=offer.offer_expires_at - timedelta(seconds=1))
    assert fresh(offer).status == S.CONFIRMED
    # The worker running later leaves a confirmed seat alone.
    assert do_expire_offers(now=offer.offer_expires_at + timedelta(hours=1)) == 0
    assert fresh(offer).status == S.CONFIRMED


def test_offer_accepted_one_second_after_expiry_is_refused_and_passed_on(location):
    train = make_waitlist(location, capacity=1, offer_seconds=900)
    offer = do_join(train)
    next_in_line = do_join(train)
    late = offer.offer_expires_at + timedelta(seconds=1)
    # The worker has not run: the acceptance itself notices the lapse.
    with pytest.raises(OfferExpired, match=r"offer for T-001 expired at \d\d:\d\d:\d\d and its seats "
                                           "went to the next request in line") as err:
        do_accept_offer(offer, now=late)
    assert err.value.status_code == 409
    assert statuses(offer, next_in_line) == [S.EXPIRED, S.OFFERED]
    assert fresh(next_in_line).offer_expires_at == late + timedelta(seconds=900)
    # Asking again says the same, and changes nothing.
    with pytest.raises(OfferExpired):
        do_accept_offer(offer, now=late)
    assert QueueEvent.objects.filter(ticket=offer, kind="expired").count() == 1
    assert_clean(train)


def test_decline_passes_the_seats_to_the_next_in_line(location):
    train = make_waitlist(location, capacity=2, offer_seconds=600)
    offer = do_join(train, party_size=2)
    second = do_join(train)
    third = do_join(train)
    declined = do_decline_offer(offer)
    assert declined.status == S.DECLINED
    assert statuses(second, third) == [S.OFFERED, S.OFFERED]
    event = QueueEvent.objects.get(ticket=offer, kind="declined")
    assert event.status_after == S.DECLINED and event.data["seats_released"] == 2
    with pytest.raises(InvalidTransition, match="no open offer to decline: it is declined"):
        do_decline_offer(offer)
    fourth = do_join(train)
    with pytest.raises(InvalidTransition, match="no open offer to accept: it is waiting"):
        do_accept_offer(fourth)
    assert_clean(train)


def test_worker_expires_lapsed_offers_and_offers_the_next_once(location):
    train = make_waitlist(location, capacity=2, offer_seconds=60)
    first = do_join(train)
    second = do_join(train)
    third = do_join(train)
    assert do_expire_offers(now=first.offer_expires_at - timedelta(seconds=1)) == 0
    later = second.offer_expires_at
    assert do_expire_offers(now=later) == 2
    assert statuses(first, second, third) == [S.EXPIRED, S.EXPIRED, S.OFFERED]
    assert do_expire_offers(now=later) == 0
    assert QueueEvent.objects.filter(ticket=third, kind="offered").count() == 1
    assert_clean(train)


def test_cancelling_an_offer_releases_its_seats(location):
    train = make_waitlist(location, capacity=1, offer_seconds=60)
    offer = do_join(train)
    waiting = do_join(train)
    do_cancel(offer, by_patient=True)
    assert fresh(waiting).status == S.OFFERED
    assert_clean(train)


def test_integrity_reports_a_missed_admission(location):
    train = make_waitlist(location, capacity=1)
    holder = do_join(train)
    do_join(train)
    # A raw write that frees the seat without admitting (what a bug would do).
    Ticket.objects.filter(pk=holder.pk).update(status=S.CANCELLED)
    Queue.objects.filter(pk=train.pk).update(seats_taken=0)
    codes = {p.code for p in validate_queue_integrity(train)}
    assert "waitlist_stalled" in codes


def test_worker_jobs_expire_lapsed_offers_and_admit_the_next_batch(location):
    from queueapp import jobs, worker

    assert {jobs.expire_offers, jobs.admit_waitlist_batches} <= {job.func for job in worker.JOBS}
    room = make_waitlist(location, capacity=10, offer_seconds=60, batch_size=1)
    first, second = do_join(room), do_join(room)
    jobs.admit_waitlist_batches()
    assert statuses(first, second) == [S.OFFERED, S.WAITING]
    Ticket.objects.filter(pk=first.pk).update(offer_expires_at=timezone.now() - timedelta(seconds=1))
    jobs.expire_offers()
    jobs.admit_waitlist_batches()
    assert statuses(first, second) == [S.EXPIRED, S.OFFERED]
    assert_clean(room)


def test_integrity_reports_waitlist_states_that_cannot_be(location, queue):
    train = make_waitlist(location, capacity=2, offer_seconds=60)
    offer = do_join(train)
    confirmed = do_join(train)
    do_accept_offer(confirmed)
    counter_ticket = do_join(queue)
    Ticket.objects.filter(pk=offer.pk).update(offer_expires_at=timezone.now() - timedelta(minutes=6))
    Ticket.objects.filter(pk=confirmed.pk).update(confirmed_at=None)
    Ticket.objects.filter(pk=counter_ticket.pk).update(status=S.CONFIRMED)
    found = {(p.code, p.ticket_id) for p in validate_queue_integrity()}
    assert {("offer_overdue", offer.pk), ("confirmed_without_time", confirmed.pk),
            ("status_of_other_queue_kind", counter_ticket.pk)} <= found


def test_one_broken_queue_does_not_stop_expiry_on_the_others(location):
    broken = make_waitlist(location, capacity=1, offer_seconds=60, name="Broken", prefix="X")
    healthy = make_waitlist(location, capacity=1, offer_seconds=60, name="Healthy", prefix="Y")
    stuck, fine = do_join(broken), do_join(healthy)
    # A corrupted seat counter: releasing the offer would take it below zero, which
    # the database refuses, so that queue's expiry rolls back.
    Queue.objects.filter(pk=broken.pk).update(seats_taken=0)
    later = max(stuck.offer_expires_at, fine.offer_expires_at) + timedelta(seconds=1)
    assert do_expire_offers(now=later) == 1
    assert statuses(stuck, fine) == [S.OFFERED, S.EXPIRED]
