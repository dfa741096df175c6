"""PagerDuty, Teams and email over real sockets: the Events v2 fake, the Workflows webhook
fake, an aiosmtpd sink with STARTTLS and login, and SES in moto's server. Each failure must
say whether a retry can help, in words a person can act on, without leaking a secret."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from email.message import EmailMessage

import boto3
import pytest

from incidents.models import IncidentStatus, Severity, TimelineEvent, TimelineKind
from notify.email import build_message, compose
from notify.email_transport import SesTransport, SmtpTransport
from notify.outbox import DeliveryError
from notify.pagerduty import PagerDutyEvents
from notify.teams import TeamsWebhook, adaptive_card, resolved_card
from tests.conftest import T0
from tests.fakes.moto_server import aws, moto_server  # noqa: F401
from tests.fakes.pagerduty_server import ROUTING_KEY, PagerDutyFake
from tests.fakes.smtp_sink import SmtpSink
from tests.fakes.teams_server import SIGNATURE, TeamsFake
from tests.integration.test_jira import ANALYSIS
from tests.samples import PERMALINK, make_incident

pytestmark = pytest.mark.integration

HOSTILE_TITLE = '<!channel> <script>alert(1)</script> <a href="http://evil.example">x</a>'


def _events(fake: PagerDutyFake, key: str = ROUTING_KEY) -> PagerDutyEvents:
    return PagerDutyEvents(key, fake.events_url, backoff=0, timeout=5)


async def test_pagerduty_trigger_acknowledge_resolve_share_the_incident_id() -> None:
    async with PagerDutyFake() as fake:
        events = _events(fake)
        incident = make_incident(severity=Severity.CRITICAL)
        assert await events.trigger(incident, ANALYSIS, PERMALINK) == incident.id
        await events.acknowledge(incident.id)
        await events.resolve(incident.id)
        await events.close()

    trigger, ack, resolve = fake.events
    assert [e["event_action"] for e in fake.events] == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in fake.events} == {incident.id}
    payload = trigger["payload"]
    assert payload["severity"] == "critical" and payload["source"] == "db-prod-1"
    assert payload["summary"] == "[CRITICAL] Database connection failed"
    assert payload["custom_details"]["root_cause"] == ANALYSIS.root_cause
    assert trigger["links"] == [{"href": PERMALINK, "text": "Incident in Slack"}]
    assert "payload" not in ack and "payload" not in resolve


async def test_pagerduty_blip_is_retried_within_the_call_and_an_outage_is_retryable() -> None:
    async with PagerDutyFake() as fake:
        events = _events(fake)
        fake.fail_next(500)
        await events.resolve("INC-1")
        assert fake.received == 2 and len(fake.events) == 1
        fake.fail_next(502, count=2)
        with pytest.raises(DeliveryError) as down:
            await events.resolve("INC-1")
        fake.fail_next(429, count=2)
        with pytest.raises(DeliveryError) as limited:
            await events.resolve("INC-1")
        await events.close()
    assert down.value.retryable and down.value.reason == "PagerDuty is unavailable (502)"
    assert limited.value.retryable and "rate limiting" in limited.value.reason


async def test_pagerduty_400_is_final_with_its_reason_and_never_shows_the_key(caplog) -> None:
    wrong = "W" * 32
    async with PagerDutyFake() as fake:
        events = _events(fake, key=wrong)
        with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryError) as refused:
            await events.trigger(make_incident(title=""), None, None)
        assert fake.received == 1, "a 400 is not retried"
        assert (await events.check()).startswith("PagerDuty Events v2 at")
        await events.close()
    assert not refused.value.retryable
    assert "Event object is invalid" in refused.value.reason
    assert "Invalid routing key" in refused.value.reason
    assert wrong not in refused.value.reason and wrong not in caplog.text


async def test_pagerduty_unreachable_is_retryable() -> None:
    fake = PagerDutyFake()
    await fake.start()
    url = fake.events_url
    await fake.stop()
    events = PagerDutyEvents(ROUTING_KEY, url, backoff=0, timeout=2)
    with pytest.raises(DeliveryError) as caught:
        await events.resolve("INC-1")
    await events.close()
    assert caught.value.retryable and "unreachable" in caught.value.reason


def test_teams_card_neutralises_markdown_and_links() -> None:
    hostile = "[click](http://evil.example) **bold** <a href=x> # head"
    card = adaptive_card(make_incident(title=hostile), ANALYSIS, "http://not-https.example")
    content = card["attachments"][0]["content"]
    texts = json.dumps(content["body"])
    assert "[click](http" not in texts and "**bold**" not in texts
    assert "http://evil" not in texts, "a bare URL must not become a link"
    assert "actions" not in content, "only an https permalink becomes a button"
    huge = ANALYSIS.model_copy(update={"root_cause": "x" * 50_000})
    long_card = adaptive_card(make_incident(), huge, PERMALINK)
    assert len(json.dumps(long_card)) < 28 * 1024


async def test_teams_posts_to_the_route_and_refusals_hide_the_signature() -> None:
    async with TeamsFake() as fake:
        teams = TeamsWebhook(backoff=0, timeout=5)
        incident = make_incident(status=IncidentStatus.RESOLVED, resolved_at=T0, resolved_by="U1")
        await teams.post(fake.url_for("critical"), adaptive_card(incident, ANALYSIS, PERMALINK))
        await teams.post(fake.url_for("critical"), resolved_card(incident))
        bad = adaptive_card(incident, None, None)
        bad["attachments"][0]["content"]["body"].append({"type": "Marquee"})
        with pytest.raises(DeliveryError) as rejected:
            await teams.post(fake.url_for("critical"), bad)
        fake.fail_next(503, count=2)
        with pytest.raises(DeliveryError) as down:
            await teams.post(fake.url_for("critical"), resolved_card(incident))
        await teams.close()
    [card, resolved] = fake.posts["critical"]
    content = card["attachments"][0]["content"]
    assert content["actions"][0]["url"] == PERMALINK
    assert "Resolved" in json.dumps(resolved)
    assert not rejected.value.retryable and "Marquee" in rejected.value.reason
    assert SIGNATURE not in rejected.value.reason and down.value.retryable


def _message(to: list[str], title: str = HOSTILE_TITLE) -> EmailMessage:
    timeline = [
        TimelineEvent(incident_id="INC-7K2M9", at=T0, actor="system", kind=TimelineKind.OPENED)
    ]
    content = compose(make_incident(title=title), ANALYSIS, timeline, PERMALINK, "FYI <b>", "U1")
    return build_message(content, "bot@example.com", to)


def test_email_parts_say_the_same_and_html_escapes_everything() -> None:
    content = compose(make_incident(title=HOSTILE_TITLE), ANALYSIS, [], PERMALINK, "see <b>", "U1")
    for part in (content.text, content.html):
        assert "max_connections" in part and "Restart the leaking" in part
    assert content.html.count("<a ") == 1 and f'href="{PERMALINK}"' in content.html
    assert "<script>" not in content.html and "&lt;script&gt;" in content.html
    assert "see &lt;b&gt;" in content.html
    insecure = compose(make_incident(), None, [], "http://x.example", None, "U1")
    assert "<a " not in insecure.html and "No analysis" in insecure.text


async def test_smtp_sends_both_parts_over_starttls_with_login() -> None:
    with SmtpSink() as sink:
        smtp = SmtpTransport(sink.host, sink.port, sink.user, sink.password,
                             ssl_context=sink.ssl_context(), timeout=5)  # fmt: skip
        message_id = await asyncio.to_thread(smtp.send, _message(["ann@example.com"]))
        assert (await asyncio.to_thread(smtp.check)).endswith("logged in as bot)")
    [received] = sink.messages
    assert received.tls and received.user == "bot"
    assert (
        received.recipients == ["ann@example.com"] and received.message["Message-ID"] == message_id
    )
    types = [part.get_content_type() for part in received.message.iter_parts()]
    assert types == ["text/plain", "text/html"]
    html_part = received.message.get_body(("html",))
    assert html_part is not None and "&lt;script&gt;" in html_part.get_content()


async def test_smtp_failures_say_whether_to_retry() -> None:
    with SmtpSink() as sink:

        def transport(password: str = sink.password) -> SmtpTransport:
            return SmtpTransport(sink.host, sink.port, sink.user, password,
                                 ssl_context=sink.ssl_context(), timeout=5)  # fmt: skip

        async def failure(smtp: SmtpTransport, to: list[str]) -> DeliveryError:
            with pytest.raises(DeliveryError) as caught:
                await asyncio.to_thread(smtp.send, _message(to))
            return caught.value

        login = await failure(transport("wrong"), ["ann@example.com"])
        sink.refuse_recipient("gone@example.com")
        refused = await failure(transport(), ["gone@example.com"])
        sink.fail_next()
        later = await failure(transport(), ["ann@example.com"])
        untrusted = SmtpTransport(sink.host, sink.port, sink.user, sink.password, timeout=5)
        cert = await failure(untrusted, ["ann@example.com"])
        port = sink.port
    closed = await failure(SmtpTransport("127.0.0.1", port, timeout=2), ["ann@example.com"])
    assert not login.retryable and "refused the login for bot" in login.reason
    assert not refused.retryable and "gone@example.com" in refused.reason
    assert later.retryable and "451" in later.reason
    assert not cert.retryable and "not trusted" in cert.reason
    assert closed.retryable and "unreachable" in closed.reason
    assert sink.messages == []


async def test_ses_sends_the_raw_message(aws: str) -> None:  # noqa: F811
    client = boto3.client("ses")
    ses = SesTransport(client)
    with pytest.raises(DeliveryError) as unverified:
        await asyncio.to_thread(ses.send, _message(["ann@example.com"]))
    client.verify_email_identity(EmailAddress="bot@example.com")
    message_id = await asyncio.to_thread(ses.send, _message(["ann@example.com"], "Disk full"))
    assert "sent in the last 24 h" in ses.check()

    with urllib.request.urlopen(f"{aws}/moto-api/data.json", timeout=5) as response:
        data = json.load(response)
    raw = json.dumps(data["ses"])
    assert message_id in raw and "Disk full" in raw and "text/html" in raw
    assert not unverified.value.retryable and "SES refused" in unverified.value.reason
