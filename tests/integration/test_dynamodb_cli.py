"""`STORE=dynamodb` through the command line, against moto's DynamoDB: the same incidents as
SQLite would keep, in the tables named with `DYNAMODB_TABLE_PREFIX`, in the region of
`AWS_REGION` or `AWS_DEFAULT_REGION`, and one line instead of a traceback without either."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from incidents.dynamodb import DynamoStore
from tests.conftest import BRIEF_ALERT
from tests.fakes.moto_server import REGION, aws, moto_server  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aws")]

# Not the region the `aws` fixture gives boto3: a table found there was made there.
ELSEWHERE = "eu-west-1"


def _cli(
    *args: str,
    stdin: bytes | None = None,
    drop: tuple[str, ...] = (),
    extra: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """The command as a process, with the `aws` fixture's environment less `drop` plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "ANTHROPIC_")) and k not in drop
    }
    env.update(STORE="dynamodb", DYNAMODB_TABLE_PREFIX="cli-test", **(extra or {}))
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        input=stdin,
        env=env,
        capture_output=True,
        timeout=60,
    )


def test_init_store_then_alerts_land_in_dynamodb(tmp_path: Path):
    init = _cli("init-store")
    assert init.returncode == 0, init.stderr
    assert init.stdout.decode().strip() == "ready: DynamoDB tables cli-test-*"

    first = json.loads(
        _cli("analyze", "--json", "-", stdin=json.dumps(BRIEF_ALERT).encode()).stdout
    )
    second = json.loads(
        _cli("analyze", "--json", "-", stdin=json.dumps(BRIEF_ALERT).encode()).stdout
    )

    assert second["incident"]["id"] == first["incident"]["id"]
    assert second["incident"]["occurrences"] == 2
    assert first["analysis"]["analyzer"] == "offline"
    store = DynamoStore("cli-test")
    incident = store.get_incident(first["incident"]["id"])
    store.close()
    assert incident is not None and incident.occurrences == 2

    query = _cli("query", "--severity", "high", "--since", "24h", "--json")
    assert query.returncode == 0, query.stderr
    rows = [json.loads(line) for line in query.stdout.decode().splitlines()]
    assert [row["incident_id"] for row in rows] == [first["incident"]["id"]] * 2
    assert {row["severity"] for row in rows} == {"HIGH"}
    none = _cli("query", "--severity", "CRITICAL", "--json")
    assert none.returncode == 0 and none.stdout == b""

    doctor = _cli("doctor")
    assert doctor.returncode == 0, doctor.stdout
    said = "ok    store      DynamoDB table cli-test-store: ACTIVE, 4 indexes, TTL on expires_at"
    assert said in doctor.stdout.decode()


@pytest.mark.parametrize(
    "command",
    [("init-store",), ("run",), ("doctor",), ("query", "--severity", "high"), ("costs",)],
    ids=lambda command: command[0],
)
def test_without_a_region_each_command_says_what_to_set_in_one_line(command: tuple[str, ...]):
    """The `aws` fixture hides any AWS config file, so no profile can supply a region."""
    completed = _cli(*command, drop=("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"))

    assert completed.returncode != 0
    assert completed.stdout == b""
    assert completed.stderr.decode().splitlines() == [
        "incident-bot: configuration error: STORE=dynamodb needs an AWS region: "
        "set AWS_REGION (or AWS_DEFAULT_REGION)"
    ]


def test_aws_region_alone_is_the_region_of_every_client():
    """botocore reads only AWS_DEFAULT_REGION; here only AWS_REGION names one, and the table,
    the queue doctor checks and SES's quota are all found in it."""
    sqs = boto3.client("sqs", region_name=ELSEWHERE)
    dlq = sqs.create_queue(QueueName="cli-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
    redrive = {"deadLetterTargetArn": dlq_arn["QueueArn"], "maxReceiveCount": "5"}
    queue = sqs.create_queue(
        QueueName="cli-alerts", Attributes={"RedrivePolicy": json.dumps(redrive)}
    )["QueueUrl"]
    boto3.client("ses", region_name=ELSEWHERE).verify_email_identity(EmailAddress="bot@example.com")
    # The fixture's AWS_DEFAULT_REGION goes: only AWS_REGION names a region.
    only = ("AWS_DEFAULT_REGION",)
    region = {"AWS_REGION": ELSEWHERE}

    init = _cli("init-store", drop=only, extra=region)
    assert init.returncode == 0, init.stderr
    brief = json.dumps(BRIEF_ALERT).encode()
    analyze = _cli("analyze", "--json", "-", stdin=brief, drop=only, extra=region)
    assert analyze.returncode == 0, analyze.stderr
    incident_id = json.loads(analyze.stdout)["incident"]["id"]
    query = _cli("query", "--severity", "HIGH", "--json", drop=only, extra=region)
    assert query.returncode == 0, query.stderr
    assert [json.loads(line)["incident_id"] for line in query.stdout.splitlines()] == [incident_id]
    email = {
        "EMAIL_TRANSPORT": "ses",
        "EMAIL_FROM": "bot@example.com",
        "EMAIL_TO": "oncall@example.com",
    }
    doctor = _cli("doctor", drop=only, extra={"ALERT_QUEUE_URL": queue, **email, **region})
    assert doctor.returncode == 0, doctor.stdout
    lines = doctor.stdout.decode().splitlines()
    assert any(line.startswith("ok    store      DynamoDB table cli-test-store") for line in lines)
    assert any(line.startswith("ok    sqs") for line in lines)
    assert any(line.startswith(f"ok    email      SES {ELSEWHERE}:") for line in lines)

    there = DynamoStore("cli-test", region=ELSEWHERE)
    incident = there.get_incident(incident_id)
    there.close()
    assert incident is not None
    tables = boto3.client("dynamodb", region_name=REGION).list_tables()["TableNames"]
    assert "cli-test-store" not in tables
