"""The HTTP receiver over a real socket on 127.0.0.1, with a real SQLite store behind it and
the group committer between them."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from incidents.lifecycle import IncidentService, RecordOutcome
from incidents.sqlite import SqliteStore
from ingest.group_commit import GroupCommitter
from ingest.pipeline import Ingestor
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
    def __init__(self, tmp_path: Path, api_key: str | None, backlog: int = 10_000) -> None:
        self.store = SqliteStore(tmp_path / "receiver.db")
        self.published: list[RecordOutcome] = []
        self.executor = ThreadPoolExecutor(max_workers=1)
        self.committer = GroupCommitter(
            Ingestor(IncidentService(self.store), self.store),
            self.executor,
            max_alerts=backlog,
            on_commit=self.published.extend,
        )
        self.receiver = Receiver(self.committer, api_key)
        self.server = TestServer(self.receiver.app(), host="127.0.0.1", port=0)
        self.session = aiohttp.ClientSession()

    def hold_the_store(self) -> threading.Event:
        """Occupy the store's only thread until the returned event is set: a slow disk."""
        release = threading.Event()
        self.executor.submit(release.wait)
        return release

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def post(self, body: bytes | str, **headers: str) -> tuple[int, dict[str, Any]]:
        data = body.encode() if isinstance(body, str) else body
        async with self.session.post(self.url("/alerts"), data=data, headers=headers) as resp:
            return resp.status, await resp.json()


async def _serve(started: Harness) -> AsyncIterator[Harness]:
    await started.server.start_server()
    yield started
    await started.session.close()
    await started.server.close()
    await started.committer.close()
    started.executor.shutdown()
    started.store.close()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async for started in _serve(Harness(tmp_path, api_key=None)):
        yield started


@pytest.fixture
async def keyed(tmp_path: Path) -> AsyncIterator[Harness]:
    async for started in _serve(Harness(tmp_path, api_key="k3y-with-entropy")):
        yield started


@pytest.fixture
async def small(tmp_path: Path) -> AsyncIterator[Harness]:
    """A receiver whose backlog holds 100 alerts."""
    async for started in _serve(Harness(tmp_path, api_key=None, backlog=100)):
        yield started


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
    await harness.post(json.dumps(BRIEF_ALERT))

    assert [o.kind.value for o in harness.published] == ["opened", "repeated"]


async def test_concurrent_requests_are_written_together_and_each_counted(harness: Harness):
    release = harness.hold_the_store()
    posts = [asyncio.create_task(harness.post(json.dumps(BRIEF_ALERT))) for _ in range(40)]
    while harness.committer.backlog["payloads"] < 40:
        await asyncio.sleep(0.01)
    release.set()
    answers = await asyncio.gather(*posts)

    assert {status for status, _ in answers} == {202}
    [incident] = harness.store.list_incidents()
    assert incident.occurrences == 40
    assert len(harness.store.occurrences(incident.id, limit=100)) == 40
    # One write for the 40 that waited together, whatever the order they were parsed in.
    assert harness.committer.batches <= 3
    kinds = sorted(body["outcomes"][0]["outcome"] for _, body in answers)
    assert kinds == ["opened"] + ["repeated"] * 39


async def test_a_retried_post_with_its_idempotency_key_counts_once(harness: Harness):
    headers = {"Idempotency-Key": "checkout-2026-12-07T17:00:00Z"}
    first, answer = await harness.post(json.dumps(BRIEF_ALERT), **headers)
    again, retried = await harness.post(json.dumps(BRIEF_ALERT), **headers)
    other, _ = await harness.post(json.dumps(BRIEF_ALERT), **{"Idempotency-Key": "another"})

    assert (first, again, other) == (202, 202, 202)
    assert retried["outcomes"][0]["outcome"] == "duplicate"
    assert retried["incidents"] == answer["incidents"]
    incident = harness.store.get_incident(answer["incidents"][0])
    assert incident is not None and incident.occurrences == 2


async def test_an_oversized_idempotency_key_is_refused(harness: Harness):
    status, body = await harness.post(json.dumps(BRIEF_ALERT), **{"Idempotency-Key": "k" * 201})

    assert status == 400
    assert "Idempotency-Key" in body["error"]
    assert harness.store.list_incidents() == []


async def test_a_full_backlog_is_429_with_retry_after_and_nothing_accepted_is_lost(small: Harness):
    batch = json.dumps([dict(BRIEF_ALERT, title=f"storm {n}") for n in range(30)])

    async def post() -> tuple[int, str | None]:
        async with small.session.post(small.url("/alerts"), data=batch) as response:
            return response.status, response.headers.get("Retry-After")

    release = small.hold_the_store()
    try:
        posts = [asyncio.create_task(post())]
        while small.committer.backlog != {"payloads": 1, "alerts": 0, "bytes": len(batch)}:
            await asyncio.sleep(0.01)  # the first payload is being written (the store is slow)
        posts += [asyncio.create_task(post()) for _ in range(7)]
        while small.receiver.metrics.payloads["backlogged"] < 4:
            await asyncio.sleep(0.01)
        async with small.session.get(small.url("/healthz")) as live:
            alive = live.status
        async with small.session.get(small.url("/readyz")) as ready:
            readiness = await ready.json()
    finally:
        release.set()
    answers = await asyncio.gather(*posts)

    assert alive == 200
    assert readiness["backlog"]["payloads"] == 4
    # 30 alerts are being written and 90 wait: the backlog of 100 takes no more.
    assert sorted(status for status, _ in answers) == [202] * 4 + [429] * 4
    assert all(int(after or 0) >= 1 for status, after in answers if status == 429)
    occurrences = sum(i.occurrences for i in small.store.list_incidents(limit=100))
    assert occurrences == 4 * 30


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
        alive = resp.status
    async with harness.session.get(harness.url("/readyz")) as resp:
        ready, readiness = resp.status, await resp.json()

    assert status == 503
    assert "retry" in body["error"]
    assert alive == 200  # the process itself is fine: restarting it would not help
    assert ready == 503
    assert readiness["status"] == "not ready"
    assert "closed" in readiness["checks"]["store"]


async def test_readyz_reports_the_store_and_the_backlog(harness: Harness):
    async with harness.session.get(harness.url("/readyz")) as resp:
        assert resp.status == 200
        assert await resp.json() == {
            "status": "ready",
            "checks": {"store": "ok"},
            "backlog": {"payloads": 0, "alerts": 0, "bytes": 0},
        }


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


async def test_a_failing_reaction_does_not_stop_the_writing(tmp_path: Path):
    """What follows a write (publishing) raising must not leave later senders unanswered."""
    started = Harness(tmp_path, api_key=None)

    def explode(outcomes: list[RecordOutcome]) -> None:
        raise RuntimeError("the publisher broke")

    started.committer = GroupCommitter(
        started.committer.ingestor, started.executor, on_commit=explode
    )
    started.receiver.committer = started.committer
    async for harness in _serve(started):
        first, _ = await harness.post(json.dumps(BRIEF_ALERT))
        second, body = await asyncio.wait_for(harness.post(json.dumps(BRIEF_ALERT)), 10)

        assert (first, second) == (202, 202)
        assert body["outcomes"][0]["outcome"] == "repeated"
