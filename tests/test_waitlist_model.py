"""The admission rule against a plain reference model, on random histories (Hypothesis).

The model is the rule as the docs state it: waiting requests in order
(priority, then first come); strict order stops at a head that does not fit,
`allow_skip` lets later requests that fit go through. After every step the
database must agree with the model and the integrity check must be clean.
"""

import itertools

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from queueapp.integrity import validate_queue_integrity
from queueapp.models import Queue, Ticket, TicketStatus
from queueapp.services import InvalidInput, do_cancel, do_confirm_waitlist, do_join, do_set_capacity
from tests.conftest import make_queue

pytestmark = pytest.mark.django_db
S = TicketStatus
names = itertools.count(1)

steps = st.lists(st.one_of(
    st.tuples(st.just("join"), st.integers(1, 4), st.sampled_from([0, 0, 10, 20])),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("capacity"), st.integers(0, 12)),
    st.tuples(st.just("confirm")),
), min_size=1, max_size=25)


class Model:
    def __init__(self, capacity: int, allow_skip: bool):
        self.capacity, self.allow_skip = capacity, allow_skip
        self.requests: list[dict] = []   # in join order: seq is the index

    def taken(self) -> int:
        return sum(r["party"] for r in self.requests if r["status"] == S.CONFIRMED)

    def admit(self):
        line = sorted((r for r in self.requests if r["status"] == S.WAITING),
                      key=lambda r: (-r["priority"], r["seq"]))
        for r in line:
            free = self.capacity - self.taken()
            if r["party"] <= free:
                r["status"] = S.CONFIRMED
            elif not self.allow_skip:
                return


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=steps, capacity=st.integers(1, 8), allow_skip=st.booleans())
# A head that does not fit with a smaller request behind it, both ways.
@example(history=[("join", 3, 0), ("join", 3, 0), ("join", 1, 0), ("cancel", 0)], capacity=4, allow_skip=False)
@example(history=[("join", 3, 0), ("join", 3, 0), ("join", 1, 0), ("cancel", 0)], capacity=4, allow_skip=True)
# The waiting head that blocked the line cancels: the request behind it fits.
@example(history=[("join", 3, 0), ("join", 2, 0), ("join", 1, 0), ("cancel", 1)], capacity=4, allow_skip=False)
def test_admissions_follow_the_rule_on_any_history(location, history, capacity, allow_skip):
    n = next(names)
    queue = make_queue(location, f"Resource {n}", "R", slug=f"resource-{n}", kind=Queue.Kind.CAPACITY,
                       capacity=capacity, allow_skip=allow_skip)
    model = Model(capacity, allow_skip)
    tickets: list[Ticket] = []
    for step in history:
        if step[0] == "join":
            _, party, priority = step
            if party > model.capacity:
                with pytest.raises(InvalidInput):
                    do_join(queue, party_size=party, priority=priority)
                continue
            tickets.append(do_join(queue, party_size=party, priority=priority).ticket)
            model.requests.append({"seq": len(model.requests), "party": party, "priority": priority,
                                   "status": S.WAITING})
            model.admit()
        elif step[0] == "cancel" and tickets:
            i = step[1] % len(tickets)
            if model.requests[i]["status"] in (S.WAITING, S.CONFIRMED):
                do_cancel(tickets[i])
                model.requests[i]["status"] = S.CANCELLED
                model.admit()
        elif step[0] == "capacity":
            new = step[1]
            if new < model.taken():
                with pytest.raises(InvalidInput, match="cannot go below"):
                    do_set_capacity(queue, capacity=new)
            elif new != model.capacity:
                do_set_capacity(queue, capacity=new)
                model.capacity = new
                model.admit()
        elif step[0] == "confirm":
            do_confirm_waitlist(queue)
        got = list(Ticket.objects.filter(queue=queue).order_by("pk").values_list("status", flat=True))
        assert got == [r["status"] for r in model.requests], step
    queue.refresh_from_db()
    assert queue.seats_taken == model.taken() <= queue.capacity
    assert validate_queue_integrity(queue) == []
