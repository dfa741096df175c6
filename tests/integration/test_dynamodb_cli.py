"""`STORE=dynamodb` through the command line, against moto's DynamoDB: the same incidents as
SQLite would keep, in the tables named with `DYNAMODB_TABLE_PREFIX`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from incidents.dynamodb_store import DynamoStore
from tests.conftest import BRIEF_ALERT
from tests.fakes.moto_server import aws, moto_server  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aws")]


def _cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_"))}
    env.update(STORE="dynamodb", DYNAMODB_TABLE_PREFIX="cli-test")
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
