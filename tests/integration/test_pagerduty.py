"""`PagerDutyEvents` over a real socket against the Events v2 fake: what PagerDuty records,
the quick retry inside one call, which failures a later attempt can fix, and that the routing
key never shows up in a reason or a log line."""

from __future__ import annotations

import logging
import time

import aiohttp
import pytest

from incidents.models import Severity
from notify.outbox import DeliveryError
from notify.pagerduty import PagerDutyEvents
from tests.fakes.pagerduty_server import ROUTING_KEY, PagerDutyFake
from tests.fakes.teams_server import TeamsFake
from tests.integration.test_jira import ANALYSIS
from tests.samples import PERMALINK, make_incident

pytestmark = pytest.mark.integration


def events_for(
    fake: PagerDutyFake,
    key: str = ROUTING_KEY,
    *,
    timeout: float = 5.0,
    backoff: float = 0.0,
    retries: int = 1,
) -> PagerDutyEvents:
    return PagerDutyEvents(key, fake.events_url, timeout=timeout, backoff=backoff, retries=retries)


async def closed_port_url() -> str:
    fake = PagerDutyFake()
    await fake.start()
    url = fake.events_url
    await fake.stop()
    return url


async def test_trigger_acknowledge_resolve_all_carry_the_incident_id() -> None:
    incident = make_incident(severity=Severity.CRITICAL)
    async with PagerDutyFake() as fake:
        events = events_for(fake)
        keys = [
            await events.trigger(incident, ANALYSIS, PERMALINK),
            await events.acknowledge(incident.id),
            await events.resolve(incident.id),
        ]
        await events.close()

    assert keys == [incident.id] * 3, "the dedup key PagerDuty echoed"
    assert [e["event_action"] for e in fake.events] == ["trigger", "acknowledge", "resolve"]
    assert all(e["dedup_key"] == incident.id for e in fake.events)
    assert all(e["routing_key"] == ROUTING_KEY for e in fake.events)
    trigger = fake.events[0]
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["custom_details"]["incident_id"] == incident.id
    assert trigger["links"] == [{"href": PERMALINK, "text": "Incident in Slack"}]


async def test_a_500_is_retried_once_within_the_call() -> None:
    async with PagerDutyFake() as fake:
        events = events_for(fake)
        fake.fail_next(500)
        assert await events.trigger(make_incident(), None, None) == "INC-7K2M9"
        await events.close()
    assert fake.received == 2 and len(fake.events) == 1


async def test_the_quick_retry_waits_a_jittered_backoff() -> None:
    async with PagerDutyFake() as fake:
        events = events_for(fake, backoff=0.2)
        fake.fail_next(503)
        started = time.monotonic()
        await events.resolve("INC-1")
        waited = time.monotonic() - started
        await events.close()
    assert 0.2 <= waited < 1.0, "between one and two backoffs, plus the requests"


async def test_an_outage_is_retryable_after_one_quick_retry() -> None:
    async with PagerDutyFake() as fake:
        events = events_for(fake)
        fake.fail_next(500, count=2)
        with pytest.raises(DeliveryError) as caught:
            await events.trigger(make_incident(), ANALYSIS, PERMALINK)
        await events.close()
    assert caught.value.retryable and caught.value.reason == "PagerDuty is unavailable (500)"
    assert fake.received == 2 and fake.events == [], "bounded: the outbox retries later"


async def test_no_quick_retry_when_retries_is_zero() -> None:
    async with PagerDutyFake() as fake:
        events = events_for(fake, retries=0)
        fake.fail_next(502)
        with pytest.raises(DeliveryError) as caught:
            await events.resolve("INC-1")
        await events.close()
    assert caught.value.retryable and fake.received == 1


async def test_rate_limiting_is_retryable() -> None:
    async with PagerDutyFake() as fake:
        events = events_for(fake)
        fake.fail_next(429, count=2)
        with pytest.raises(DeliveryError) as caught:
            await events.acknowledge("INC-1")
        await events.close()
    assert caught.value.retryable and caught.value.reason == "PagerDuty is rate limiting (429)"


async def test_a_400_is_final_with_pagerdutys_words_and_never_the_key(caplog) -> None:
    malformed = "not-a-routing-key!"
    async with PagerDutyFake() as fake:
        events = events_for(fake, key=malformed)
        with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryError) as caught:
            await events.trigger(make_incident(), ANALYSIS, PERMALINK)
        await events.close()

    assert not caught.value.retryable and fake.received == 1, "a 400 is not retried"
    reason = caught.value.reason
    assert reason.startswith("PagerDuty rejected the trigger event (400): Event object is invalid")
    assert "Length of 'routing_key' is incorrect (should be 32 characters)" in reason
    assert "cannot contain non-alphanumeric characters" in reason
    assert malformed not in reason and malformed not in caplog.text
    [logged] = [r for r in caplog.records if r.name == "notify.pagerduty"]
    assert logged.levelno == logging.ERROR and "Event object is invalid" in logged.getMessage()


async def test_an_unknown_routing_key_is_final_and_never_shown(caplog) -> None:
    unknown = "UNKN0WNKEYUNKN0WNKEYUNKN0WNKEY99"
    async with PagerDutyFake() as fake:
        events = events_for(fake, key=unknown)
        with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryError) as caught:
            await events.resolve("INC-1")
        await events.close()
    assert not caught.value.retryable and "Invalid routing key" in caught.value.reason
    assert unknown not in caught.value.reason and unknown not in caplog.text


async def test_a_reason_that_echoes_the_routing_key_is_scrubbed(caplog) -> None:
    echoed = {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": [f"Integration {ROUTING_KEY} is disabled"],
    }
    async with PagerDutyFake() as fake:
        events = events_for(fake)
        fake.fail_next(400, body=echoed)
        with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryError) as caught:
            await events.resolve("INC-1")
        fake.fail_next(400, body="x" * 190 + ROUTING_KEY)
        with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryError) as cut:
            await events.resolve("INC-1")
        await events.close()
    assert "Integration <routing key> is disabled" in caught.value.reason
    assert not cut.value.retryable and cut.value.reason.endswith("…")
    for reason in (caught.value.reason, cut.value.reason, caplog.text):
        assert ROUTING_KEY[:8] not in reason, "not even the part before a cut"


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_routing_key_is_final(status: int, caplog) -> None:
    async with PagerDutyFake() as fake:
        events = events_for(fake)
        fake.fail_next(status)
        with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryError) as caught:
            await events.trigger(make_incident(), None, None)
        await events.close()
    assert not caught.value.retryable
    assert caught.value.reason == f"PagerDuty refused the routing key ({status})"
    assert ROUTING_KEY not in caplog.text


async def test_a_closed_port_is_retryable() -> None:
    events = PagerDutyEvents(ROUTING_KEY, await closed_port_url(), backoff=0, timeout=2)
    with pytest.raises(DeliveryError) as caught:
        await events.trigger(make_incident(), None, None)
    await events.close()
    assert caught.value.retryable
    assert caught.value.reason.startswith("PagerDuty is unreachable at http://127.0.0.1:")


async def test_a_silent_server_is_a_retryable_timeout() -> None:
    async with PagerDutyFake() as fake:
        events = events_for(fake, timeout=0.3, retries=0)
        fake.stall_next(5)
        with pytest.raises(DeliveryError) as caught:
            await events.resolve("INC-1")
        await events.close()
    assert caught.value.retryable and caught.value.reason == "PagerDuty did not answer within 0.3 s"


async def test_check_proves_the_endpoint_without_paging() -> None:
    async with PagerDutyFake() as fake:
        events = events_for(fake)
        result = await events.check()
        await events.close()
        host = fake.url
    assert result.startswith(f"PagerDuty Events v2 at {host} (routing key not tested")
    assert fake.received == 1 and fake.events == [], "nothing was paged"


async def test_check_fails_on_something_that_is_not_pagerduty() -> None:
    async with TeamsFake() as other:
        events = PagerDutyEvents(ROUTING_KEY, f"{other.url}/v2/enqueue", backoff=0, timeout=5)
        with pytest.raises(DeliveryError) as caught:
            await events.check()
        await events.close()
        host = other.url
    assert not caught.value.retryable
    assert caught.value.reason == (
        f"PagerDuty Events v2 is not at {host} (404): check the events URL"
    )


async def test_check_fails_on_an_endpoint_that_accepts_anything() -> None:
    async with TeamsFake() as other:
        url = other.legacy_url_for("anything")
        events = PagerDutyEvents(ROUTING_KEY, url, backoff=0, timeout=5)
        with pytest.raises(DeliveryError) as caught:
            await events.check()
        await events.close()
        host = other.url
    assert not caught.value.retryable
    assert caught.value.reason == f"{host} does not answer as PagerDuty Events v2 (400)"


async def test_check_of_an_unreachable_endpoint_is_retryable() -> None:
    events = PagerDutyEvents(ROUTING_KEY, await closed_port_url(), backoff=0, timeout=2)
    with pytest.raises(DeliveryError) as caught:
        await events.check()
    await events.close()
    assert caught.value.retryable and "unreachable" in caught.value.reason


async def test_a_session_passed_in_stays_open_for_its_owner() -> None:
    async with PagerDutyFake() as fake, aiohttp.ClientSession() as session:
        events = PagerDutyEvents(ROUTING_KEY, fake.events_url, session=session, backoff=0)
        await events.resolve("INC-1")
        await events.close()
        assert not session.closed
        async with session.post(fake.events_url, json={}) as answer:
            assert answer.status == 400
    assert len(fake.events) == 1
