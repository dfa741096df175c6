"""The SQS consumer against moto's server: SNS to SQS in both delivery modes, exactly-once
counting of redeliveries, dead letters, redrive to the DLQ, backpressure and a clean stop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from incidents.lifecycle import IncidentService
from incidents.sqlite_store import SqliteStore
from ingest.pipeline import Ingestor, IngestReport
from ingest.sqs import ConsumerConfig, SqsConsumer
from tests.conftest import BRIEF_ALERT, FIXTURES
from tests.fakes.moto_server import aws, moto_server  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aws")]

ALARM = json.loads(
    (
        FIXTURES / "payloads/cloudwatch-alarm-sns/rheoceros_sns-lambda_metric-alarm_ALARM.json"
    ).read_text()
)["Records"][0]["Sns"]["Message"]


@dataclass
class Queue:
    sqs: Any
    url: str
    dlq_url: str

    def depth(self, url: str | None = None) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url or self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def visible(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def send_alerts(self, count: int) -> None:
        """`count` of the brief's alerts, each with a title of its own."""
        for n in range(count):
            self.sqs.send_message(
                QueueUrl=self.url, MessageBody=json.dumps({**BRIEF_ALERT, "title": f"Disk {n}x"})
            )


def _queue(max_receive_count: int = 2) -> Queue:
    sqs = boto3.client("sqs")
    dlq_url = sqs.create_queue(QueueName="alerts-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
    url = sqs.create_queue(QueueName="alerts", Attributes={"RedrivePolicy": json.dumps(redrive)})[
        "QueueUrl"
    ]
    return Queue(sqs, url, dlq_url)


def _subscribe(queue: Queue, raw: bool) -> Any:
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    arn = queue.sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true" if raw else "false"},
    )
    return sns, topic


class Harness:
    def __init__(self, tmp_path: Path, queue: Queue, **config: Any) -> None:
        self.store = SqliteStore(tmp_path / "sqs.db")
        self.executor = ThreadPoolExecutor(max_workers=1)
        self.reports: list[IngestReport] = []
        self.on_report: Callable[[IngestReport], Awaitable[None]] = self._collect
        self.consumer = SqsConsumer(
            queue.sqs,
            Ingestor(IncidentService(self.store), self.store),
            self.executor,
            lambda report: self.on_report(report),
            ConsumerConfig(queue_url=queue.url, wait_seconds=1, **config),
        )
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def _collect(self, report: IngestReport) -> None:
        self.reports.append(report)

    def start(self) -> None:
        self.task = asyncio.create_task(self.consumer.run(self.stop))

    async def until(self, condition: Callable[[], bool], timeout: float = 30) -> None:
        async def poll() -> None:
            while not condition():
                await asyncio.sleep(0.05)

        await asyncio.wait_for(poll(), timeout)

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 40)
        self.executor.shutdown()
        self.store.close()


@pytest.fixture
def queue() -> Queue:
    return _queue()


@pytest.fixture
async def harness(tmp_path: Path, queue: Queue) -> AsyncIterator[Harness]:
    started = Harness(tmp_path, queue, visibility_timeout=2)
    yield started
    await started.close()


@pytest.mark.parametrize("raw", [False, True])
async def test_an_alarm_published_to_sns_is_recorded_and_deleted(
    harness: Harness, queue: Queue, raw: bool
):
    sns, topic = _subscribe(queue, raw)
    sns.publish(TopicArn=topic, Message=ALARM, Subject="ALARM: metric alarm")
    harness.start()

    await harness.until(lambda: bool(harness.store.list_incidents()))
    [incident] = harness.store.list_incidents()
    assert incident.source == "cloudwatch"
    assert "metric_emitting_node_failure" in incident.title
    await harness.until(lambda: queue.depth() == 0 and bool(harness.reports))
    assert [o.kind.value for r in harness.reports for o in r.outcomes] == ["opened"]


async def test_a_redelivered_message_is_counted_once(harness: Harness, queue: Queue):
    queue.sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps(BRIEF_ALERT))
    first = queue.sqs.receive_message(QueueUrl=queue.url, VisibilityTimeout=0)["Messages"][0]
    harness.consumer.ingestor.ingest(
        first["Body"].encode(), "sqs", f"sqs:{first['MessageId']}"
    )  # recorded, then the process "died" before deleting it
    harness.start()

    await harness.until(lambda: queue.depth() == 0 and bool(harness.reports))
    [incident] = harness.store.list_incidents()
    assert incident.occurrences == 1
    assert [o.kind.value for r in harness.reports for o in r.outcomes] == ["duplicate"]


async def test_an_unreadable_body_is_kept_as_a_dead_letter_and_deleted(
    harness: Harness, queue: Queue
):
    queue.sqs.send_message(QueueUrl=queue.url, MessageBody='{"title": "cut off')
    harness.start()

    await harness.until(lambda: bool(harness.store.dead_letters()))
    [letter] = harness.store.dead_letters()
    assert letter.payload == b'{"title": "cut off' and letter.origin == "sqs"
    await harness.until(lambda: queue.depth() == 0)
    assert queue.depth(queue.dlq_url) == 0, "kept by us, so not a poison message"


async def test_a_store_outage_leaves_the_message_for_redelivery_then_the_dlq(
    harness: Harness, queue: Queue
):
    harness.store.close()
    queue.sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps(BRIEF_ALERT))
    harness.start()

    await harness.until(lambda: queue.depth(queue.dlq_url) == 1, timeout=40)
    assert queue.depth() == 0


async def test_a_busy_process_stops_receiving(tmp_path: Path, queue: Queue):
    harness = Harness(tmp_path, queue, max_in_flight=2, pollers=1, visibility_timeout=30)
    release = asyncio.Event()
    blocked: list[IngestReport] = []

    async def slow(report: IngestReport) -> None:
        blocked.append(report)
        await release.wait()

    harness.on_report = slow
    queue.send_alerts(6)
    harness.start()
    try:
        await harness.until(lambda: len(blocked) == 2)
        await asyncio.sleep(1)
        assert len(blocked) == 2
        assert queue.visible() == 4, "left in the queue"
        release.set()
        await harness.until(lambda: len(blocked) == 6)
        await harness.until(lambda: queue.depth() == 0)
    finally:
        release.set()
        await harness.close()


async def test_a_busy_process_receives_whole_batches(tmp_path: Path, queue: Queue):
    """Room for one message is not worth a request: it receives again when ten fit."""
    harness = Harness(tmp_path, queue, max_in_flight=10, pollers=1, visibility_timeout=30)
    gates: list[asyncio.Event] = []

    async def held(report: IngestReport) -> None:
        gate = asyncio.Event()
        gates.append(gate)
        await gate.wait()

    harness.on_report = held
    queue.send_alerts(20)
    harness.start()
    try:
        await harness.until(lambda: len(gates) == 10)
        for gate in gates[:5]:
            gate.set()
        await asyncio.sleep(1)
        assert len(gates) == 10
        assert queue.visible() == 10, "no receive for 5 slots"
        for gate in gates:
            gate.set()
        await harness.until(lambda: len(gates) == 20)
        for gate in gates:
            gate.set()
        await harness.until(lambda: queue.depth() == 0)
    finally:
        for gate in gates:
            gate.set()
        await harness.close()


class _CountedDeletes:
    """The real client, noting how many messages each delete_message_batch carried."""

    def __init__(self, sqs: Any) -> None:
        self.sqs = sqs
        self.batches: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sqs, name)

    def delete_message_batch(self, **request: Any) -> Any:
        self.batches.append(len(request["Entries"]))
        return self.sqs.delete_message_batch(**request)


async def test_handled_messages_are_deleted_ten_a_request_and_the_rest_on_stop(
    tmp_path: Path, queue: Queue, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("ingest.sqs.DELETE_LINGER_SECONDS", 60)
    harness = Harness(tmp_path, queue, pollers=1, visibility_timeout=60)
    sqs = _CountedDeletes(queue.sqs)
    harness.consumer.sqs = sqs
    for _ in range(12):
        queue.sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps(BRIEF_ALERT))
    harness.start()
    try:
        await harness.until(lambda: len(harness.reports) == 12 and queue.depth() == 2)
        assert sqs.batches == [10], "a full batch goes at once; the other two wait"
    finally:
        await harness.close()
    assert sqs.batches == [10, 2], "stopping deletes what was handled"
    assert queue.depth() == 0


async def test_stopping_finishes_the_message_in_hand(tmp_path: Path, queue: Queue):
    harness = Harness(tmp_path, queue, visibility_timeout=30)
    working = asyncio.Event()
    finish = asyncio.Event()

    async def held(report: IngestReport) -> None:
        working.set()
        await finish.wait()

    harness.on_report = held
    queue.sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps(BRIEF_ALERT))
    harness.start()
    await asyncio.wait_for(working.wait(), 30)

    harness.stop.set()
    finish.set()
    assert harness.task is not None
    await asyncio.wait_for(harness.task, 40)
    assert queue.depth() == 0
    assert len(harness.store.list_incidents()) == 1
    harness.executor.shutdown()
    harness.store.close()
