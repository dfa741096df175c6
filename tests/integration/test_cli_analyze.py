"""`incident-bot analyze` as a real process: the report, `--json`, and unreadable payloads."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from incidents.sqlite import SqliteStore
from tests.conftest import BRIEF_ALERT
from tests.fakes.anthropic_server import FakeAnthropic

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parents[1] / "fixtures" / "payloads"
ALARM = (
    FIXTURES / "cloudwatch-alarm-sns" / "lambda-go_cloudwatch-alarm-sns-payload-single-metric.json"
)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No Claude key and no AWS configuration: the quick start's embedded defaults."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANTHROPIC_", "AWS_", "SLACK_", "WEBHOOK_"))
    }
    return dict(env, SQLITE_PATH=str(tmp_path / "cli.db"), COLUMNS="160", **extra)


def _analyze(
    tmp_path: Path, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = _env(tmp_path)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "analyze", *args],
        input=stdin,
        env=env,
        capture_output=True,
        timeout=60,
    )


def test_json_output_has_alerts_incident_and_analysis(tmp_path: Path):
    completed = _analyze(tmp_path, "--json", str(ALARM))

    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    [alert] = report["alerts"]
    assert alert["source"] == "cloudwatch"
    assert alert["title"] == "EXAMPLE"
    assert alert["severity"] == "HIGH"
    assert alert["status"] == "firing"
    assert len(alert["fingerprint"]) == 16
    assert report["incident"]["status"] == "open"
    assert report["incident"]["occurrences"] == 1
    assert report["incident"]["id"].startswith("INC-")
    analysis = report["analysis"]
    assert analysis["analyzer"] == "offline"
    assert analysis["model"] is None and analysis["cached"] is False
    assert analysis["cost_usd"] == 0
    for key in ("root_cause", "severity", "severity_justification", "impact", "confidence"):
        assert analysis[key] not in (None, "")
    assert isinstance(analysis["remediation_steps"], list) and analysis["remediation_steps"]
    assert any("AWS is not configured" in note for note in analysis["context_notes"])
    assert report["incidents"][0]["analysis"] == analysis


def test_the_same_payload_twice_is_one_incident_counted_once_per_delivery(tmp_path: Path):
    first = json.loads(_analyze(tmp_path, "--json", str(ALARM)).stdout)
    second = json.loads(_analyze(tmp_path, "--json", str(ALARM)).stdout)

    assert second["incident"]["id"] == first["incident"]["id"]
    assert second["alerts"][0]["outcome"] == "duplicate"
    assert second["incident"]["occurrences"] == 1


def test_stdin_and_the_readable_report(tmp_path: Path):
    completed = _analyze(tmp_path, "-", stdin=b"CRITICAL: disk /data on db-1 is 99% full")

    assert completed.returncode == 0, completed.stderr
    text = completed.stdout.decode()
    assert "CRITICAL: disk /data on db-1 is 99% full" in text
    assert "INC-" in text


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty payload"),
        (b'{"title": ', "malformed JSON"),
        (b"\xff\xfe\x00\x01binary", "binary payload"),
        (b"[" * 10_000 + b"]" * 10_000, "nested deeper than"),
        (b"x" * (1024 * 1024 + 10), "over the 1048576 byte limit"),
    ],
)
def test_an_unreadable_payload_exits_2_with_one_line_and_is_kept(tmp_path: Path, payload, reason):
    source = tmp_path / "payload.bin"
    source.write_bytes(payload)

    completed = _analyze(tmp_path, str(source))

    assert completed.returncode == 2
    lines = completed.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert reason in lines[0]
    assert completed.stdout == b""
    store = SqliteStore(tmp_path / "cli.db")
    [letter] = store.dead_letters()
    store.close()
    assert letter.reason in lines[0]
    assert letter.payload == payload[: 1024 * 1024 + 1]


def test_a_lone_surrogate_is_recorded_with_its_escape_not_a_traceback(tmp_path: Path):
    source = tmp_path / "cut-emoji.json"
    source.write_bytes(b'{"title":"Checkout failing \\ud83d","message":"x","severity":"HIGH"}')

    completed = _analyze(tmp_path, "--json", str(source))

    assert completed.returncode == 0, completed.stderr
    [alert] = json.loads(completed.stdout)["alerts"]
    assert alert["title"] == "Checkout failing \\ud83d"


def test_a_missing_file_exits_2(tmp_path: Path):
    completed = _analyze(tmp_path, str(tmp_path / "nope.json"))

    assert completed.returncode == 2
    assert completed.stderr.decode().startswith("incident-bot: cannot read")


def test_the_brief_alert_gets_a_readable_offline_analysis(tmp_path: Path):
    completed = _analyze(tmp_path, "-", stdin=json.dumps(BRIEF_ALERT).encode())

    assert completed.returncode == 0, completed.stderr
    text = completed.stdout.decode()
    assert "ANALYSIS" in text and "(offline" in text
    assert "Root cause:" in text and "app_user" in text
    assert "First steps:" in text and "pg_stat_activity" in text


async def test_with_a_claude_key_the_analysis_comes_from_claude(tmp_path: Path):
    answer = {
        "root_cause": "app_user exhausts max_connections on the orders database.",
        "severity": "HIGH",
        "severity_justification": "Checkout fails.",
        "impact": "Orders.",
        "remediation_steps": [{"action": "Raise the pool limit"}],
        "confidence": 0.8,
    }
    async with FakeAnthropic(default_tool_input=answer) as fake:
        env = _env(tmp_path, ANTHROPIC_API_KEY="sk-ant-test", ANTHROPIC_BASE_URL=fake.url)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "analyze",
            "--json",
            "-",
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(
            process.communicate(json.dumps(BRIEF_ALERT).encode()), timeout=60
        )

    assert process.returncode == 0, stderr
    analysis = json.loads(stdout)["analysis"]
    assert analysis["analyzer"] == "claude"
    assert analysis["model"] == "claude-sonnet-4-6"
    assert analysis["root_cause"] == answer["root_cause"]
    assert analysis["cost_usd"] > 0
    assert len(fake.requests) == 1
    assert fake.requests[0].headers["x-api-key"] == "sk-ant-test"


def test_costs_sums_analyses_per_day_and_source(tmp_path: Path):
    _analyze(tmp_path, "-", stdin=json.dumps(BRIEF_ALERT).encode())
    _analyze(tmp_path, "-", stdin=b"disk /data is 97% full")

    completed = subprocess.run(
        [sys.executable, "-m", "bot.cli", "costs", "--since", "1d"],
        env=_env(tmp_path),
        capture_output=True,
        timeout=60,
    )

    assert completed.returncode == 0, completed.stderr
    text = completed.stdout.decode()
    assert "test" in text and "text" in text
    total = next(line for line in text.splitlines() if "total" in line)
    assert total.split("│")[3].strip() == "2"
    assert total.split("│")[4].strip() == "0"


LONG_NAME = "prod-checkout-alb-5xx-errors-above-threshold-in-us-east-1-for-five-minutes"


def _query_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """With one alert whose name is wider than 80 columns recorded, and no `COLUMNS`: rich's
    width off a terminal is then its 80-column default, the case the issue reported."""
    alert = dict(BRIEF_ALERT, title=LONG_NAME)
    assert _analyze(tmp_path, "-", stdin=json.dumps(alert).encode()).returncode == 0
    env = {
        key: value
        for key, value in _env(tmp_path).items()
        if key not in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
    }
    return dict(env, **extra)


def test_query_into_a_pipe_keeps_long_alert_names_whole(tmp_path: Path):
    completed = subprocess.run(
        [sys.executable, "-m", "bot.cli", "query", "--severity", "high"],
        env=_query_env(tmp_path),
        capture_output=True,
        timeout=60,
    )

    assert completed.returncode == 0, completed.stderr
    text = completed.stdout.decode()
    [row] = [line for line in text.splitlines() if "INC-" in line]
    assert LONG_NAME in row
    assert "…" not in text


def test_query_on_a_terminal_fits_the_window(tmp_path: Path):
    env = _query_env(tmp_path, COLUMNS="80", NO_COLOR="1")
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "query", "--severity", "high"],
        env=env,
        stdout=follower,
        stderr=subprocess.PIPE,
    ) as process:
        os.close(follower)
        output = b""
        while chunk := _read_pty(leader):
            output += chunk
        os.close(leader)
        assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""

    lines = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode()).splitlines()
    assert max(len(line) for line in lines) <= 80
    [row] = [line for line in lines if "INC-" in line]
    assert LONG_NAME not in row and "…" in row


def _read_pty(leader: int) -> bytes:
    """What the process wrote to its terminal; b"" once it has closed it (Linux says EIO)."""
    try:
        return os.read(leader, 4096)
    except OSError:
        return b""


def test_json_output_explains_a_log_line_grouping_by_its_template(tmp_path: Path):
    """Issue 16: an on-call engineer sees why lines were grouped; an alarm, which names
    itself, has no template."""
    lines = [
        "PacketResponder 1 for block blk_38865049064139660 terminating",
        "PacketResponder 2 for block blk_-6952295868487656571 terminating",
    ]
    events = [{"id": str(n), "timestamp": 1_700_000_000_000 + n, "message": m}
              for n, m in enumerate(lines)]  # fmt: skip
    payload = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/aws/hdfs/datanode",
        "logStream": "i-0abc",
        "subscriptionFilters": ["errors"],
        "logEvents": events,
    }
    logs = tmp_path / "logs.json"
    logs.write_text(json.dumps(payload))

    report = json.loads(_analyze(tmp_path, "--json", str(logs)).stdout)
    alarm = json.loads(_analyze(tmp_path, "--json", str(ALARM)).stdout)

    first, second = report["alerts"]
    assert first["template"] == "PacketResponder <*> for block <*> terminating"
    assert first["fingerprint"] == second["fingerprint"]
    assert second["outcome"] == "repeated"
    assert alarm["alerts"][0]["template"] is None
