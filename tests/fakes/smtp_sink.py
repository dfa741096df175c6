"""A local SMTP submission server for tests: aiosmtpd in a thread of its own, on 127.0.0.1 and
a port the OS picks, so it serves sync and async tests alike and parallel runs never collide.

It offers STARTTLS with a certificate made at start for 127.0.0.1 and localhost (trust it
through `ca_file` or `ssl_context()`), requires AUTH PLAIN or LOGIN before MAIL and offers it
only over TLS, as a provider's submission port does, and keeps every accepted message, parsed,
in `messages`, with the login it came under and whether TLS was on. Faults: `refuse_recipient`
answers 550 for an address, `fail_next` a temporary 4xx at MAIL, RCPT or DATA.
`SmtpSink(starttls=False)` stands for a server that offers neither STARTTLS nor AUTH.

    with SmtpSink() as sink: ...        # or: async with SmtpSink() as sink: ...
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import tempfile
import threading
from collections.abc import Awaitable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Stage = Literal["MAIL", "RCPT", "DATA"]


@dataclass(frozen=True)
class Received:
    """One accepted message: the envelope, the parsed message, and how it was submitted."""

    sender: str
    recipients: list[str]
    message: EmailMessage
    user: str | None
    tls: bool


class SmtpSink:
    def __init__(
        self, user: str = "bot", password: str = "s3cret", *, starttls: bool = True
    ) -> None:
        self.user = user
        self.password = password
        self.starttls = starttls
        self.host = "127.0.0.1"
        # Kept after `stop`, so that a test can show what a closed port does.
        self.port = 0
        self.messages: list[Received] = []
        self._refused: set[str] = set()
        self._faults: dict[Stage, list[int]] = {"MAIL": [], "RCPT": [], "DATA": []}
        # Faults are set from the test's thread and taken in the server's.
        self._lock = threading.Lock()
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._controller: _BoundController | None = None

    @property
    def ca_file(self) -> str:
        """The server's self-signed certificate, which is its own CA."""
        if self._dir is None or not self.starttls:
            raise RuntimeError("this SmtpSink has no certificate: not started, or no STARTTLS")
        return str(Path(self._dir.name) / "cert.pem")

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this sink, as a CA bundle in SSL_CERT_FILE would."""
        return ssl.create_default_context(cafile=self.ca_file)

    def refuse_recipient(self, address: str) -> None:
        """Answer RCPT for `address` with 550, as for a mailbox that does not exist."""
        with self._lock:
            self._refused.add(address.lower())

    def fail_next(self, code: int = 451, *, at: Stage = "RCPT", count: int = 1) -> None:
        """Answer the next `count` commands of `at` with `code`; 451 at RCPT is what a
        greylisting server says to a first attempt."""
        if not 400 <= code < 600:
            raise ValueError(f"{code} is not a failure reply")
        with self._lock:
            self._faults[at].extend([code] * count)

    def start(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="smtp-sink-")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((self.host, 0))
            self.port = int(sock.getsockname()[1])
            secured: dict[str, Any] = {}
            if self.starttls:
                key_file = Path(self._dir.name) / "key.pem"
                _write_certificate(Path(self.ca_file), key_file)
                server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                server_context.load_cert_chain(self.ca_file, key_file)
                secured = {
                    "tls_context": server_context,
                    "require_starttls": True,
                    "authenticator": self._authenticate,
                    "auth_required": True,
                    "auth_require_tls": True,
                }
            controller = _BoundController(
                _Handler(self),
                sock,
                # aiosmtpd would look up this host's FQDN for its greeting otherwise.
                server_hostname="localhost",
                ready_timeout=5.0,
                **secured,
            )
            controller.start()
        except BaseException:
            sock.close()
            self._dir.cleanup()
            raise
        self._controller = controller

    def stop(self) -> None:
        """Stop serving and delete the certificate; open client connections are cut."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        """Started in a worker thread: starting waits for the server's first greeting."""
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def _take_fault(self, stage: Stage) -> str | None:
        """The reply of the next fault set for `stage`, if any (the server's side)."""
        with self._lock:
            if not self._faults[stage]:
                return None
            code = self._faults[stage].pop(0)
        return f"{code} {code // 100}.3.0 Injected failure, try again later"

    def _is_refused(self, address: str) -> bool:
        with self._lock:
            return address.lower() in self._refused

    def _authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """PLAIN and LOGIN both hand over a `LoginPassword`; the login becomes the session's
        `auth_data`, which `Received.user` reports."""
        if isinstance(data, LoginPassword):
            login = data.login.decode(errors="replace")
            if login == self.user and data.password.decode(errors="replace") == self.password:
                return AuthResult(success=True, auth_data=login)
        # `handled=False` makes aiosmtpd answer 535 itself.
        return AuthResult(success=False, handled=False)


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        fault = self.sink._take_fault("MAIL")
        if fault:
            return fault
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        fault = self.sink._take_fault("RCPT")
        if fault:
            return fault
        if self.sink._is_refused(address):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        fault = self.sink._take_fault("DATA")
        if fault:
            return fault
        raw = envelope.original_content or b""
        self.sink.messages.append(
            Received(
                sender=str(envelope.mail_from),
                recipients=list(envelope.rcpt_tos),
                message=BytesParser(EmailMessage, policy=policy.default).parsebytes(raw),
                user=session.auth_data if isinstance(session.auth_data, str) else None,
                tls=session.ssl is not None,
            )
        )
        return "250 2.0.0 Message accepted"


class _BoundController(Controller):
    """aiosmtpd's Controller on a socket bound beforehand: it takes a port number only, and
    a port probed free and then bound by number can be taken by another test in between."""

    def __init__(self, handler: Any, sock: socket.socket, **kwargs: Any) -> None:
        self._sock = sock
        host, port = sock.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, **kwargs)

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


def _write_certificate(cert_file: Path, key_file: Path) -> None:
    """A self-signed certificate for 127.0.0.1 and localhost, with the extensions a strict
    verifier (Python 3.13's default context) wants of a trust anchor."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    public_key = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
