"""queueapp/live/server_tuning.py: the bound on connections taken in per loop turn.

A real listening socket (Twisted's own `tcp.Port`) with real client
connections waiting in its listen queue; the reactor is Twisted's in-memory
one, so nothing runs but the one `doRead` the test calls (no timing)."""

import socket

import pytest
from twisted.internet import protocol, tcp
from twisted.internet.testing import MemoryReactor

from queueapp.live import server_tuning


class Counting(protocol.Factory):
    def __init__(self):
        self.built = 0

    def buildProtocol(self, addr):
        self.built += 1
        return protocol.Protocol()


@pytest.fixture
def port_with_waiting_clients():
    factory = Counting()
    port = tcp.Port(0, factory, backlog=128, interface="127.0.0.1", reactor=MemoryReactor())
    port.startListening()
    clients = [socket.create_connection(("127.0.0.1", port.getHost().port)) for _ in range(60)]
    yield port, factory
    for c in clients:
        c.close()
    port.socket.close()


@pytest.fixture
def restore_do_read():
    original = tcp.Port.doRead
    yield
    tcp.Port.doRead = original


def test_one_turn_takes_in_at_most_the_bound(port_with_waiting_clients, restore_do_read):
    port, factory = port_with_waiting_clients
    server_tuning.bounded_accepts(20)
    server_tuning.bounded_accepts(20)  # applying it twice does not stack
    port.doRead()
    assert factory.built == 20
    port.doRead()  # the next turn takes the next ones
    assert factory.built == 40


def test_without_a_bound_one_turn_takes_in_the_whole_queue(port_with_waiting_clients, restore_do_read):
    port, factory = port_with_waiting_clients
    server_tuning.bounded_accepts(0)
    port.doRead()
    assert factory.built == 60
