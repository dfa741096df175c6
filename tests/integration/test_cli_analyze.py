"""`incident-bot analyze` as a real process: the report, `--json`, and unreadable payloads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from incidents.sqlite_store import SqliteStore

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parents[1] / "fixtures" / "payloads"
ALARM = (
    FIXTURES / "cloudwatch-alarm-sns" / "lambda-go_cloudwatch-alarm-sns-payload-single-metric.json"
)


def _analyze(
    tmp_path: Path, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, SQLITE_PATH=str(tmp_path / "cli.db"), COLUMNS="160")
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
    assert report["analysis"] is None


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


def test_a_missing_file_exits_2(tmp_path: Path):
    completed = _analyze(tmp_path, str(tmp_path / "nope.json"))

    assert completed.returncode == 2
    assert completed.stderr.decode().startswith("incident-bot: cannot read")
