"""The deployment templates on moto's CloudFormation, and a real `incident-bot run` on what they
made: the stack's table is the one the store expects, and alerts from every source the stacks
wire (an alarm through the topic, an alarm state change through the EventBridge rule, log
lines through the forwarder) reach the store.

moto's CloudFormation skips AWS::SNS::Subscription and AWS::SQS::QueuePolicy and ignores the
table's TTL. So the subscription is made here from the template's own properties; the queue
policy is checked by its content in tests/unit/test_deploy_templates.py; the TTL attribute is
compared with the one `DynamoStore.create_tables()` sets. moto's CloudWatch alarm is skipped
too (no alarm fires in moto): the test publishes the notification such an alarm sends.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode.decode import decode_str

from incidents.dynamodb import DynamoStore
from incidents.models import Severity
from tests.conftest import FIXTURES
from tests.fakes.bot_process import BotProcess
from tests.fakes.moto_server import aws, moto_server  # noqa: F401

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("aws"),
    # The gaps named above, which moto announces on every deploy ("." for "::": a warning
    # filter cannot hold a colon).
    pytest.mark.filterwarnings(
        "ignore:Tried to parse AWS..(SNS..Subscription|SQS..QueuePolicy|CloudWatch..Alarm) "
        ":UserWarning"
    ),
]

DEPLOY = Path(__file__).parents[2] / "deploy"
STACK = "incident-responder"
WIRING = "incident-responder-cloudwatch"
PAYLOADS = FIXTURES / "payloads"
# What each source becomes: the parser that read it.
EXPECTED_PARSERS = {"cloudwatch_alarm", "cloudwatch_alarm_eventbridge", "cloudwatch_logs"}


def _template(name: str) -> dict[str, Any]:
    decoded: dict[str, Any] | None
    decoded, errors = decode_str((DEPLOY / name).read_text())
    assert not errors and decoded is not None, errors
    return decoded


def _deploy(name: str, stack: str, parameters: dict[str, str]) -> dict[str, str]:
    """Creates the stack as `aws cloudformation deploy` would, and returns its outputs."""
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(
        StackName=stack,
        TemplateBody=(DEPLOY / name).read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    cloudformation.get_waiter("stack_create_complete").wait(
        StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    (described,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in described["Outputs"]}


def _table_shape(table: dict[str, Any]) -> dict[str, Any]:
    def name(entry: dict[str, Any]) -> str:
        return str(entry.get("AttributeName") or entry.get("IndexName"))

    return {
        "KeySchema": table["KeySchema"],
        "AttributeDefinitions": sorted(table["AttributeDefinitions"], key=name),
        "BillingMode": table["BillingModeSummary"]["BillingMode"],
        "GlobalSecondaryIndexes": sorted(
            (
                {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
                for index in table["GlobalSecondaryIndexes"]
            ),
            key=name,
        ),
    }


def test_the_stacks_table_is_the_one_the_store_makes():
    outputs = _deploy("template.yaml", STACK, {})
    assert outputs["TableName"] == f"{outputs['TablePrefix']}-store"
    reference = DynamoStore("reference")
    reference.create_tables()
    reference.close()
    dynamodb = boto3.client("dynamodb")
    made = dynamodb.describe_table(TableName=outputs["TableName"])["Table"]
    expected = dynamodb.describe_table(TableName="reference-store")["Table"]
    assert _table_shape(made) == _table_shape(expected)
    assert len(made["GlobalSecondaryIndexes"]) == 4
    # moto ignores the template's TTL: compare it with the attribute the store sets.
    ttl = dynamodb.describe_time_to_live(TableName="reference-store")["TimeToLiveDescription"]
    properties = _template("template.yaml")["Resources"]["StoreTable"]["Properties"]
    assert properties["TimeToLiveSpecification"] == {
        "AttributeName": ttl["AttributeName"],
        "Enabled": True,
    }


def _subscribe_as_the_template_does(outputs: dict[str, str], raw: str) -> None:
    """moto skips AWS::SNS::Subscription: make the same subscription, from the template's
    properties, between the topic and the queue the stack created."""
    template = _template("template.yaml")
    properties = template["Resources"]["AlertSubscription"]["Properties"]
    assert properties["TopicArn"] == {"Ref": "AlertTopic"}
    assert properties["Endpoint"] == {"Fn::GetAtt": ["AlertQueue", "Arn"]}
    assert properties["RawMessageDelivery"] == {"Ref": "RawMessageDelivery"}
    assert template["Outputs"]["AlertTopicArn"]["Value"] == {"Ref": "AlertTopic"}
    assert template["Outputs"]["AlertQueueArn"]["Value"] == {"Fn::GetAtt": ["AlertQueue", "Arn"]}
    sns = boto3.client("sns")
    subscription = sns.subscribe(
        TopicArn=outputs["AlertTopicArn"],
        Protocol=properties["Protocol"],
        Endpoint=outputs["AlertQueueArn"],
        Attributes={"RawMessageDelivery": raw},
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription)["Attributes"]
    assert attributes["RawMessageDelivery"] == raw


def _bot_env(outputs: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The environment a host gets: this process's AWS endpoint and credentials (moto), and
    the settings the stack's BotEnvironment output names."""
    settings = dict(pair.split("=", 1) for pair in outputs["BotEnvironment"].split())
    assert settings == {
        "STORE": "dynamodb",
        "DYNAMODB_TABLE_PREFIX": outputs["TablePrefix"],
        "ALERT_QUEUE_URL": outputs["AlertQueueUrl"],
        "SQS_VISIBILITY_TIMEOUT": "20",
        "AWS_REGION": "us-east-1",
    }
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "ANTHROPIC_", "WEBHOOK_", "JIRA_", "SQS_", "STORE"))
    }
    env.update(
        settings,
        SQS_WAIT_SECONDS="1",
        WEBHOOK_PORT="0",
        SQLITE_PATH=str(tmp_path / "not-used.db"),
        PYTHONUNBUFFERED="1",
    )
    return env


def _payload(name: str) -> Any:
    """A recorded payload of tests/fixtures/payloads (origins in its SOURCES.md)."""
    return json.loads((PAYLOADS / name).read_text())


def _publish_alarm(topic_arn: str) -> None:
    """What a CloudWatch alarm whose action is the topic sends: the alarm JSON as Message."""
    recorded = _payload("cloudwatch-alarm-sns/rheoceros_sns-lambda_metric-alarm_ALARM.json")
    boto3.client("sns").publish(
        TopicArn=topic_arn, Message=recorded["Records"][0]["Sns"]["Message"]
    )


def _put_alarm_state_change() -> None:
    """An alarm state change as CloudWatch puts it on the default event bus; the stack's rule
    routes it to the queue."""
    event = _payload(
        "cloudwatch-alarm-eventbridge/awsdocs-cw-guide_state-change-for-a-single-metric-alarm.json"
    )
    answer = boto3.client("events").put_events(
        Entries=[
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
                "Resources": event["resources"],
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0


def _forward_logs(queue_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The forwarder Lambda's own inline code (moto runs no Lambda without Docker), called with
    a recorded CloudWatch Logs subscription event, in the environment the template gives it."""
    template = _template("cloudwatch-integration.yaml")
    function = template["Resources"]["LogForwarder"]["Properties"]
    assert function["Environment"]["Variables"] == {"ALERT_QUEUE_URL": {"Ref": "AlertQueueUrl"}}
    monkeypatch.setenv("ALERT_QUEUE_URL", queue_url)
    namespace: dict[str, Any] = {}
    exec(compile(function["Code"]["ZipFile"], "LogForwarder/index.py", "exec"), namespace)
    event = _payload("cloudwatch-logs-subscription/powertools-py_cloudWatchLogEvent.json")
    namespace["handler"](event, None)


def _parsers_recorded(prefix: str) -> set[str]:
    store = DynamoStore(prefix)
    since = datetime.now(UTC) - timedelta(hours=1)
    try:
        return {
            occurrence.alert.parser
            for severity in Severity
            for occurrence in store.alerts_by_severity(severity, since)
        }
    finally:
        store.close()


async def _wait_for_parsers(prefix: str, expected: set[str]) -> None:
    found: set[str] = set()
    for _ in range(60):
        found = await asyncio.to_thread(_parsers_recorded, prefix)
        if found >= expected:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"recorded only {sorted(found)}, expected {sorted(expected)}")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("raw", ["false", "true"])
async def test_the_bot_records_alerts_from_every_source_the_stacks_wire(
    raw: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    outputs = _deploy("template.yaml", STACK, {"RawMessageDelivery": raw})
    _subscribe_as_the_template_does(outputs, raw)
    _deploy(
        "cloudwatch-integration.yaml",
        WIRING,
        {key: outputs[key] for key in ("AlertTopicArn", "AlertQueueArn", "AlertQueueUrl")},
    )
    dynamodb = boto3.client("dynamodb")
    assert dynamodb.list_tables()["TableNames"] == [outputs["TableName"]]
    env = _bot_env(outputs, tmp_path)

    bot = BotProcess(env, tmp_path / "not-used.db")
    await bot.start(wait_connected=False)
    try:
        _publish_alarm(outputs["AlertTopicArn"])
        _put_alarm_state_change()
        _forward_logs(outputs["AlertQueueUrl"], monkeypatch)
        await _wait_for_parsers(outputs["TablePrefix"], EXPECTED_PARSERS)
    finally:
        code = await bot.stop()
    assert code == 0, "\n".join(bot.lines)

    # The bot used the stack's table and made none of its own.
    assert dynamodb.list_tables()["TableNames"] == [outputs["TableName"]]
    query = _cli(env, "query", "--severity", "HIGH", "--since", "1h", "--json")
    assert query.returncode == 0, query.stderr
    rows = [json.loads(line) for line in query.stdout.splitlines()]
    assert {row["parser"] for row in rows} == EXPECTED_PARSERS
    depth = boto3.client("sqs").get_queue_attributes(
        QueueUrl=outputs["AlertQueueUrl"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert depth == "0"
    # The deployment check the README asks for passes on the stack: table, queue and its DLQ.
    doctor = _cli(env, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    table = f"DynamoDB table {outputs['TablePrefix']}-store: ACTIVE, 4 indexes"
    assert f"ok    store      {table}, TTL off" in doctor.stdout, "moto's stacks ignore TTL"
    assert "DLQ configured" in doctor.stdout
