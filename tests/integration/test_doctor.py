"""`incident-bot doctor` against every local fake: all ok, then each failure with its reason."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from tests.fakes.anthropic_server import FakeAnthropic, Text
from tests.fakes.jira_server import JiraFake
from tests.fakes.moto_server import aws, moto_server  # noqa: F401
from tests.fakes.pagerduty_server import ROUTING_KEY, PagerDutyFake
from tests.fakes.slack_emulator import SlackEmulator
from tests.fakes.smtp_sink import SmtpSink
from tests.fakes.teams_server import TeamsFake

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aws")]


async def _doctor(env: dict[str, str]) -> tuple[int, list[str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "doctor", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None, stderr
    return process.returncode, stdout.decode().splitlines()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _queue_with_dlq() -> str:
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
    redrive = {"deadLetterTargetArn": arn["QueueArn"], "maxReceiveCount": "5"}
    url: str = sqs.create_queue(
        QueueName="alerts", Attributes={"RedrivePolicy": json.dumps(redrive)}
    )["QueueUrl"]
    return url


@dataclass
class Services:
    """Every service the doctor checks, as a local fake, and the environment of a bot
    configured for all of them."""

    slack: SlackEmulator
    claude: FakeAnthropic
    pagerduty: PagerDutyFake
    teams: TeamsFake
    sink: SmtpSink
    runbooks: Path
    env: dict[str, str]


@asynccontextmanager
async def _services(tmp_path: Path) -> AsyncIterator[Services]:
    async with (
        SlackEmulator(channels=("C1", "C2"), not_member=("C2",)) as slack,
        FakeAnthropic(api_key="sk-ant-good") as claude,
        JiraFake(email="bot@example.com", token="jira-token") as jira,
        PagerDutyFake() as pagerduty,
        TeamsFake() as teams,
    ):
        sink = SmtpSink()
        sink.start()
        try:
            runbooks = tmp_path / "runbooks.yaml"
            runbooks.write_text(
                "runbooks: [{name: Disks, url: 'https://wiki.example.com/disk', "
                "match: {source: '*'}}]"
            )
            env = {
                k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_"))
            }
            env.update(
                SQLITE_PATH=str(tmp_path / "doctor.db"),
                SLACK_BOT_TOKEN="xoxb-test",
                SLACK_APP_TOKEN="xapp-test",
                SLACK_API_URL=slack.api_url,
                SLACK_CHANNEL="C1",
                ANTHROPIC_API_KEY="sk-ant-good",
                ANTHROPIC_BASE_URL=claude.url,
                ALERT_QUEUE_URL=_queue_with_dlq(),
                JIRA_URL=jira.url,
                JIRA_EMAIL="bot@example.com",
                JIRA_API_TOKEN="jira-token",
                JIRA_PROJECT="OPS",
                EMAIL_FROM="bot@example.com",
                EMAIL_TO="oncall@example.com",
                SMTP_HOST=sink.host,
                SMTP_PORT=str(sink.port),
                SMTP_USER=sink.user,
                SMTP_PASSWORD=sink.password,
                SSL_CERT_FILE=sink.ca_file,
                PAGERDUTY_ROUTING_KEY=ROUTING_KEY,
                PAGERDUTY_EVENTS_URL=pagerduty.events_url,
                TEAMS_WEBHOOK_URL=teams.url_for("ops"),
                ONCALL_MENTION="S0ONCALL",
                DIGEST_AT="09:00",
                DIGEST_TZ="Europe/Paris",
                RUNBOOKS_FILE=str(runbooks),
                MCP_TOKEN="doctor-token-0123456789abcdef",
            )
            yield Services(slack, claude, pagerduty, teams, sink, runbooks, env)
        finally:
            sink.stop()


async def test_every_configured_service_is_checked(tmp_path: Path):
    async with _services(tmp_path) as services:
        services.claude.enqueue(Text("pong"))
        code, lines = await _doctor(services.env)

    assert code == 0, lines
    assert [line.split()[:2] for line in lines] == [
        ["ok", "settings"],
        ["ok", "store"],
        ["ok", "slack"],
        ["ok", "claude"],
        ["ok", "sqs"],
        ["ok", "jira"],
        ["ok", "email"],
        ["ok", "pagerduty"],
        ["ok", "teams"],
        ["ok", "escalate"],
        ["ok", "digest"],
        ["ok", "runbooks"],
        ["ok", "mcp"],
        ["--", "mcp-servers"],
    ]
    assert "CRITICAL after 5m, HIGH after 15m; up to 3 reminders mentioning S0ONCALL" in lines[9]
    assert lines[10].endswith("daily at 09:00 Europe/Paris to C1")
    assert lines[11].endswith(f"1 runbook(s) in {services.runbooks}")
    assert "HTTP on at http://127.0.0.1:" in lines[12] and lines[12].endswith("read-only")
    assert "doctor-token" not in "\n".join(lines), "the token is never printed"
    assert services.pagerduty.events == [] and services.teams.posts == {}, (
        "a check pages and posts nothing"
    )
    assert services.sink.messages == [], "a check sends no mail"
    assert services.claude.requests[0].body is not None
    assert services.claude.requests[0].body["max_tokens"] == 1


async def test_each_failing_service_is_named_with_its_reason(tmp_path: Path):
    async with _services(tmp_path) as services:
        env = {
            **services.env,
            "SLACK_CHANNEL_CRITICAL": "C2",
            "ANTHROPIC_API_KEY": "sk-ant-wrong",
            "ALERT_QUEUE_URL": boto3.client("sqs").create_queue(QueueName="bare")["QueueUrl"],
            "JIRA_API_TOKEN": "wrong",
            "SMTP_PASSWORD": "wrong",
            "PAGERDUTY_EVENTS_URL": f"{services.teams.url}/v2/enqueue",
            "TEAMS_WEBHOOK_URL": f"http://127.0.0.1:{_closed_port()}/workflows/x?sig=s3cr3t",
        }
        code, lines = await _doctor(env)

    assert code == 1
    failures = {line.split()[1]: line for line in lines if line.startswith("FAIL")}
    assert set(failures) == {"slack", "claude", "sqs", "jira", "email", "pagerduty", "teams"}
    assert "refused the login for bot" in failures["email"]
    assert (
        "PagerDuty Events v2 is not at" in failures["pagerduty"]
        and "(404)" in failures["pagerduty"]
    )
    assert "unreachable" in failures["teams"] and "s3cr3t" not in failures["teams"]
    assert "not in C2" in failures["slack"]
    assert "AuthenticationError" in failures["claude"]
    assert "no redrive policy" in failures["sqs"]
    assert "credentials (401)" in failures["jira"]
