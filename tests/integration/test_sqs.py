"""The SQS consumer against moto's server: SNS to SQS in both delivery modes, exactly-once
counting of redeliveries, dead letters, redrive to the DLQ, backpressure, and a stop that
hands back what it has not started."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from incidents.lifecycle import IncidentService, RecordOutcome
from incidents.sqlite import SqliteStore
from ingest.group_commit import GroupCommitter
from ingest.pipeline import Ingestor
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
    def __init__(self, tmp_path: Path, queue: Queue, backlog: int = 10_000, **config: Any) -> None:
        self.store = SqliteStore(tmp_path / "sqs.db")
        self.executor = ThreadPoolExecutor(max_workers=1)
        self.outcomes: list[RecordOutcome] = []
        self.committer = GroupCommitter(
            Ingestor(IncidentService(self.store), self.store),
            self.executor,
            max_alerts=backlog,
            on_commit=self.outcomes.extend,
        )
        self.consumer = SqsConsumer(
            queue.sqs,
            self.committer,
            ConsumerConfig(queue_url=queue.url, **{"wait_seconds": 1, **config}),
        )
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def hold_the_store(self) -> threading.Event:
        """Occupy the store's only thread until the returned event is set: a slow store."""
        release = threading.Event()
        self.executor.submit(release.wait)
        return release

    async def writing(self, payloads: int) -> None:
        """Until the first payload is being written and `payloads - 1` wait behind it."""
        await self.until(lambda: self.committer.backlog["payloads"] == payloads)

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
        await self.committer.close()
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
    await harness.until(lambda: queue.depth() == 0 and bool(harness.outcomes))
    assert [o.kind.value for o in harness.outcomes] == ["opened"]


async def test_a_redelivered_message_is_counted_once(harness: Harness, queue: Queue):
    queue.sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps(BRIEF_ALERT))
    first = queue.sqs.receive_message(QueueUrl=queue.url, VisibilityTimeout=0)["Messages"][0]
    harness.committer.ingestor.ingest(
        first["Body"].encode(), "sqs", f"sqs:{first['MessageId']}"
    )  # recorded, then the process "died" before deleting it
    harness.start()

    await harness.until(lambda: queue.depth() == 0)
    [incident] = harness.store.list_incidents()
    assert incident.occurrences == 1
    assert [o.kind.value for o in harness.outcomes] == ["duplicate"]


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
    queue.send_alerts(6)
    release = harness.hold_the_store()
    harness.start()
    try:
        await harness.until(lambda: harness.consumer.in_hand == 2)
        await asyncio.sleep(1)
        assert harness.consumer.in_hand == 2
        assert queue.visible() == 4, "left in the queue"
        release.set()
        await harness.until(lambda: queue.depth() == 0)
        assert sum(i.occurrences for i in harness.store.list_incidents()) == 6
    finally:
        release.set()
        await harness.close()


async def test_a_busy_process_receives_whole_batches(tmp_path: Path, queue: Queue):
    """Room for less than ten is not worth a request: the next receive waits for ten."""
    harness = Harness(tmp_path, queue, max_in_flight=15, pollers=1, visibility_timeout=30)
    queue.send_alerts(20)
    release = harness.hold_the_store()
    harness.start()
    try:
        await harness.until(lambda: harness.consumer.in_hand == 10)
        await asyncio.sleep(1)
        assert harness.consumer.in_hand == 10, "no receive for the 5 slots left"
        assert queue.visible() == 10
        release.set()
        await harness.until(lambda: queue.depth() == 0)
    finally:
        release.set()
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
        await harness.until(lambda: len(harness.outcomes) == 12 and queue.depth() == 2)
        assert sqs.batches == [10], "a full batch goes at once; the other two wait"
    finally:
        await harness.close()
    assert sqs.batches == [10, 2], "stopping deletes what was handled"
    assert queue.depth() == 0


async def test_stopping_finishes_the_message_being_written_and_hands_back_the_rest(
    tmp_path: Path, queue: Queue
):
    harness = Harness(tmp_path, queue, visibility_timeout=60, pollers=1)
    release = harness.hold_the_store()
    queue.sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps(BRIEF_ALERT))
    harness.start()
    try:
        await harness.writing(1)
        queue.send_alerts(4)
        await harness.writing(5)
        harness.stop.set()
        await asyncio.sleep(0.2)
    finally:
        release.set()
    assert harness.task is not None
    await asyncio.wait_for(harness.task, 10)

    [incident] = harness.store.list_incidents()
    assert incident.title == BRIEF_ALERT["title"], "the message being written was finished"
    assert queue.visible() == 4, "the others are back at once, not after 60 s"
    assert queue.depth() == 4
    await harness.committer.close()
    harness.executor.shutdown()
    harness.store.close()


async def test_a_stop_does_not_wait_for_the_long_poll(tmp_path: Path, queue: Queue):
    harness = Harness(tmp_path, queue, wait_seconds=20)
    harness.start()
    await asyncio.sleep(0.5)  # the receive is waiting on an empty queue

    stopped = time.monotonic()
    await harness.close()

    assert time.monotonic() - stopped < 3


async def test_sqs_messages_are_not_held_to_the_http_backlog(tmp_path: Path, queue: Queue):
    """The consumer bounds what it holds; a message refused for the receivers' backlog would
    wait out its visibility timeout and count towards the queue's redrive limit."""
    harness = Harness(tmp_path, queue, backlog=1, pollers=1, visibility_timeout=30)
    release = harness.hold_the_store()
    harness.start()
    try:
        queue.sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps(BRIEF_ALERT))
        await harness.writing(1)
        queue.send_alerts(4)
        await harness.writing(5)  # all four wait behind a full backlog, none refused
        release.set()
        await harness.until(lambda: queue.depth() == 0, timeout=10)
        assert sum(i.occurrences for i in harness.store.list_incidents()) == 5
    finally:
        release.set()
        await harness.close()
