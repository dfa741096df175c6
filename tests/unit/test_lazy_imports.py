"""The bot loads no SDK its configuration does not use: each is imported where it is first
needed (issue 13's memory budget: with every SDK imported at the top, an idle bot on the
embedded defaults sat at 111 MB, 40 of them SDKs it never called).

Each check runs a fresh interpreter: this one has long imported them all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# What the embedded defaults (SQLite, console, offline analyzer, no AWS, no Jira) never call.
UNUSED_ON_DEFAULTS = (
    "anthropic",
    "boto3",
    "botocore",
    "jira",
    "matplotlib",
    "mcp",
    "slack_bolt",
    "slack_sdk",
)
LOADED = "sorted(m for m in sys.argv[1:] if m in sys.modules)"

# `incident-bot run`, which says which of them it loaded once it receives alerts, then stops
# itself with the SIGTERM an orchestrator would send.
RUN_AND_LIST = f"""
import logging, os, signal, sys
from bot import cli

class Receiving(logging.Handler):
    def emit(self, record):
        if record.getMessage().startswith("receiving alerts"):
            print("loaded:", *{LOADED}, flush=True)
            os.kill(os.getpid(), signal.SIGTERM)

logging.getLogger("bot.app").addHandler(Receiving())
sys.exit(cli.main(["run"]))
"""


def test_importing_the_bot_and_its_commands_loads_no_sdk():
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, bot.app, bot.cli; print(*{LOADED})",
            *UNUSED_ON_DEFAULTS,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert completed.stdout.split() == []


@pytest.mark.integration
def test_run_on_the_embedded_defaults_loads_no_sdk(tmp_path: Path):
    configures = ("SLACK_", "ANTHROPIC_", "AWS_", "JIRA_", "EMAIL_", "SMTP_", "STORE", "ALERT_")
    env = {k: v for k, v in os.environ.items() if not k.startswith((*configures, "WEBHOOK_"))}
    env.update(SQLITE_PATH=str(tmp_path / "run.db"), WEBHOOK_PORT="0", PYTHONUNBUFFERED="1")

    completed = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST, *UNUSED_ON_DEFAULTS],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert completed.returncode == 0, completed.stderr
    assert "stopped" in completed.stderr
    assert completed.stdout.splitlines() == ["loaded:"]
