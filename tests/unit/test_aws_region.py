"""Every boto3 client the bot makes is in the region of `AWS_REGION`, which botocore alone
would ignore (it reads only `AWS_DEFAULT_REGION`): the SQS consumer, SES, and the CloudWatch
clients of the context and the graphs. The DynamoDB store and doctor's SQS check are proved
through the command line against moto (tests/integration/test_dynamodb_cli.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.components import (
    aws_clients,
    build_ingestor,
    build_store,
    email_transport,
    sqs_consumer,
)
from bot.settings import load_settings
from ingest.group_commit import GroupCommitter
from notify.email_transport import SesTransport

REGION = "eu-west-3"


def test_every_client_the_bot_makes_is_in_aws_region(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    for name in ("AWS_DEFAULT_REGION", "AWS_PROFILE", "ALERT_QUEUE_URL", "STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_REGION", REGION)
    settings = load_settings(
        sqlite_path=tmp_path / "incidents.db",
        alert_queue_url=f"https://sqs.{REGION}.amazonaws.com/123456789012/alerts",
        email_from="bot@example.com",
        email_to="oncall@example.com",
        email_transport="ses",
    )

    clients = aws_clients(settings)
    assert clients("cloudwatch", None).meta.region_name == REGION
    assert clients("logs", "ap-south-1").meta.region_name == "ap-south-1", "the alarm's own"
    transport = email_transport(settings)
    assert isinstance(transport, SesTransport)
    assert transport.client.meta.region_name == REGION
    store = build_store(settings)
    with ThreadPoolExecutor(max_workers=1) as executor:
        consumer = sqs_consumer(settings, GroupCommitter(build_ingestor(settings, store), executor))
    store.close()
    assert consumer is not None
    assert consumer.sqs.meta.region_name == REGION
