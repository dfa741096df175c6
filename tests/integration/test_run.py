"""`incident-bot run` as a real process: the brief's curl test alert, console output, and a
clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import pytest

pytestmark = pytest.mark.integration

# The product brief's test alert, exactly as written there, with the local URL.
BRIEF_CURL = """curl -X POST "{url}" \\
  -H "Content-Type: application/json" \\
  -H "x-api-key: <your-api-key>" \\
  -d '{{
    "source": "test",
    "title": "Test Error: Database Connection Failed",
    "message": "PostgreSQL connection timeout after 30s\\nError: FATAL: too many connections for role \\"app_user\\"\\nat Connection.connect(connection.js:42)",
    "severity": "HIGH",
    "timestamp": "'$(date -u +%Y-%m-%dT%H:%M:%SZ)'"
  }}'"""  # noqa: E501


class Bot:
    """The process, with its stdout and stderr read line by line on threads."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout: Queue[str] = Queue()
        self.stderr: Queue[str] = Queue()
        for stream, queue in (
            (self.process.stdout, self.stdout),
            (self.process.stderr, self.stderr),
        ):
            threading.Thread(target=self._pump, args=(stream, queue), daemon=True).start()

    @staticmethod
    def _pump(stream, queue: Queue[str]) -> None:
        for line in stream:
            queue.put(line.rstrip("\n"))

    def wait_for(self, queue: Queue[str], pattern: str, timeout: float = 20) -> re.Match[str]:
        seen: list[str] = []
        while True:
            try:
                line = queue.get(timeout=timeout)
            except Empty:
                raise AssertionError(f"no line matching {pattern!r}; saw {seen}") from None
            seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "WEBHOOK_", "ANTHROPIC_"))
    }
    env.update(
        SQLITE_PATH=str(tmp_path / "run.db"),
        WEBHOOK_PORT="0",
        PYTHONUNBUFFERED="1",
        COLUMNS="200",
        UPDATE_INTERVAL="1s",
        **extra,
    )
    return env


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[Bot]:
    started = Bot(_env(tmp_path))
    yield started
    if started.process.poll() is None:
        started.process.kill()
        started.process.wait()


def _curl(url: str) -> dict[str, Any]:
    completed = subprocess.run(
        ["bash", "-c", BRIEF_CURL.format(url=url) + " --silent --show-error"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    answer: dict[str, Any] = json.loads(completed.stdout)
    return answer


def test_the_brief_curl_alert_works_against_run(bot: Bot):
    port = bot.wait_for(bot.stderr, r"receiving alerts on http://127\.0\.0\.1:(\d+)/alerts")[1]
    url = f"http://127.0.0.1:{port}/alerts"

    first = _curl(url)
    new = bot.wait_for(bot.stdout, r"NEW\s+(INC-\w+) HIGH Test Error: Database Connection Failed")
    assert new[1] == first["incidents"][0]

    for _ in range(5):
        again = _curl(url)
        assert again["incidents"] == first["incidents"]
    repeat = bot.wait_for(bot.stdout, r"REPEAT\s+(INC-\w+) .*: (\d+) occurrences")
    assert repeat[1] == first["incidents"][0]
    assert int(repeat[2]) >= 2

    bot.process.send_signal(signal.SIGTERM)
    assert bot.process.wait(timeout=20) == 0
    bot.wait_for(bot.stdout, r"REPEAT\s+INC-\w+ .*: 6 occurrences")
    bot.wait_for(bot.stderr, r"stopped")


def test_run_refuses_an_exposed_receiver_without_a_key(tmp_path: Path):
    completed = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"],
        env=_env(tmp_path, WEBHOOK_HOST="0.0.0.0"),
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        "incident-bot: configuration error: WEBHOOK_HOST=0.0.0.0 exposes the receiver beyond "
        "this machine: set WEBHOOK_API_KEY, or bind to 127.0.0.1"
    ]
