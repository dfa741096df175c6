"""`incident-bot run` as a real child process, for end-to-end tests and benchmarks: its
stderr read line by line, and a session to post alerts to its receiver."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from incidents.sqlite import SqliteStore


class BotProcess:
    """`python -m bot.cli run`, its stderr read line by line, and a session to post alerts."""

    def __init__(self, env: dict[str, str], database: Path) -> None:
        self.env = env
        self.database = database
        self.lines: list[str] = []
        self.port = 0
        self.terminated_at: float | None = None
        """`time.time()` when `stop` sent SIGTERM (None if the process had already ended)."""
        self.exited_at: float | None = None
        """`time.time()` when `stop` saw the process exit: with `terminated_at`, how long the
        stop took, which an orchestrator bounds with a SIGKILL."""
        self._new_line = asyncio.Event()

    async def start(self, *, wait_connected: bool = True) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "run",
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())
        self.port = int((await self.wait_line(r"receiving alerts on http://[\d.]+:(\d+)/"))[1])
        self.session = aiohttp.ClientSession()
        if wait_connected:
            await self.wait_line(r"connected to Slack over Socket Mode")

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip())
            self._new_line.set()

    async def wait_line(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        async def find() -> re.Match[str]:
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    match = re.search(pattern, line)
                    if match:
                        return match
                seen = len(self.lines)
                self._new_line.clear()
                await self._new_line.wait()

        try:
            return await asyncio.wait_for(find(), timeout)
        except TimeoutError:
            raise AssertionError(f"no log line {pattern!r}:\n" + "\n".join(self.lines)) from None

    async def alert(self, payload: dict[str, Any] | str) -> dict[str, Any]:
        body = payload if isinstance(payload, str) else json.dumps(payload)
        url = f"http://127.0.0.1:{self.port}/alerts"
        async with self.session.post(url, data=body.encode()) as response:
            assert response.status == 202, await response.text()
            answer: dict[str, Any] = await response.json()
            return answer

    def store(self) -> SqliteStore:
        return SqliteStore(self.database)

    async def stop_if_started(self) -> None:
        """Stop a bot that may not have started fully (a bench failing during its start)."""
        if not hasattr(self, "process"):
            return
        if hasattr(self, "session"):
            await self.stop()
        elif self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()

    async def stop(self) -> int:
        await self.session.close()
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            self.terminated_at = time.time()
        try:
            code = await asyncio.wait_for(self.process.wait(), 30)
            self.exited_at = time.time()
        except TimeoutError:
            self.process.kill()  # a hung shutdown fails its test, and leaves no orphan behind
            await self.process.wait()
            raise AssertionError("the bot did not stop within 30 s of SIGTERM:\n" + "\n".join(
                self.lines[-40:])) from None  # fmt: skip
        await self._reader
        return code


def slack_env(tmp_path: Path, api_url: str, **extra: str) -> dict[str, str]:
    """The environment of a bot on the emulator: offline analyzer, no AWS, fast resyncs."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANTHROPIC_", "AWS_", "SLACK_", "WEBHOOK_", "JIRA_", "EMAIL_"))
    }
    env.update(
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_APP_TOKEN="xapp-test",
        SLACK_API_URL=api_url,
        SLACK_CHANNEL="C1",
        SLACK_RESYNC_INTERVAL="1s",
        UPDATE_INTERVAL="1s",
        WEBHOOK_PORT="0",
        SQLITE_PATH=str(tmp_path / "bot.db"),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env
