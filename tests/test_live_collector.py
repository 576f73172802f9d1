"""The live hub's garbage collection policy (queueapp/live/collector.py): what a
tick freezes stays out of the automatic passes, a due full pass reclaims the
frozen garbage, no full pass runs while a fan-out or an HTTP request does, and
under daphne the hub does freeze (over real sockets, tests/lean_asgi.py)."""

import asyncio
import gc
import time
import weakref

import pytest
from websockets.asyncio.client import connect

from queueapp.live import collector, hub, precedence
from queueapp.services import do_join
from tests.test_live_lean import POSITION_MARK, follow_a_call, held, on_daphne


class Node:
    def __init__(self):
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture
def fresh_collector(monkeypatch):
    monkeypatch.setattr(collector, "_last_reclaim", None)
    monkeypatch.setattr(collector, "_frozen_after_reclaim", 0)
    monkeypatch.setattr(collector, "_counted_at", 0.0)
    monkeypatch.setattr(collector, "_fanning", 0)
    monkeypatch.setattr(precedence, "_running", 0)  # (process-wide: no request of another test counts here)
    monkeypatch.setattr(collector, "_last_fan_out", 0.0)
    monkeypatch.setattr(collector, "_last_connect", 0.0)
    monkeypatch.setattr(collector, "_due_since", None)
    monkeypatch.setattr(collector, "reclaims", 0)
    monkeypatch.setattr(collector, "_loop", None)
    monkeypatch.setattr(collector, "_freeze_asked", False)
    yield
    if collector._after_collection in gc.callbacks:
        gc.callbacks.remove(collector._after_collection)
    gc.unfreeze()
    gc.collect()


def test_frozen_garbage_waits_for_the_full_pass_that_then_frees_it(fresh_collector):
    now = time.monotonic()
    collector.tick(now)  # the first tick: a full pass, then everything alive frozen
    assert collector.reclaims == 1
    node = Node()
    gone = weakref.ref(node)
    collector.tick(now + 1)  # not due: only a freeze, which takes the node in
    assert collector.reclaims == 1
    del node
    gc.collect()  # an automatic or explicit pass does not walk the frozen objects
    assert gone() is not None
    collector.tick(now + collector.RECLAIM_EVERY + 1)  # due: unfreeze, collect, freeze
    assert collector.reclaims == 2
    assert gone() is None


def test_frozen_growth_makes_a_full_pass_due_before_its_time(fresh_collector):
    now = time.monotonic()
    collector.tick(now)
    grown = [Node() for _ in range(collector.RECLAIM_AT_LEAST + gc.get_freeze_count())]
    collector.tick(now + 1)  # frozen objects more than doubled, not counted yet: a freeze
    assert collector.reclaims == 1
    collector.tick(now + collector.COUNT_EVERY + 1)  # counted: a full pass
    assert collector.reclaims == 2
    del grown


def test_a_due_full_pass_waits_for_quiet_no_fan_out_or_request(fresh_collector):
    collector.fan_out_started()
    now = time.monotonic()
    collector.tick(now)
    assert collector.reclaims == 0  # a fan-out runs
    collector.fan_out_finished()  # ... and has just ended
    collector.tick(now + 1)
    assert collector.reclaims == 0  # not quiet for long enough: a call may follow
    precedence.request_started()
    try:
        collector.tick(now + collector.QUIET + 1)
        assert collector.reclaims == 0  # quiet, but a request runs
    finally:
        precedence.request_finished()
    collector.tick(now + collector.QUIET + 2)
    assert collector.reclaims == 1


def test_what_a_process_holds_at_start_is_frozen_without_a_pass_and_none_is_due(fresh_collector, monkeypatch):
    monkeypatch.setattr(collector, "enabled", lambda: True)  # (under daphne, with its reactor running)

    async def start():
        collector.freeze_at_start()

    asyncio.run(start())
    assert collector.reclaims == 0 and gc.get_freeze_count() > 0
    collector.tick(time.monotonic() + collector.QUIET + 1)
    assert collector.reclaims == 0  # not due: a freeze
    collector.tick(time.monotonic() + collector.RECLAIM_EVERY + 1)
    assert collector.reclaims == 1  # due as after any full pass


def test_amid_connects_a_young_pass_that_frees_nothing_is_followed_by_a_freeze(fresh_collector, monkeypatch):
    """While screens connect, a burst's objects all live on: frozen after the first young pass that
    found them, not walked again by the next passes (the middle pass walked ~500,000 of them, 319 ms, in a cold connect)."""
    monkeypatch.setattr(collector, "enabled", lambda: True)

    async def scenario():
        collector.freeze_at_start()
        gc.collect(0)  # (nothing young yet)
        await asyncio.sleep(0)
        frozen = gc.get_freeze_count()
        garbage = Node()
        del garbage
        gc.collect(0)  # frees the cycle: no freeze asked
        assert not collector._freeze_asked
        alive = [[i] for i in range(1000)]
        gc.collect(0)  # frees nothing, but no screen connects: no freeze asked
        assert not collector._freeze_asked
        collector.screen_connected()
        precedence.request_started()
        try:
            gc.collect(0)  # frees nothing, screens connect, but a request runs: no freeze asked
            assert not collector._freeze_asked
        finally:
            precedence.request_finished()
        gc.collect(0)  # walked 1,000 lists, freed nothing: a freeze on the loop
        assert collector._freeze_asked and gc.get_freeze_count() <= frozen  # (not inside the collection)
        await asyncio.sleep(0)
        assert not collector._freeze_asked and gc.get_freeze_count() >= frozen + len(alive)

    asyncio.run(scenario())


def test_an_overdue_full_pass_runs_between_fan_outs_that_never_leave_quiet_and_despite_requests(fresh_collector):
    now = time.monotonic()
    collector.tick(now)  # the first full pass
    due = now + collector.RECLAIM_EVERY
    collector._last_fan_out = due - 1  # (a fan-out every second from here on)
    collector.tick(due)
    assert collector.reclaims == 1
    collector._last_fan_out = due + collector.OVERDUE - 1
    precedence.request_started()  # (one that never ends, as a cancelled one might)
    try:
        collector.tick(due + collector.OVERDUE)
    finally:
        precedence.request_finished()
    assert collector.reclaims == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_under_daphne_the_hub_freezes_what_lives_and_screens_still_follow(queue, counter):
    """Under daphne what the process holds at its start is frozen (no full
    pass due in the first connect storm), the hub's maintenance tick freezes the process's live objects (the open
    screens' among them), and with them frozen the screens still show, and
    follow, the right places."""
    tokens = [do_join(queue).token for _ in range(4)]

    async def scenario(server):
        screens = [await connect(f"{server.ws_url}/ws/ticket/{t}/", origin=server.url, open_timeout=10,
                                 ping_interval=None) for t in tokens[1:]]
        for place, ws in enumerate(screens, start=2):
            assert f"{POSITION_MARK}{place}<" in await ws.recv()
        now = await asyncio.to_thread(held, server)
        # Frozen at the start, before any screen (a tick is MAINTAIN_EVERY s away), without a full pass.
        assert now["frozen"] > 0 and now["full_passes"] == 0
        await asyncio.sleep(hub.MAINTAIN_EVERY * 2 + 0.5)  # two ticks: none due, each a freeze
        now = await asyncio.to_thread(held, server)
        assert now["frozen"] > 0 and now["full_passes"] == 0
        await follow_a_call(screens, counter)

    on_daphne(scenario)
