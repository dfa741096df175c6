"""`SmtpTransport` against a real SMTP server on a socket (the aiosmtpd sink: STARTTLS with
its own certificate, AUTH required): what arrives, that TLS and the login are really used, and
which failures say a retry can help. Reasons must name what to fix and never the password."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator, Sequence
from email.message import EmailMessage
from typing import Any

import pytest

from notify.email import build_message, compose
from notify.email_transport import SmtpTransport
from notify.outbox import DeliveryError
from tests.fakes.smtp_sink import SmtpSink, Stage
from tests.samples import PERMALINK
from tests.unit.test_email_compose import (
    HOSTILE,
    make_analysis,
    make_incident,
    make_timeline,
)

pytestmark = pytest.mark.integration

SENDER = "Incident Bot <bot@example.com>"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def transport(sink: SmtpSink, **overrides: Any) -> SmtpTransport:
    options: dict[str, Any] = {
        "host": sink.host,
        "port": sink.port,
        "user": sink.user,
        "password": sink.password,
        "ssl_context": sink.ssl_context(),
        "timeout": 5,
    }
    return SmtpTransport(**{**options, **overrides})


def message(to: Sequence[str] = ("ann@example.com",), title: str = HOSTILE) -> EmailMessage:
    content = compose(
        make_incident(title=title), make_analysis(), make_timeline(), PERMALINK, "FYI", "ann"
    )
    return build_message(content, SENDER, list(to))


def failure(smtp: SmtpTransport, to: Sequence[str] = ("ann@example.com",)) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        smtp.send(message(to))
    return caught.value


async def test_a_message_arrives_with_both_parts_over_starttls_and_the_login() -> None:
    async with SmtpSink() as sink:
        sent = message(
            ["ann@example.com", "bo@example.com"], title=f"Disk full on café-db {HOSTILE}"
        )
        message_id = await asyncio.to_thread(transport(sink).send, sent)

    [received] = sink.messages
    assert received.tls and received.user == "bot"
    assert received.sender == "bot@example.com"
    assert received.recipients == ["ann@example.com", "bo@example.com"]
    assert message_id.startswith("<") and received.message["Message-ID"] == message_id
    assert received.message.get_content_type() == "multipart/alternative"
    parts = list(received.message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    text, markup = (part.get_content() for part in parts)
    assert "Disk full on café-db" in text and HOSTILE in text
    assert "The orders database hit max_connections" in text and PERMALINK in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markup and "<script>" not in markup
    assert markup.count("<a ") == 1 and f'<a href="{PERMALINK}">' in markup
    assert received.message["Subject"] == f"[CRITICAL] INC-7K2M9: Disk full on café-db {HOSTILE}"


def test_check_proves_the_connection_tls_and_login(sink: SmtpSink) -> None:
    assert transport(sink).check() == f"SMTP 127.0.0.1:{sink.port} (STARTTLS, logged in as bot)"
    with pytest.raises(DeliveryError) as refused:
        transport(sink, password="wrong-password").check()
    assert not refused.value.retryable
    assert "refused the login for bot" in refused.value.reason and "535" in refused.value.reason
    assert sink.messages == []


def test_a_wrong_password_is_final_and_never_shown(sink: SmtpSink) -> None:
    error = failure(transport(sink, password="hunter2-wrong"))
    assert not error.retryable
    assert error.reason.startswith(f"SMTP 127.0.0.1:{sink.port} refused the login for bot (535")
    assert "hunter2" not in error.reason and sink.password not in error.reason
    assert sink.messages == []


def test_sending_without_a_login_to_a_server_that_wants_one_is_final(sink: SmtpSink) -> None:
    error = failure(transport(sink, user=None, password=None))
    assert not error.retryable
    assert "refused the sender bot@example.com (530" in error.reason
    assert "Authentication required" in error.reason


def test_a_refused_recipient_is_final_and_named(sink: SmtpSink) -> None:
    sink.refuse_recipient("gone@example.com")
    error = failure(transport(sink), ["gone@example.com"])
    assert not error.retryable
    assert "refused gone@example.com (550 5.1.1" in error.reason and "User unknown" in error.reason
    assert sink.messages == []


def test_a_partly_refused_email_is_final_because_the_others_have_it(sink: SmtpSink) -> None:
    sink.refuse_recipient("gone@example.com")
    error = failure(transport(sink), ["ann@example.com", "gone@example.com"])
    assert not error.retryable
    assert (
        "gone@example.com (550" in error.reason and "other recipients got the email" in error.reason
    )
    assert [received.recipients for received in sink.messages] == [["ann@example.com"]]


@pytest.mark.parametrize(("stage", "code"), [("RCPT", 451), ("MAIL", 421), ("DATA", 452)])
def test_a_temporary_reply_is_retryable_and_the_retry_delivers(
    sink: SmtpSink, stage: Stage, code: int
) -> None:
    smtp = transport(sink)
    sink.fail_next(code, at=stage)
    error = failure(smtp)
    assert error.retryable and str(code) in error.reason, error.reason
    assert sink.messages == []

    smtp.send(message())
    assert len(sink.messages) == 1


def test_a_closed_port_is_retryable() -> None:
    # Bound but not listening: the port is ours, and every connection to it is refused.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        error = failure(SmtpTransport("127.0.0.1", port, timeout=2))
    assert error.retryable
    assert error.reason == f"SMTP 127.0.0.1:{port} is unreachable (Connection refused)"


def test_a_server_that_never_greets_times_out_retryably() -> None:
    # The kernel completes the handshake from the backlog; nobody ever says 220.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        started = time.monotonic()
        error = failure(SmtpTransport("127.0.0.1", port, timeout=0.5))
        assert time.monotonic() - started < 3
    assert error.retryable
    assert error.reason == f"SMTP 127.0.0.1:{port} did not answer within 0.5 s"


def test_an_untrusted_certificate_is_final(sink: SmtpSink) -> None:
    # The default context trusts the system's CAs, and this sink's certificate is its own.
    error = failure(transport(sink, ssl_context=None))
    assert not error.retryable
    assert error.reason.startswith(f"the certificate of SMTP 127.0.0.1:{sink.port} is not trusted")
    assert "self-signed certificate" in error.reason
    assert sink.messages == []


def test_a_server_without_starttls_is_final_unless_plain_smtp_was_chosen() -> None:
    with SmtpSink(starttls=False) as plain:
        error = failure(SmtpTransport(plain.host, plain.port, timeout=5))
        plain_smtp = SmtpTransport(plain.host, plain.port, starttls=False, timeout=5)
        plain_smtp.send(message())
        checked = plain_smtp.check()
    assert not error.retryable and "does not offer STARTTLS" in error.reason
    [received] = plain.messages
    assert not received.tls and received.user is None
    assert checked == f"SMTP 127.0.0.1:{plain.port} (no TLS, no login)"


def test_a_login_without_starttls_is_refused_before_any_connection() -> None:
    with pytest.raises(ValueError, match="needs STARTTLS"):
        SmtpTransport("smtp.example.com", 587, "bot", "s3cret", starttls=False)


def test_the_sink_stops_promptly_with_a_client_still_connected(sink: SmtpSink) -> None:
    with socket.create_connection((sink.host, sink.port), timeout=5) as client:
        assert client.recv(1024).startswith(b"220 ")
        started = time.monotonic()
        sink.stop()
        assert time.monotonic() - started < 3
        assert client.recv(1024) == b""
