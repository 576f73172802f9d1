"""`WaitingCount`: how many wait per queue and priority, kept by database
triggers (migration 0016) through every way a ticket enters or leaves the
line, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from django.db.models import Count

from queueapp.integrity import validate_queue_integrity
from queueapp.models import Priority, Queue, Ticket, TicketStatus, WaitingCount
from queueapp.services import do_call_next, do_cancel, do_complete, do_join, do_no_show, do_transfer
from tests.conftest import make_counter, make_queue

pytestmark = pytest.mark.django_db


def kept(queue: Queue) -> dict[int, int]:
    return {p: n for p, n in WaitingCount.objects.filter(queue=queue).values_list("priority", "waiting") if n}


def waiting(queue: Queue) -> dict[int, int]:
    return dict(Ticket.objects.filter(queue=queue, status=TicketStatus.WAITING).order_by()
                .values("priority").annotate(n=Count("pk")).values_list("priority", "n"))


def test_the_counts_follow_every_way_a_ticket_enters_or_leaves_the_line(location, queue):
    lab = make_queue(location, name="Lab", prefix="L")
    counter = make_counter(location, queues=(queue,))
    steps = []

    def step(name: str) -> None:
        steps.append((name, kept(queue), waiting(queue), kept(lab), waiting(lab)))

    first, second = do_join(queue), do_join(queue)
    do_join(queue, priority=Priority.HIGH)
    do_join(queue, priority=Priority.URGENT)
    step("joins")
    assert kept(queue) == {Priority.NORMAL: 2, Priority.HIGH: 1, Priority.URGENT: 1}
    do_complete(do_call_next(counter=counter))  # the urgent one
    step("call")
    do_no_show(do_call_next(counter=counter))  # the high one, not there: back in line or gone
    step("no-show")
    do_cancel(first)
    step("cancel")
    do_transfer(second, to_queue=lab)
    step("transfer")
    Ticket.objects.filter(queue=lab).update(priority=Priority.HIGH)  # a bulk update, not a service
    step("bulk priority")
    plain = Ticket.objects.create(queue=lab, business_day=first.business_day, number=99, seq=2**53 - 1)  # no service
    step("plain insert")
    plain.delete()  # as a purge deletes (a ticket without events: nothing protects it)
    step("delete")
    for name, kept_here, waiting_here, kept_lab, waiting_lab in steps:
        assert (kept_here, kept_lab) == (waiting_here, waiting_lab), name
    assert validate_queue_integrity() == []


def test_a_count_that_does_not_match_the_line_is_an_integrity_problem(queue):
    do_join(queue)
    WaitingCount.objects.filter(queue=queue).update(waiting=3)
    problems = validate_queue_integrity(queue)
    assert [(p.code, p.message) for p in problems] == [
        ("waiting_count", "3 tickets are counted as waiting at priority 0, but 1 wait.")]


def test_a_queue_whose_tickets_are_gone_deletes_with_its_counts(queue):
    from datetime import date

    Ticket.objects.create(queue=queue, business_day=date(2026, 12, 1), number=1, seq=1).delete()
    assert WaitingCount.objects.get(queue=queue).waiting == 0
    queue.delete()
    assert not WaitingCount.objects.exists()
