"""The admission rule against a plain reference model, on random histories (Hypothesis).

The model is the rule as the docs state it: waiting requests in order
(priority, then first come); strict order stops at a head that does not fit,
`allow_skip` lets later requests that fit go through; offers hold seats until
accepted, declined or expired; `max_open_offers` caps open offers; a batched
waiting room admits only in cycles, `batch_size` at a time. After every step
the database must agree with the model and the integrity check must be clean.
"""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from queueapp.integrity import validate_queue_integrity
from queueapp.models import Queue, Ticket, TicketStatus
from queueapp import services
from queueapp.services import InvalidInput
from tests.conftest import make_queue

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
S = TicketStatus
HOLDING = (S.CONFIRMED, S.OFFERED)
names = itertools.count(1)

steps = st.lists(st.one_of(
    st.tuples(st.just("join"), st.integers(1, 4), st.sampled_from([0, 0, 10, 20])),
    st.tuples(st.sampled_from(["cancel", "accept", "decline"]), st.integers(0, 30)),
    st.tuples(st.just("capacity"), st.integers(0, 12)),
    st.tuples(st.sampled_from(["confirm", "expire"])),
), min_size=1, max_size=25)

modes = st.fixed_dictionaries({
    "capacity": st.integers(1, 8),
    "allow_skip": st.booleans(),
    "offer_seconds": st.sampled_from([None, 60]),
    "max_open_offers": st.sampled_from([None, 2]),
    "batch_size": st.sampled_from([None, None, 2]),
})


class Model:
    def __init__(self, mode: dict):
        self.mode = dict(mode)
        self.requests: list[dict] = []   # in join order

    def taken(self) -> int:
        return sum(r["party"] for r in self.requests if r["status"] in HOLDING)

    def admit(self, *, cycle: bool = False):
        m = self.mode
        if m["batch_size"] and not cycle:
            return
        budget = m["batch_size"] or 10**9
        if m["offer_seconds"] and m["max_open_offers"] is not None:
            open_offers = sum(r["status"] == S.OFFERED for r in self.requests)
            budget = min(budget, m["max_open_offers"] - open_offers)
        line = sorted((r for r in self.requests if r["status"] == S.WAITING),
                      key=lambda r: (-r["priority"], r["seq"]))
        for r in line:
            if budget <= 0:
                return
            if r["party"] <= m["capacity"] - self.taken():
                r["status"] = S.OFFERED if m["offer_seconds"] else S.CONFIRMED
                budget -= 1
            elif not m["allow_skip"]:
                return


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=steps, mode=modes)
# A head that does not fit with a smaller request behind it, both ways.
@example(history=[("join", 3, 0), ("join", 3, 0), ("join", 1, 0), ("cancel", 0)],
         mode={"capacity": 4, "allow_skip": False, "offer_seconds": None, "max_open_offers": None,
               "batch_size": None})
@example(history=[("join", 3, 0), ("join", 3, 0), ("join", 1, 0), ("cancel", 0)],
         mode={"capacity": 4, "allow_skip": True, "offer_seconds": None, "max_open_offers": None,
               "batch_size": None})
# The waiting head that blocked the line cancels: the request behind it fits.
@example(history=[("join", 3, 0), ("join", 2, 0), ("join", 1, 0), ("cancel", 1)],
         mode={"capacity": 4, "allow_skip": False, "offer_seconds": None, "max_open_offers": None,
               "batch_size": None})
# Offers capped at two, one declined and the rest lapsing.
@example(history=[("join", 1, 0)] * 4 + [("decline", 0), ("expire",), ("accept", 3)],
         mode={"capacity": 8, "allow_skip": False, "offer_seconds": 60, "max_open_offers": 2,
               "batch_size": None})
# Accepting frees an offer slot under max_open_offers: the next gets an offer.
@example(history=[("join", 1, 0), ("join", 1, 0), ("capacity", 3), ("join", 1, 0), ("accept", 0)],
         mode={"capacity": 1, "allow_skip": False, "offer_seconds": 60, "max_open_offers": 2,
               "batch_size": None})
def test_admissions_follow_the_rule_on_any_history(location, history, mode):
    n = next(names)
    queue = make_queue(location, f"Resource {n}", "R", slug=f"resource-{n}", kind=Queue.Kind.CAPACITY, **mode)
    model = Model(mode)
    tickets: list[Ticket] = []
    clock = timezone.now()
    for step in history:
        action, *args = step
        picked = model.requests[args[0] % len(tickets)] if tickets and action in (
            "cancel", "accept", "decline") else None
        ticket = tickets[args[0] % len(tickets)] if picked else None
        if action == "join":
            party, priority = args
            if party > model.mode["capacity"]:
                with pytest.raises(InvalidInput):
                    services.do_join(queue, party_size=party, priority=priority)
                continue
            tickets.append(services.do_join(queue, party_size=party, priority=priority))
            model.requests.append({"seq": len(model.requests), "party": party, "priority": priority,
                                   "status": S.WAITING})
            model.admit()
        elif action == "cancel" and picked and picked["status"] in (S.WAITING, *HOLDING):
            services.do_cancel(ticket)
            picked["status"] = S.CANCELLED
            model.admit()
        elif action == "accept" and picked and picked["status"] == S.OFFERED:
            services.do_accept_offer(ticket)
            picked["status"] = S.CONFIRMED
            model.admit()
        elif action == "decline" and picked and picked["status"] == S.OFFERED:
            services.do_decline_offer(ticket)
            picked["status"] = S.DECLINED
            model.admit()
        elif action == "expire":
            # Past every offer made so far; offers made now run from this clock.
            clock += timedelta(days=1)
            services.do_expire_offers(now=clock)
            lapsed = [r for r in model.requests if r["status"] == S.OFFERED]
            for r in lapsed:
                r["status"] = S.EXPIRED
            if lapsed:
                model.admit()
        elif action == "capacity":
            new = args[0]
            if new < model.taken():
                with pytest.raises(InvalidInput, match="cannot go below"):
                    services.do_set_capacity(queue, capacity=new)
            elif new != model.mode["capacity"]:
                services.do_set_capacity(queue, capacity=new)
                grew = new > model.mode["capacity"]
                model.mode["capacity"] = new
                if grew:
                    model.admit()
        elif action == "confirm":
            services.do_confirm_waitlist(queue)
            model.admit(cycle=True)
        got = list(Ticket.objects.filter(queue=queue).order_by("pk").values_list("status", flat=True))
        assert got == [r["status"] for r in model.requests], step
    queue.refresh_from_db()
    assert queue.seats_taken == model.taken() <= queue.capacity
    assert validate_queue_integrity(queue) == []
