"""Group commit through the real `incident-bot run` process: a process killed between the
commit of an alert and its reply counts that alert once when its sender retries, and a stop
under a storm ends within the orchestrator's grace with everything it acknowledged kept."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from incidents.sqlite import SqliteStore
from tests.conftest import BRIEF_ALERT
from tests.fakes.bot_process import BotProcess

pytestmark = pytest.mark.integration


def _console_env(database: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANTHROPIC_", "AWS_", "SLACK_", "WEBHOOK_", "JIRA_", "EMAIL_"))
    }
    env.update(WEBHOOK_PORT="0", SQLITE_PATH=str(database), PYTHONUNBUFFERED="1")
    return env


def _recorded(database: Path, key: str) -> bool:
    store = SqliteStore(database)
    try:
        return bool(store.recorded_keys([key]))
    finally:
        store.close()


async def test_a_process_killed_between_commit_and_reply_counts_the_retry_once(tmp_path: Path):
    database = tmp_path / "bot.db"
    bot = BotProcess(_console_env(database), database)
    await bot.start(wait_connected=False)
    body = json.dumps(BRIEF_ALERT).encode()
    request = (
        f"POST /alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Idempotency-Key: alert-1\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    _, writer = await asyncio.open_connection("127.0.0.1", bot.port)
    writer.write(request)
    await writer.drain()
    deadline = time.monotonic() + 10
    while not _recorded(database, "http:alert-1"):  # durable, and its 202 not read yet
        assert time.monotonic() < deadline, "the alert was never committed"
        await asyncio.sleep(0.01)
    bot.process.send_signal(signal.SIGKILL)
    await bot.process.wait()
    writer.close()
    await bot.session.close()

    again = BotProcess(_console_env(database), database)
    await again.start(wait_connected=False)
    try:
        url = f"http://127.0.0.1:{again.port}/alerts"
        async with again.session.post(
            url, data=body, headers={"Idempotency-Key": "alert-1"}
        ) as response:
            status, answer = response.status, await response.json()
    finally:
        await again.stop()

    assert status == 202
    assert answer["outcomes"][0]["outcome"] == "duplicate"
    store = SqliteStore(database)
    [incident] = store.list_incidents()
    assert incident.occurrences == 1
    store.close()


async def test_a_stop_under_a_storm_ends_within_ten_seconds_and_keeps_what_it_acknowledged(
    tmp_path: Path,
):
    database = tmp_path / "bot.db"
    bot = BotProcess(_console_env(database), database)
    await bot.start(wait_connected=False)
    url = f"http://127.0.0.1:{bot.port}/alerts"
    acknowledged = 0
    stopping = asyncio.Event()

    async def sender(session: aiohttp.ClientSession, n: int) -> None:
        nonlocal acknowledged
        sent = 0
        while not stopping.is_set() or sent < 3:
            alerts = [
                dict(BRIEF_ALERT, title=f"Problem {i % 7}", message=f"sender {n} alert {sent}-{i}")
                for i in range(50)
            ]
            sent += 1
            try:
                async with session.post(url, data=json.dumps(alerts)) as response:
                    if response.status == 202:
                        acknowledged += len(alerts)
            except aiohttp.ClientError:
                return  # the receiver closed: the stop is under way
            if stopping.is_set():
                return

    async with aiohttp.ClientSession() as session:
        senders = [asyncio.create_task(sender(session, n)) for n in range(16)]
        while acknowledged < 2000:
            await asyncio.sleep(0.01)
        signalled = time.monotonic()
        bot.process.send_signal(signal.SIGTERM)
        stopping.set()
        code = await asyncio.wait_for(bot.process.wait(), 15)
        stopped_after = time.monotonic() - signalled
        await asyncio.gather(*senders)
    await bot.stop()

    assert code == 0, "\n".join(bot.lines[-20:])
    assert stopped_after < 10, f"stopped {stopped_after:.1f}s after SIGTERM"
    assert any("stopped" in line for line in bot.lines[-5:])
    store = SqliteStore(database)
    recorded = sum(i.occurrences for i in store.list_incidents(limit=100))
    store.close()
    assert recorded >= acknowledged, "every alert answered 202 is in the store"
