"""A local SMTP submission server on aiosmtpd: STARTTLS with a certificate made at start
(for 127.0.0.1 and localhost, trusted through `ca_file` or `ssl_context()`), AUTH PLAIN/LOGIN
only after TLS, and every accepted message kept, parsed, in `messages`.
`refuse_recipient` answers 550 for an address; `fail_next` answers a temporary 451."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import tempfile
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    user: str | None
    tls: bool


class SmtpSink:
    def __init__(self, user: str = "bot", password: str = "s3cret") -> None:
        self.user = user
        self.password = password
        self.messages: list[Received] = []
        self.refused: set[str] = set()
        self._temporary_failures = 0
        self._dir = tempfile.TemporaryDirectory(prefix="smtp-sink-")
        self.ca_file = str(Path(self._dir.name) / "cert.pem")
        self.host = "127.0.0.1"
        self.port = _free_port()
        self._controller: Controller | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this sink's certificate, as a CA bundle would."""
        return ssl.create_default_context(cafile=self.ca_file)

    def refuse_recipient(self, address: str) -> None:
        self.refused.add(address.lower())

    def fail_next(self, count: int = 1) -> None:
        self._temporary_failures += count

    def start(self) -> None:
        key_file = Path(self._dir.name) / "key.pem"
        _write_certificate(Path(self.ca_file), key_file)
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_tls.load_cert_chain(self.ca_file, key_file)
        self._controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            tls_context=server_tls,
            require_starttls=True,
            authenticator=self._authenticate,
            auth_require_tls=True,
            ready_timeout=5.0,
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        self._dir.cleanup()

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

    def _authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = data.login.decode(), data.password.decode()
        ok = login == self.user and password == self.password
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.sink._temporary_failures:
            self.sink._temporary_failures -= 1
            return "451 4.3.0 Try again later"
        if address.lower() in self.sink.refused:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        parsed = message_from_bytes(content, policy=policy.default)
        self.sink.messages.append(
            Received(
                sender=str(envelope.mail_from),
                recipients=list(envelope.rcpt_tos),
                message=parsed,
                user=cast(str | None, session.auth_data),
                tls=session.ssl is not None,
            )
        )
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _write_certificate(cert_file: Path, key_file: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
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
