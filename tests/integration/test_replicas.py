"""Three `incident-bot run` replicas as one bot: the same SQS queue and DynamoDB table on moto
(serving one DynamoDB request at a time, as DynamoDB applies each atomically), the Slack
emulator and the Claude fake. An alarm storm published to SNS must give one root post and at
most one Claude call per problem, with every alert counted once, even when a replica is
killed with SIGKILL in the middle of it."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from incidents.dynamodb import DynamoStore
from incidents.lifecycle import IncidentService
from incidents.models import Incident
from incidents.sqlite import SqliteStore
from ingest.normalize import parse_body
from tests.conftest import FIXTURES
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.bot_process import BotProcess, slack_env
from tests.fakes.moto_server import serialized_aws  # noqa: F401
from tests.fakes.slack_emulator import ApiCall, SlackEmulator

# Each storm takes a minute or two on 2 shared cores: moto serves every DynamoDB request of
# the three replicas one at a time, in the test's own process.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

CHANNEL = "C1"
PROBLEMS = 10
ALERTS = 1_000
REPLICAS = 3
UPDATE_INTERVAL = 1.0
ANALYSIS = {
    "root_cause": "The orders service exhausted its database connections.",
    "severity": "HIGH",
    "severity_justification": "Checkout fails.",
    "impact": "Orders.",
    "remediation_steps": [{"action": "Raise the pool limit"}],
    "confidence": 0.8,
}
_ALARM = json.loads(
    (
        FIXTURES / "payloads/cloudwatch-alarm-sns/rheoceros_sns-lambda_metric-alarm_ALARM.json"
    ).read_text()
)["Records"][0]["Sns"]["Message"]


def alarm_notification(problem: int, n: int) -> str:
    """The recorded CloudWatch alarm notification, as another alarm (one per problem) and
    another state change (one per alert), so that every alert counts in its incident."""
    alarm = json.loads(_ALARM)
    name = f"orders-db-connections-{problem}"
    alarm["AlarmName"] = name
    alarm["AlarmArn"] = alarm["AlarmArn"].rsplit(":", 1)[0] + f":{name}"
    changed = datetime(2026, 11, 24, 9, 0, tzinfo=UTC) + timedelta(milliseconds=n)
    alarm["StateChangeTime"] = changed.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    return json.dumps(alarm)


@dataclass
class Stack:
    queue_url: str
    topic_arn: str
    prefix: str

    def store(self) -> DynamoStore:
        return DynamoStore(table_prefix=self.prefix)

    def counts(self) -> dict[str, int]:
        store = self.store()
        try:
            return {i.id: i.occurrences for i in store.list_incidents(limit=100)}
        finally:
            store.close()


@pytest.fixture
def stack(serialized_aws: str) -> Iterator[Stack]:  # noqa: F811
    """Queue with a DLQ, topic subscribed to it, and the table: what deploy/template.yaml
    makes, under names of this test's own (the serialized moto is not wiped between tests)."""
    name = f"replicas-{uuid.uuid4().hex[:8]}"
    sqs, sns = boto3.client("sqs"), boto3.client("sns")
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = _queue_arn(sqs, dlq)
    queue_url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": "5",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}),
        },
    )["QueueUrl"]
    topic = sns.create_topic(Name=name)["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=_queue_arn(sqs, queue_url))
    store = DynamoStore(table_prefix=name)
    store.create_tables()
    store.close()
    yield Stack(queue_url, topic, name)


def _queue_arn(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


@pytest.fixture
async def emulator() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(channels=(CHANNEL,)) as started:
        yield started


@pytest.fixture
async def claude() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(default_tool_input=ANALYSIS) as started:
        yield started


def _env(
    tmp_path: Path, emulator: SlackEmulator, claude: FakeAnthropic, stack: Stack
) -> dict[str, str]:
    aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    return slack_env(
        tmp_path,
        emulator.api_url,
        SLACK_CHANNEL=CHANNEL,
        STORE="dynamodb",
        DYNAMODB_TABLE_PREFIX=stack.prefix,
        ALERT_QUEUE_URL=stack.queue_url,
        SQS_WAIT_SECONDS="1",
        SQS_VISIBILITY_TIMEOUT="5",
        REPLICA_LEASE="10s",
        UPDATE_INTERVAL=f"{UPDATE_INTERVAL}s",
        # One workspace, three replicas: each keeps a third of Slack's pace.
        SLACK_POST_RATE=f"1/{REPLICAS}s",
        SLACK_UPDATE_RATE=f"{50 // REPLICAS}/m",
        ANTHROPIC_API_KEY="sk-ant-test",
        ANTHROPIC_BASE_URL=claude.url,
        **aws,
    )


async def _replicas(env: dict[str, str], tmp_path: Path) -> list[BotProcess]:
    bots = [BotProcess(env, tmp_path / f"unused-{n}.db") for n in range(REPLICAS)]
    await asyncio.gather(*(bot.start() for bot in bots))
    return bots


def _publish_storm(topic_arn: str) -> None:
    """1,000 alarm notifications, 10 problems interleaved, 10 per PublishBatch call."""
    sns = boto3.client("sns")
    entries = [
        {"Id": str(n), "Message": alarm_notification(n % PROBLEMS, n)} for n in range(ALERTS)
    ]
    for start in range(0, ALERTS, 10):
        answer = sns.publish_batch(
            TopicArn=topic_arn, PublishBatchRequestEntries=entries[start : start + 10]
        )
        assert not answer.get("Failed"), answer


async def _until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.5)


def _root_posts(emulator: SlackEmulator) -> list[ApiCall]:
    return [
        call
        for call in emulator.calls_to("chat.postMessage")
        if call.ok and not call.params.get("thread_ts")
    ]


def _posted_incidents(emulator: SlackEmulator) -> list[str]:
    return [
        call.params["metadata"]["event_payload"]["incident_id"] for call in _root_posts(emulator)
    ]


async def _settled(stack: Stack, emulator: SlackEmulator) -> dict[str, int]:
    """Every alert counted, and every incident's one message showing its final count."""

    def counted() -> bool:
        counts = stack.counts()
        return len(counts) == PROBLEMS and sum(counts.values()) >= ALERTS

    await _until(counted, 120, f"{ALERTS} alerts counted")
    counts = stack.counts()

    def shown() -> bool:
        store = stack.store()
        try:
            refs = {incident_id: store.message_ref(incident_id) for incident_id in counts}
        finally:
            store.close()
        return all(
            ref is not None
            and f"*Occurrences*\\n{counts[incident_id]}"
            in json.dumps(emulator.message(ref.ts).blocks)
            for incident_id, ref in refs.items()
        )

    await _until(shown, 60, "every message showing its final count")
    return counts


async def test_three_replicas_post_each_problem_once_and_ask_claude_once_per_problem(
    tmp_path: Path, stack: Stack, emulator: SlackEmulator, claude: FakeAnthropic
):
    bots = await _replicas(_env(tmp_path, emulator, claude, stack), tmp_path)
    try:
        started = time.monotonic()
        await asyncio.to_thread(_publish_storm, stack.topic_arn)
        counts = await _settled(stack, emulator)
        storm = time.monotonic() - started
        await asyncio.sleep(3 * UPDATE_INTERVAL)  # the last coalesced updates
    finally:
        codes = await asyncio.gather(*(bot.stop() for bot in bots))
    assert codes == [0] * REPLICAS

    assert sorted(counts.values()) == [ALERTS // PROBLEMS] * PROBLEMS, counts
    posted = _posted_incidents(emulator)
    assert sorted(posted) == sorted(counts), "exactly one root post per incident"
    assert len(claude.requests) <= PROBLEMS
    updates = len(emulator.calls_to("chat.update"))
    bound = PROBLEMS * (math.ceil(storm / UPDATE_INTERVAL) + 4)
    assert updates <= bound, f"{updates} updates for a {storm:.1f}s storm: not coalesced"
    working = [bot for bot in bots if any("consuming alerts" in line for line in bot.lines)]
    assert len(working) == REPLICAS


async def test_a_replica_killed_mid_storm_loses_no_alert_and_duplicates_no_post(
    tmp_path: Path, stack: Stack, emulator: SlackEmulator, claude: FakeAnthropic
):
    bots = await _replicas(_env(tmp_path, emulator, claude, stack), tmp_path)
    victim = bots[0]
    try:
        publishing = asyncio.create_task(asyncio.to_thread(_publish_storm, stack.topic_arn))
        await _until(lambda: sum(stack.counts().values()) >= ALERTS // 4, 60, "a quarter")
        victim.process.send_signal(signal.SIGKILL)
        await victim.process.wait()
        await publishing
        counts = await _settled(stack, emulator)
        await asyncio.sleep(3 * UPDATE_INTERVAL)
    finally:
        codes = await asyncio.gather(*(bot.stop() for bot in bots[1:]))
        await victim.session.close()
    assert codes == [0] * (REPLICAS - 1)
    assert victim.process.returncode == -signal.SIGKILL

    assert sorted(counts.values()) == [ALERTS // PROBLEMS] * PROBLEMS, counts
    assert sorted(_posted_incidents(emulator)) == sorted(counts), "no post duplicated"
    assert len(claude.requests) <= PROBLEMS
    depth = boto3.client("sqs").get_queue_attributes(
        QueueUrl=stack.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert depth == "0"


async def test_a_post_made_by_a_replica_that_died_before_recording_it_is_not_repeated(
    tmp_path: Path, emulator: SlackEmulator
):
    """The window no lease can close: the replica posted, then died before storing the
    message's ts. The replica that takes its lease over finds the post by its metadata."""
    database = tmp_path / "bot.db"
    store = SqliteStore(database)
    [alert] = parse_body(alarm_notification(0, 0).encode(), datetime.now(UTC)).alerts
    outcome = IncidentService(store).record(alert)
    incident: Incident | None = outcome.incident
    assert incident is not None
    store.acquire_lease(f"slack:{incident.id}", "dead", datetime.now(UTC), timedelta(seconds=2))
    store.close()
    dead_replica = AsyncWebClient(token="xoxb-test", base_url=emulator.api_url)
    posted = await dead_replica.chat_postMessage(
        channel=CHANNEL,
        text=f"{incident.id} posted by the dead replica",
        metadata={"event_type": "incident_posted", "event_payload": {"incident_id": incident.id}},
    )
    orphan = str(posted["ts"])

    bot = BotProcess(slack_env(tmp_path, emulator.api_url, SQLITE_PATH=str(database)), database)
    await bot.start()
    try:
        await bot.wait_line(rf"{incident.id} was already posted by a replica that stopped")

        def recorded() -> str | None:
            opened = SqliteStore(database)
            ref = opened.message_ref(incident.id)
            opened.close()
            return ref.ts if ref else None

        ts = await emulator.wait_for(recorded, timeout=15)
    finally:
        assert await bot.stop() == 0
    assert ts == orphan
    assert len(_root_posts(emulator)) == 1, "updated, not posted again"
    assert emulator.message(orphan).updates >= 1
    assert "Occurrences" in json.dumps(emulator.message(orphan).blocks)
