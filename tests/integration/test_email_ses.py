"""`SesTransport` through boto3 over real sockets: against moto's server for what SES keeps
(the raw MIME message, the quota) and what it refuses (an unverified sender), and against a
small local endpoint answering SES's error responses for the refusals moto cannot produce
(throttling, an outage, a denied permission)."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.request
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import boto3
import pytest
from aiohttp import web
from botocore.config import Config

from notify.email import build_message, compose
from notify.email_transport import SesTransport
from notify.outbox import DeliveryError
from tests.fakes.local_server import LocalServer
from tests.fakes.moto_server import aws, moto_server  # noqa: F401
from tests.samples import PERMALINK
from tests.unit.test_email_compose import (
    HOSTILE,
    make_analysis,
    make_incident,
    make_timeline,
)

pytestmark = pytest.mark.integration

SENDER = "Incident Bot <bot@example.com>"


def ses_client(endpoint: str) -> Any:
    """A client that tries once: the retry decision under test is the transport's."""
    return boto3.client(
        "ses",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=5),
    )


def message(title: str = HOSTILE) -> EmailMessage:
    content = compose(
        make_incident(title=title), make_analysis(), make_timeline(), PERMALINK, "FYI", "ann"
    )
    return build_message(content, SENDER, ["ann@example.com"])


def raw_messages(endpoint: str) -> list[dict[str, Any]]:
    """What moto's SES holds as sent by SendRawEmail (`ses` → `RawMessage` in its state)."""
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=5) as response:
        state = json.load(response)
    return list(state["ses"]["RawMessage"])


def test_a_verified_sender_sends_the_raw_message_with_both_parts(aws: str) -> None:  # noqa: F811
    client = ses_client(aws)
    client.verify_email_identity(EmailAddress="bot@example.com")

    message_id = SesTransport(client).send(message("Disk full on café-db"))

    [kept] = raw_messages(aws)
    assert kept["id"] == message_id and kept["source"] == "bot@example.com"
    # moto adds the To header's addresses to the Destinations given: the same one twice.
    assert set(kept["destinations"]) == {"ann@example.com"}
    raw = BytesParser(EmailMessage, policy=policy.default).parsebytes(kept["raw_data"].encode())
    assert raw["Subject"] == "[CRITICAL] INC-7K2M9: Disk full on café-db"
    assert raw["From"] == SENDER
    parts = list(raw.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    text, markup = (part.get_content() for part in parts)
    assert "The orders database hit max_connections" in text and PERMALINK in text
    assert "The orders database hit max_connections" in markup
    assert markup.count("<a ") == 1


def test_an_unverified_sender_is_final_and_named(aws: str) -> None:  # noqa: F811
    with pytest.raises(DeliveryError) as refused:
        SesTransport(ses_client(aws)).send(message())
    assert not refused.value.retryable
    assert refused.value.reason.startswith("SES refused the email: ")
    assert "bot@example.com" in refused.value.reason
    assert raw_messages(aws) == []


def test_check_reads_the_region_and_the_quota(aws: str) -> None:  # noqa: F811
    assert SesTransport(ses_client(aws)).check() == (
        "SES us-east-1: 0 of 200 sent in the last 24 h, at most 1/s"
    )


def test_an_unreachable_endpoint_is_retryable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
        with pytest.raises(DeliveryError) as down:
            SesTransport(ses_client(endpoint)).send(message())
    assert down.value.retryable
    assert down.value.reason.startswith("SES is unreachable (Could not connect to the endpoint")


class SesErrors(LocalServer):
    """Answers every SES query-API request with one error response, as SES writes them,
    and remembers which actions were asked for."""

    def __init__(self, status: int, code: str, text: str, *, body: str | None = None) -> None:
        super().__init__()
        self.status = status
        self.body = body or (
            '<ErrorResponse xmlns="http://ses.amazonaws.com/doc/2010-12-01/">'
            f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{escape(text)}</Message>"
            "</Error><RequestId>5e2e9e47-5a5b-4d8b-a1b1-3f4a2c8d9e10</RequestId></ErrorResponse>"
        )
        self.actions: list[str] = []

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/", self.answer)
        return app

    async def answer(self, request: web.Request) -> web.Response:
        form = parse_qs(await request.text())
        self.actions.append(form["Action"][0])
        return web.Response(status=self.status, text=self.body, content_type="text/xml")


DENIED = "User: arn:aws:iam::123456789012:user/bot is not authorized to perform: ses:SendRawEmail"


@pytest.mark.parametrize(
    ("status", "code", "text", "retryable", "reason"),
    [
        (400, "Throttling", "Maximum sending rate exceeded.", True,
         "SES is throttling requests (Maximum sending rate exceeded.)"),
        (503, "ServiceUnavailable", "Service unavailable.", True,
         "SES is unavailable (503 ServiceUnavailable)"),
        (502, "", "", True, "SES is unavailable (502)"),
        (403, "AccessDenied", DENIED, False,
         f"AWS denied ses:SendRawEmail to these credentials: {DENIED}"),
        (403, "InvalidClientTokenId", "The security token included in the request is invalid.",
         False, "AWS refused the credentials (InvalidClientTokenId): The security token "
         "included in the request is invalid."),
        (400, "MailFromDomainNotVerifiedException", "MAIL FROM domain bounce.example.com is "
         "not verified.", False, "SES has not verified the sender's MAIL FROM domain: MAIL "
         "FROM domain bounce.example.com is not verified."),
        (400, "ConfigurationSetDoesNotExist", "Configuration set <ops> does not exist.", False,
         "SES has no such configuration set: Configuration set <ops> does not exist."),
    ],
)  # fmt: skip
async def test_ses_refusals_say_whether_to_retry(
    status: int, code: str, text: str, retryable: bool, reason: str
) -> None:
    async with SesErrors(status, code, text) as fake:
        ses = SesTransport(ses_client(fake.url))
        with pytest.raises(DeliveryError) as caught:
            await asyncio.to_thread(ses.send, message())
    assert fake.actions == ["SendRawEmail"]
    assert (caught.value.retryable, caught.value.reason) == (retryable, reason)


async def test_a_denied_check_names_the_permission_it_needs() -> None:
    denied = (
        "User: arn:aws:iam::123456789012:user/bot is not authorized to perform: ses:GetSendQuota"
    )
    async with SesErrors(403, "AccessDenied", denied) as fake:
        with pytest.raises(DeliveryError) as caught:
            await asyncio.to_thread(SesTransport(ses_client(fake.url)).check)
    assert fake.actions == ["GetSendQuota"] and not caught.value.retryable
    assert caught.value.reason.startswith("AWS denied ses:GetSendQuota to these credentials")


async def test_a_page_that_is_not_an_ses_response_is_retryable() -> None:
    """An error page such as a WSGI server's: botocore cannot parse it, and says so with an
    exception that is not a BotoCoreError."""
    page = "<!doctype html>\n<title>500 Internal Server Error</title><h1>Internal Server Error</h1>"
    async with SesErrors(500, "", "", body=page) as fake:
        with pytest.raises(DeliveryError) as caught:
            await asyncio.to_thread(SesTransport(ses_client(fake.url)).send, message())
    assert caught.value.retryable and "not an SES response" in caught.value.reason
