"""The publish path: staff actions never wait for the channel layer."""

from __future__ import annotations

import socket
import time

import pytest
from channels.layers import InMemoryChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer

from queueapp.live import publisher
from queueapp.live.publisher import Publisher
from queueapp.models import Ticket, TicketStatus
from tests.api_support import fast_password_hashing, kiosk_key  # noqa: F401 (fixtures)
from queueapp.services import do_call_next, do_join


def wait_until(predicate, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def silent_redis():
    """A loopback port that accepts connections and never answers: a hung Redis."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    server.close()


@pytest.fixture
def closed_port():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now: connections are refused
    return f"redis://127.0.0.1:{port}/0"


def redis_layer(url: str):
    return RedisPubSubChannelLayer(hosts=[{"address": url, "socket_timeout": None}])


@pytest.fixture
def swap():
    """Install a publisher for the test, then put the real one back."""
    installed = []

    def install(pub: Publisher) -> Publisher:
        installed.append(publisher.use(pub))
        return pub

    yield install
    for previous in installed[:1]:
        publisher.use(previous).close()


@pytest.mark.django_db(transaction=True)
def test_call_next_commits_while_redis_hangs_and_the_message_waits(queue, counter, silent_redis, swap):
    pub = swap(Publisher(layer_factory=lambda: redis_layer(silent_redis), in_memory=False, send_timeout=0.5))
    do_join(queue)
    called = do_call_next(counter=counter)
    # The request returned and committed while the send was still outstanding.
    assert Ticket.objects.get(pk=called.pk).status == TicketStatus.CALLED
    assert pub.health()["pending"] >= 1
    assert wait_until(lambda: pub.health()["last_error"] is not None)
    health = pub.health()
    assert health["pending"] == 2 and health["sent"] == 0 and health["oldest_pending_seconds"] > 0
    assert "TimeoutError" in health["last_error"]


@pytest.mark.django_db(transaction=True)
def test_refused_redis_is_retried_and_delivery_resumes_when_it_is_back(queue, counter, closed_port, swap):
    pub = swap(Publisher(layer_factory=lambda: redis_layer(closed_port), in_memory=False))
    do_join(queue)
    do_call_next(counter=counter)
    assert Ticket.objects.filter(status=TicketStatus.CALLED).count() == 1
    assert wait_until(lambda: pub.health()["last_error"] is not None)
    assert "Connect" in pub.health()["last_error"] or "refused" in pub.health()["last_error"]
    # "Redis is back": the next retry uses a layer that works; nothing was lost.
    for loop in list(pub._layers):
        pub._layers[loop] = InMemoryChannelLayer()
    assert wait_until(lambda: pub.health()["pending"] == 0)
    health = pub.health()
    assert health["sent"] == 2 and health["failed"] == 0 and health["last_error"] is None


def test_the_buffer_is_bounded_and_counts_what_it_dropped(closed_port, swap):
    pub = swap(Publisher(layer_factory=lambda: redis_layer(closed_port), in_memory=False, buffer_limit=3))
    for version in range(1, 6):
        pub.publish({"queue": 1, "version": version})
    health = pub.health()
    assert health["pending"] == 3 and health["failed"] == 2


def test_in_memory_layer_without_screens_in_this_process_drops_at_once(swap):
    pub = swap(Publisher(in_memory=True))
    pub.publish({"queue": 1, "version": 1})
    assert pub.health() == {"pending": 0, "oldest_pending_seconds": 0.0, "last_error": None,
                            "sent": 1, "failed": 0}


@pytest.mark.django_db
def test_each_event_is_handed_to_the_publisher_on_commit(queue, counter, published,
                                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        ticket = do_join(queue)
    with django_capture_on_commit_callbacks(execute=True):
        do_call_next(counter=counter)
    assert [(m["kind"], m["version"]) for m in published] == [("joined", 1), ("called", 2)]
    assert published[1]["left"] == [0, ticket.seq]


def test_health_has_the_documented_keys():
    assert set(publisher.health()) == {"pending", "oldest_pending_seconds", "last_error", "sent", "failed"}


@pytest.mark.skipif(not __import__("os").environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_real_redis_layer_delivers_from_the_publisher_thread(swap):
    """The default publisher (own thread, own layer instance) reaches a group on Redis."""
    import asyncio

    from channels.layers import channel_layers

    pub = swap(Publisher())
    receiver = channel_layers.make_backend("default")

    async def scenario():
        channel = await receiver.new_channel()
        await receiver.group_add("queue.424242", channel)
        await asyncio.sleep(0.2)  # let SUBSCRIBE land before publishing
        pub.publish({"queue": 424242, "version": 7})
        message = await asyncio.wait_for(receiver.receive(channel), 5)
        await receiver.group_discard("queue.424242", channel)
        return message

    message = asyncio.run(scenario())
    assert message["type"] == "queue.event" and message["version"] == 7


@pytest.mark.parametrize("redis", ["real", "silent"])
def test_a_closed_publisher_closes_its_senders_loop_on_its_own_thread(redis, silent_redis, swap):
    """The sender thread's loop is closed by that thread once stopped, also when
    Redis hangs: channels_redis flushes its layer in a wrapped `loop.close`, and
    a loop left for the garbage collector was closed on another thread, inside
    a running loop there ("Cannot run the event loop while another loop is
    running", printed at a later test's teardown)."""
    if redis == "real" and not __import__("os").environ.get("REDIS_URL"):
        pytest.skip("needs REDIS_URL")
    pub = swap(Publisher() if redis == "real" else
               Publisher(layer_factory=lambda: redis_layer(silent_redis), in_memory=False, send_timeout=0.5))
    pub.publish({"queue": 424243, "version": 1})
    assert wait_until(lambda: pub.health()["sent"] == 1 or pub.health()["last_error"] is not None)
    loop = pub._thread_loop
    pub.close()
    assert wait_until(loop.is_closed)


@pytest.mark.django_db(transaction=True)
def test_a_join_served_by_the_asgi_app_is_sent_from_the_servers_loop(queue, kiosk_key, swap):
    """Under the server (here the ASGI app on a test's loop) the publisher sends
    from the loop that serves the request: no thread of its own is started."""
    import asyncio
    import json
    import threading

    from config.asgi import application
    from tests.asgi_client import asgi_request

    layer = InMemoryChannelLayer()
    swap(Publisher(layer_factory=lambda: layer, in_memory=False))
    threads_before = sum(t.name == "live-publisher" for t in threading.enumerate())

    async def join_and_listen():
        channel = await layer.new_channel()
        await layer.group_add(publisher.group_for_queue(queue.pk), channel)
        body = json.dumps({}).encode()
        status, _ = await asgi_request(application, "POST", f"/api/queues/{queue.pk}/tickets", body=body, headers=[
            (b"content-type", b"application/json"), (b"authorization", f"Bearer {kiosk_key}".encode())])
        return status, await asyncio.wait_for(layer.receive(channel), 10)

    status, message = asyncio.run(join_and_listen())

    assert status == 201
    assert message["kind"] == "joined" and message["queue"] == queue.pk and message["version"] == 1
    assert sum(t.name == "live-publisher" for t in threading.enumerate()) == threads_before


@pytest.mark.skipif(not __import__("os").environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_a_backlog_reaches_the_group_in_order_within_a_few_turns_of_a_busy_loop(swap):
    """Under the waiting room's crowd every turn of a server's loop is slow.
    300 events committed meanwhile reach their group in order within a few
    turns (`publisher._send_in_order`: one round trip to Redis per batch):
    one `group_send` at a time took at least a turn each, 300 turns, and the
    backlog grew faster than it went out."""
    import asyncio

    from channels.layers import channel_layers

    pub = swap(Publisher())
    receiver = channel_layers.make_backend("default")
    turns = 0

    def busy_turn() -> None:  # every turn of the loop costs 5 ms, as under a crowd
        nonlocal turns
        turns += 1
        time.sleep(0.005)
        asyncio.get_running_loop().call_soon(busy_turn)

    async def scenario() -> tuple[list[int], int]:
        channel = await receiver.new_channel()
        await receiver.group_add("queue.424243", channel)
        await asyncio.sleep(0.2)  # let SUBSCRIBE land before publishing
        pub.set_home_loop(asyncio.get_running_loop())
        asyncio.get_running_loop().call_soon(busy_turn)
        start = turns
        for version in range(1, 301):
            pub.publish({"queue": 424243, "version": version})
        got = [(await asyncio.wait_for(receiver.receive(channel), 10))["version"] for _ in range(300)]
        used = turns - start
        await receiver.group_discard("queue.424243", channel)
        return got, used

    got, used = asyncio.run(scenario())
    assert got == list(range(1, 301))
    assert used < 60, f"{used} turns of the loop to send 300 events"
