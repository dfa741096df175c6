"""`incident-bot run` consuming from SQS: an alarm published to SNS reaches the console."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import boto3
import pytest

from bot.app import STOP_WITHIN
from tests.conftest import FIXTURES
from tests.fakes.moto_server import aws, moto_server  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aws")]


async def test_run_consumes_an_alarm_published_to_sns(tmp_path: Path):
    sqs, sns = boto3.client("sqs"), boto3.client("sns")
    queue_url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_"))}
    env.update(
        ALERT_QUEUE_URL=queue_url,
        SQS_WAIT_SECONDS="1",
        WEBHOOK_PORT="0",
        SQLITE_PATH=str(tmp_path / "run.db"),
        PYTHONUNBUFFERED="1",
        COLUMNS="200",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    try:
        alarm = json.loads(
            (FIXTURES / "payloads/cloudwatch-alarm-sns/"
             "rheoceros_sns-lambda_metric-alarm_ALARM.json").read_text()
        )["Records"][0]["Sns"]["Message"]  # fmt: skip
        sns.publish(TopicArn=topic, Message=alarm)

        async def new_incident() -> str:
            assert process.stdout is not None
            async for line in process.stdout:
                if line.startswith(b"NEW"):
                    return line.decode()
            raise AssertionError("the bot exited without printing the incident")

        line = await asyncio.wait_for(new_incident(), 30)
        assert "metric_emitting_node_failure" in line
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
    assert code == 0
    depth = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert depth == "0"


async def test_a_port_that_cannot_open_stops_the_sqs_consumer_started_before_it(tmp_path: Path):
    queue_url = boto3.client("sqs").create_queue(QueueName="alerts")["QueueUrl"]
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_"))}
    env.update(
        ALERT_QUEUE_URL=queue_url,
        SQS_WAIT_SECONDS="1",
        WEBHOOK_HOST="127.0.0.1",
        WEBHOOK_PORT=str(taken.getsockname()[1]),
        SQLITE_PATH=str(tmp_path / "run.db"),
        PYTHONUNBUFFERED="1",
        COLUMNS="200",
    )
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "run", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            # Start-up (imports, the store) plus a stop bounded by STOP_WITHIN.
            _, stderr = await asyncio.wait_for(process.communicate(), 20 + STOP_WITHIN)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError("the bot hung after failing to open its port") from None
    finally:
        taken.close()
    assert process.returncode != 0
    assert "address already in use" in stderr.decode().lower()
