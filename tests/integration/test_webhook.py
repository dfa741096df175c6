"""The HTTP receiver over a real socket on 127.0.0.1, with a real SQLite store behind it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from incidents.lifecycle import IncidentService
from incidents.sqlite_store import SqliteStore
from ingest.pipeline import Ingestor, IngestReport
from ingest.webhook import Receiver
from tests.conftest import BRIEF_ALERT

pytestmark = pytest.mark.integration

SNS_CONFIRMATION = {
    "Type": "SubscriptionConfirmation",
    "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
    "Token": "2336412f37",
    "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
    "Message": "You have chosen to subscribe to the topic",
    "SubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription",
    "Timestamp": "2012-04-26T20:45:04.751Z",
}


class Harness:
    def __init__(self, tmp_path: Path, api_key: str | None) -> None:
        self.store = SqliteStore(tmp_path / "receiver.db")
        self.reports: list[IngestReport] = []
        self.executor = ThreadPoolExecutor(max_workers=1)
        self.receiver = Receiver(
            Ingestor(IncidentService(self.store), self.store),
            self.executor,
            self._collect,
            api_key,
        )
        self.server = TestServer(self.receiver.app(), host="127.0.0.1", port=0)
        self.session = aiohttp.ClientSession()

    async def _collect(self, report: IngestReport) -> None:
        self.reports.append(report)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def post(self, body: bytes | str, **headers: str) -> tuple[int, dict[str, Any]]:
        data = body.encode() if isinstance(body, str) else body
        async with self.session.post(self.url("/alerts"), data=data, headers=headers) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    started = Harness(tmp_path, api_key=None)
    await started.server.start_server()
    yield started
    await started.session.close()
    await started.server.close()
    started.executor.shutdown()
    started.store.close()


@pytest.fixture
async def keyed(tmp_path: Path) -> AsyncIterator[Harness]:
    started = Harness(tmp_path, api_key="k3y-with-entropy")
    await started.server.start_server()
    yield started
    await started.session.close()
    await started.server.close()
    started.executor.shutdown()
    started.store.close()


async def test_the_brief_alert_is_recorded_then_answered_202(harness: Harness):
    status, body = await harness.post(json.dumps(BRIEF_ALERT), **{"x-api-key": "anything"})

    assert status == 202
    [incident_id] = body["incidents"]
    incident = harness.store.get_incident(incident_id)
    assert incident is not None
    assert incident.title == "Test Error: Database Connection Failed"
    assert incident.severity.value == "HIGH"
    assert body["outcomes"][0]["outcome"] == "opened"


async def test_repeats_land_in_the_same_incident(harness: Harness):
    _, first = await harness.post(json.dumps(BRIEF_ALERT))
    _, second = await harness.post(json.dumps(BRIEF_ALERT))

    assert first["incidents"] == second["incidents"]
    assert second["outcomes"][0]["outcome"] == "repeated"
    incident = harness.store.get_incident(first["incidents"][0])
    assert incident is not None and incident.occurrences == 2


async def test_a_batch_of_mixed_formats_is_accepted_whole(harness: Harness):
    alarm = json.loads(
        (
            Path(__file__).parents[1]
            / "fixtures/payloads/cloudwatch-alarm-sns"
            / "lambda-go_cloudwatch-alarm-sns-payload-single-metric.json"
        ).read_text()
    )
    status, body = await harness.post(json.dumps([BRIEF_ALERT, alarm, "disk /data is 97% full"]))

    assert status == 202
    assert body["alerts"] == 3
    assert len(body["incidents"]) == 3


async def test_the_publisher_is_handed_every_outcome(harness: Harness):
    await harness.post(json.dumps(BRIEF_ALERT))
    await harness.server.close()

    assert [o.kind.value for r in harness.reports for o in r.outcomes] == ["opened"]


async def test_an_unreadable_body_is_400_and_kept_verbatim(harness: Harness):
    status, body = await harness.post('{"title": "cut off')

    assert status == 400
    assert body["error"].startswith("malformed JSON")
    [letter] = harness.store.dead_letters()
    assert letter.id == body["dead_letters"][0]
    assert letter.payload == b'{"title": "cut off'
    assert letter.origin.startswith("webhook:127.0.0.1")


async def test_binary_is_400_and_kept(harness: Harness):
    status, body = await harness.post(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

    assert status == 400
    assert "binary payload" in body["error"]
    assert harness.store.dead_letters()[0].payload.startswith(b"\x89PNG")


async def test_a_body_over_one_mebibyte_is_413(harness: Harness):
    status, body = await harness.post(b"x" * (1024 * 1024 + 1))

    assert status == 413
    assert "over the 1048576 byte limit" in body["error"]


async def test_an_sns_subscription_confirmation_is_accepted_and_kept(harness: Harness):
    status, body = await harness.post(json.dumps(SNS_CONFIRMATION))

    assert status == 202
    assert body["incidents"] == []
    assert "SubscriptionConfirmation" in body["ignored"]
    assert harness.store.dead_letters()[0].reason == body["ignored"]


async def test_a_batch_with_one_bad_item_keeps_the_rest(harness: Harness):
    status, body = await harness.post(json.dumps([BRIEF_ALERT, None]))

    assert status == 202
    assert body["alerts"] == 1
    assert body["rejected"] == ["JSON null is not an alert"]
    assert harness.store.dead_letters()[0].payload == b"null"


async def test_healthz(harness: Harness):
    async with harness.session.get(harness.url("/healthz")) as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ok"}


async def test_a_broken_store_answers_503_so_the_sender_retries(harness: Harness):
    harness.store.close()

    status, body = await harness.post(json.dumps(BRIEF_ALERT))
    async with harness.session.get(harness.url("/healthz")) as resp:
        health = resp.status

    assert status == 503
    assert "retry" in body["error"]
    assert health == 503


async def test_the_api_key_is_required_when_set(keyed: Harness):
    missing, _ = await keyed.post(json.dumps(BRIEF_ALERT))
    wrong, body = await keyed.post(json.dumps(BRIEF_ALERT), **{"x-api-key": "k3y-with-entropY"})
    right, _ = await keyed.post(json.dumps(BRIEF_ALERT), **{"x-api-key": "k3y-with-entropy"})

    assert (missing, wrong, right) == (401, 401, 202)
    assert body["error"] == "missing or wrong x-api-key header"
    assert len(keyed.store.list_incidents()) == 1


async def test_metrics_count_payloads_and_outcomes(harness: Harness):
    await harness.post(json.dumps(BRIEF_ALERT))
    await harness.post(json.dumps(BRIEF_ALERT))
    await harness.post("{broken")

    async with harness.session.get(harness.url("/metrics")) as resp:
        text = await resp.text()

    assert resp.status == 200
    assert 'incident_bot_payloads_total{result="accepted"} 2' in text
    assert 'incident_bot_payloads_total{result="unreadable"} 1' in text
    assert 'incident_bot_alerts_total{outcome="opened"} 1' in text
    assert 'incident_bot_alerts_total{outcome="repeated"} 1' in text
