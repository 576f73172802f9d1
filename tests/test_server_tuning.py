"""queueapp/live/server_tuning.py: the bound on connections taken in per loop turn;
daphne's requests leave the body to the application.

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


@pytest.fixture
def restore_web_request():
    from daphne.http_protocol import WebRequest

    original = WebRequest.__init__
    yield
    WebRequest.__init__ = original


def test_daphne_hands_a_form_body_over_unparsed(restore_web_request):
    """Twisted would parse a form POST into `request.args` (and its Content-Type
    through the email parser) for nothing: daphne passes the raw body on."""
    from daphne.http_protocol import WebRequest
    from twisted.web.test.requesthelper import DummyChannel

    server_tuning.body_left_to_the_application()
    server_tuning.body_left_to_the_application()  # applying it twice does not stack
    channel = DummyChannel()
    channel.factory = type("Factory", (), {"server": type("Server", (), {
        "protocol_connected": lambda self, protocol: None})()})()
    request = WebRequest(channel)
    processed = []
    request.process = lambda: processed.append(True)
    body = b"username=alice&note=caf%C3%A9"
    request.requestHeaders.setRawHeaders(b"content-type", [b"application/x-www-form-urlencoded"])
    request.gotLength(len(body))
    request.handleContentChunk(body)
    request.requestReceived(b"POST", b"/login/", b"HTTP/1.1")

    assert processed == [True]
    assert request.args == {}  # not parsed by Twisted
    assert request.content.read() == body  # what daphne sends the application, from the start


@pytest.fixture
def restore_autobahn_log_helpers():
    from autobahn.twisted import websocket as twisted_websocket
    from autobahn.websocket import protocol as ws_protocol

    saved = [(m, name, getattr(m, name)) for m in (ws_protocol, twisted_websocket) for name in ("hltype", "hlval")]
    saved.append((ws_protocol, "pformat", ws_protocol.pformat))
    yield ws_protocol
    for module, name, value in saved:
        setattr(module, name, value)


def test_autobahn_formats_debug_arguments_only_when_a_line_is_written(restore_autobahn_log_helpers):
    """autobahn highlights type names and values for its debug lines on every
    connect and received chunk, debug logging on or not: nothing is formatted
    until a line is written, and then it reads as before."""
    ws_protocol = restore_autobahn_log_helpers
    calls = []

    def counting_hltype(obj):
        calls.append(obj)
        return f"<{obj}>"

    ws_protocol.hltype = counting_hltype
    server_tuning.lazy_autobahn_config_log()
    server_tuning.lazy_autobahn_config_log()  # applying it twice does not stack
    argument = ws_protocol.hltype("onConnect")
    assert calls == []
    assert f"{argument}: request" == "<onConnect>: request"
    assert calls == ["onConnect"]
