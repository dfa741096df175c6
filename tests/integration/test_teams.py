"""`TeamsWebhook` over a real socket against the Workflows webhook fake: cards land on the
route they were posted to and pass the fake's validation, which failures a later attempt can
fix, and that the webhook's signature never shows up in a reason or a log line."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from analysis.models import RemediationStep
from incidents.models import IncidentStatus
from notify.outbox import DeliveryError
from notify.teams import MESSAGE_LIMIT, TeamsWebhook, adaptive_card, resolved_card
from tests.conftest import T0
from tests.fakes.smtp_sink import _write_certificate
from tests.fakes.teams_server import SIGNATURE, TeamsFake
from tests.integration.test_jira import ANALYSIS
from tests.samples import PERMALINK, make_incident

pytestmark = pytest.mark.integration

HOSTILE = "<!channel> [click](http://evil.example) **bold** <a href=x>"
LEGACY_THROTTLED = (
    "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error "
    "429 with ContextId tcid=0,server=msgapi-production-eus-azsc2-4-170,cv=deadbeef.0"
)


def card() -> dict[str, Any]:
    return adaptive_card(make_incident(), ANALYSIS, PERMALINK)


def secret_of(url: str) -> str:
    return dict(part.split("=", 1) for part in urlsplit(url).query.split("&"))["sig"]


async def closed_port() -> int:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()
    return port


@pytest.fixture
async def teams() -> AsyncIterator[TeamsWebhook]:
    webhook = TeamsWebhook(timeout=5, backoff=0)
    yield webhook
    await webhook.close()


async def test_cards_land_on_the_route_they_were_posted_to(teams: TeamsWebhook) -> None:
    resolved = make_incident(status=IncidentStatus.RESOLVED, resolved_at=T0, resolved_by="U1")
    async with TeamsFake() as fake:
        critical, ops = fake.url_for("critical"), fake.url_for("ops")
        assert critical != ops and secret_of(critical) != secret_of(ops)
        run = await teams.post(critical, card())
        await teams.post(ops, resolved_card(resolved))

    assert run is not None and run.startswith("08584"), "the workflow run id, to find the run"
    assert fake.posts == {"critical": [card()], "ops": [resolved_card(resolved)]}


async def test_a_card_of_hostile_text_and_every_step_passes_validation(teams: TeamsWebhook) -> None:
    steps = [RemediationStep(action=HOSTILE, command=f"curl {HOSTILE}") for _ in range(8)]
    analysis = ANALYSIS.model_copy(
        update={"root_cause": HOSTILE * 30, "impact": HOSTILE, "remediation_steps": steps}
    )
    hostile = adaptive_card(make_incident(title=HOSTILE, resource=HOSTILE), analysis, PERMALINK)
    async with TeamsFake() as fake:
        await teams.post(fake.url_for("ops"), hostile)
    assert fake.posts["ops"] == [hostile]


async def test_a_legacy_connector_answering_1_is_a_success(teams: TeamsWebhook) -> None:
    async with TeamsFake() as fake:
        assert await teams.post(fake.legacy_url_for("old"), card()) is None
    assert len(fake.posts["old"]) == 1


async def test_a_legacy_connectors_failure_inside_a_200_is_a_failure(teams: TeamsWebhook) -> None:
    async with TeamsFake() as fake:
        url = fake.legacy_url_for("old")
        fake.fail_next(200, body=LEGACY_THROTTLED)
        with pytest.raises(DeliveryError) as throttled:
            await teams.post(url, card())
        fake.fail_next(200, body=f"Connector configuration not found for {url}: HTTP error 400")
        with pytest.raises(DeliveryError) as refused:
            await teams.post(url, card())
    assert throttled.value.retryable and "HTTP error 429" in throttled.value.reason
    assert not refused.value.retryable
    token = urlsplit(url).path.rsplit("/", 1)[-1]
    assert token not in refused.value.reason and url not in refused.value.reason
    assert "old" not in fake.posts


async def test_a_rejected_card_is_final_and_never_shows_the_signature(
    teams: TeamsWebhook, caplog
) -> None:
    bad = card()
    bad["attachments"][0]["content"]["body"].append({"type": "Marquee"})
    async with TeamsFake() as fake:
        url = fake.url_for("ops")
        with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryError) as rejected:
            await teams.post(url, bad)
        echoed = f'{{"error": {{"code": "BadRequest", "message": "Bad request to {url}"}}}}'
        fake.fail_next(400, body=echoed)
        with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryError) as echoing:
            await teams.post(url, card())
        received, host = fake.received, fake.url
    assert received == 2, "a 400 is not retried"
    assert not rejected.value.retryable
    assert rejected.value.reason == (
        f"Teams rejected the card at {host} (400): "
        "InvalidRequestContent: unknown element type 'Marquee'"
    )
    assert not echoing.value.retryable and "Bad request to <secret>" in echoing.value.reason
    for reason in (rejected.value.reason, echoing.value.reason):
        assert SIGNATURE not in reason and secret_of(url) not in reason
    assert SIGNATURE not in caplog.text


async def test_a_wrong_signature_or_a_deleted_workflow_is_final(teams: TeamsWebhook) -> None:
    async with TeamsFake() as fake:
        url = fake.url_for("ops")
        forged = url.replace(secret_of(url), "forged")
        with pytest.raises(DeliveryError) as unsigned:
            await teams.post(forged, card())
        gone = url.replace(urlsplit(url).path.split("/")[2], "0" * 32)
        with pytest.raises(DeliveryError) as missing:
            await teams.post(gone, card())
    assert (
        not unsigned.value.retryable and "refused the webhook's signature" in unsigned.value.reason
    )
    assert "(401)" in unsigned.value.reason and "forged" not in unsigned.value.reason
    assert not missing.value.retryable and "(404)" in missing.value.reason
    assert fake.posts == {}


async def test_a_5xx_blip_is_retried_within_the_call(teams: TeamsWebhook) -> None:
    async with TeamsFake() as fake:
        fake.fail_next(502)
        await teams.post(fake.url_for("ops"), card())
    assert fake.received == 2 and len(fake.posts["ops"]) == 1


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_throttling_and_outages_are_retryable(teams: TeamsWebhook, status: int) -> None:
    async with TeamsFake() as fake:
        url = fake.url_for("ops")
        fake.fail_next(status, count=2)
        with pytest.raises(DeliveryError) as caught:
            await teams.post(url, card())
    assert caught.value.retryable and f"({status})" in caught.value.reason
    assert fake.received == 2 and secret_of(url) not in caught.value.reason


async def test_a_closed_port_is_retryable_and_names_only_the_host(teams: TeamsWebhook) -> None:
    url = f"http://127.0.0.1:{await closed_port()}/workflows/x/triggers/manual/paths/invoke?sig=s3"
    with pytest.raises(DeliveryError) as caught:
        await teams.post(url, card())
    assert caught.value.retryable
    assert caught.value.reason == f"Teams is unreachable at {url.split('/workflows')[0]}"


async def test_an_oversized_card_is_refused_before_sending(teams: TeamsWebhook) -> None:
    huge = card()
    huge["attachments"][0]["content"]["body"].append({"type": "TextBlock", "text": "x" * 40_000})
    async with TeamsFake() as fake:
        with pytest.raises(DeliveryError) as caught:
            await teams.post(fake.url_for("ops"), huge)
    assert not caught.value.retryable and f"over Teams' {MESSAGE_LIMIT:,}" in caught.value.reason
    assert fake.received == 0


async def test_check_connects_without_posting(teams: TeamsWebhook) -> None:
    async with TeamsFake() as fake:
        host = fake.url
        result = await teams.check(fake.url_for("ops"))
    assert result == f"Teams webhook host {host} reachable (TCP connection ok); no test card posted"
    assert fake.received == 0 and fake.posts == {}


async def test_check_of_a_closed_port_is_retryable_and_hides_the_signature(
    teams: TeamsWebhook,
) -> None:
    url = f"http://127.0.0.1:{await closed_port()}/workflows/x?sig={SIGNATURE}"
    with pytest.raises(DeliveryError) as caught:
        await teams.check(url)
    assert caught.value.retryable and "unreachable" in caught.value.reason
    assert SIGNATURE not in caught.value.reason


async def test_check_refuses_what_is_not_an_http_url(teams: TeamsWebhook) -> None:
    with pytest.raises(DeliveryError) as caught:
        await teams.check("ftp://teams.example/hook")
    assert not caught.value.retryable


@pytest.fixture
async def tls_port(tmp_path: Path) -> AsyncIterator[tuple[int, Path]]:
    """A TLS server with a certificate made for 127.0.0.1 (the SMTP sink's), and that
    certificate, which a client trusts through SSL_CERT_FILE as it would a CA bundle."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    _write_certificate(cert, key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=context)
    yield int(server.sockets[0].getsockname()[1]), cert
    server.close()
    await server.wait_closed()


async def test_check_completes_a_verified_tls_handshake(
    teams: TeamsWebhook, tls_port: tuple[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, cert = tls_port
    url = f"https://127.0.0.1:{port}/workflows/x/triggers/manual/paths/invoke?sig={SIGNATURE}"
    with pytest.raises(DeliveryError) as untrusted:
        await teams.check(url)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    result = await teams.check(url)
    assert not untrusted.value.retryable and "invalid TLS certificate" in untrusted.value.reason
    assert result == (
        f"Teams webhook host https://127.0.0.1:{port} reachable (TLS handshake ok); "
        "no test card posted"
    )
