"""Real receivers for the alerts tests: an HTTP server that records what it gets
and answers as told, and an SMTP server (aiosmtpd). Both on 127.0.0.1."""

from __future__ import annotations

import ipaddress
import ssl
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.browser_support import free_port


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) files for https://127.0.0.1, valid for a day: what a
    local stand-in for a browser vendor's push service serves (push endpoints
    are https only); clients trust it through REQUESTS_CA_BUNDLE."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "push-cert.pem", directory / "push-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class Receiver:
    """Records every POST (time, path, headers, body). `statuses` are answered in
    turn, then `default`; `hang` seconds of delay before answering. With `tls`
    (a (certificate, key) pair) it answers on https."""

    def __init__(self, statuses=(), default=200, hang: float = 0.0, port: int | None = None,
                 tls: tuple[Path, Path] | None = None):
        self.statuses = list(statuses)
        self.default = default
        self.hang = hang
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes: without this, Nagle's algorithm
            # and the client's delayed ACK add 40 ms to every keep-alive answer.
            disable_nagle_algorithm = True

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with owner.lock:
                    owner.requests.append({"at": time.monotonic(), "path": self.path,
                                           "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                    status = owner.statuses.pop(0) if owner.statuses else owner.default
                if owner.hang:
                    time.sleep(owner.hang)
                try:
                    self.send_response(status)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender timed out and hung up, as it should

            def log_message(self, *args):
                pass

        self.port = port or free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/hook"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class Inbox:
    """aiosmtpd handler: keeps every envelope."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"


class SmtpServer:
    def __init__(self):
        self.inbox = Inbox()
        self.port = free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()

    def mailers(self) -> dict:
        return {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                            "OPTIONS": {"host": "127.0.0.1", "port": self.port, "timeout": 5}}}


def take_ticket(queue):
    """Join `queue` and return the ticket."""
    from queueapp.services import do_join

    return do_join(queue)


def deliver_until(predicate, *, timeout: float = 15.0, limit: int | None = None) -> None:
    """Run delivery rounds (as the worker's loop does) until `predicate()` holds."""
    from queueapp.alerts.delivery import deliver_due

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("delivery did not finish in time")
        if not deliver_due(limit):
            time.sleep(0.02)
