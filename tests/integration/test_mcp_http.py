"""MCP over Streamable HTTP on a real `incident-bot run`, against the Slack emulator: the SDK's
own client with the Bearer token reads every tool and makes every write, and Slack follows as
it follows a click, and so does PagerDuty, through the outbox; a wrong or missing token gets
401 and no data; without MCP_TOKEN there is no `/mcp` at all."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import BRIEF_ALERT
from tests.fakes.anthropic_server import Delay, FakeAnthropic
from tests.fakes.bot_process import BotProcess, slack_env
from tests.fakes.pagerduty_server import ROUTING_KEY, PagerDutyFake
from tests.fakes.slack_emulator import Message, SlackEmulator
from tests.integration.test_engine import GOOD_ANALYSIS
from tests.unit.test_mcp_tools import LEAKY_ALERT, READS, SECRET_PASSWORD, SECRET_SLACK, WRITES

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHANNEL = "C1"
TOKEN = "test-token-0123456789abcdefghijklmnop"
ANALYSIS_DELAY = 6.0
"""Seconds Claude takes over the pasted alert's analysis: its message is posted before."""


@pytest.fixture
async def emulator() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(channels=(CHANNEL,)) as started:
        yield started


@pytest.fixture
async def pagerduty() -> AsyncIterator[PagerDutyFake]:
    async with PagerDutyFake() as started:
        yield started


@pytest.fixture
async def bot(
    tmp_path: Path, emulator: SlackEmulator, pagerduty: PagerDutyFake
) -> AsyncIterator[BotProcess]:
    env = slack_env(
        tmp_path,
        emulator.api_url,
        SLACK_CHANNEL=CHANNEL,
        MCP_TOKEN=TOKEN,
        MCP_ALLOW_WRITES="true",
        PAGERDUTY_ROUTING_KEY=ROUTING_KEY,
        PAGERDUTY_EVENTS_URL=pagerduty.events_url,
    )
    process = BotProcess(env, tmp_path / "bot.db")
    await process.start()
    await process.wait_line(r"serving MCP on http://")
    yield process
    assert await process.stop() == 0


def _url(bot: BotProcess) -> str:
    return f"http://127.0.0.1:{bot.port}/mcp"


def _client(bot: BotProcess, http: httpx2.AsyncClient) -> Client:
    return Client(streamable_http_client(_url(bot), http_client=http))


def _bearer(token: str) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)


async def _call(client: Client, name: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.content
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


def _text(message: Message) -> str:
    return message.text + json.dumps(message.blocks)


async def _root(emulator: SlackEmulator, title: str) -> Message:
    def posted() -> Message | None:
        roots = [m for m in emulator.messages(CHANNEL) if m.by_bot and m.thread_ts is None]
        found = [m for m in roots if title in _text(m) and "Root cause" in _text(m)]
        return found[0] if found else None

    return await emulator.wait_for(posted, timeout=30)


async def test_a_wrong_or_missing_token_gets_401_and_no_data(bot: BotProcess):
    await bot.alert(LEAKY_ALERT)
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        async with bot.session.post(_url(bot), json=initialize, headers=headers) as response:
            body = await response.text()
            assert response.status == 401, body
            assert "incidents" not in body and "list_incidents" not in body

    garbage = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with bot.session.post(_url(bot), data=b"{not json", headers=garbage) as response:
        assert 400 <= response.status < 500, "a broken body with the right token: refused, no 5xx"

    async with _bearer("wrong-token-0123456789abcdef") as http:
        with pytest.raises(Exception):  # noqa: B017 - the SDK's transport error, whichever it is
            async with _client(bot, http) as client:
                await client.list_tools()


async def test_every_tool_over_http_and_writes_followed_by_slack_and_pagerduty(
    bot: BotProcess, emulator: SlackEmulator, pagerduty: PagerDutyFake
):
    answer = await bot.alert(LEAKY_ALERT)
    incident_id = answer["incidents"][0]
    root = await _root(emulator, "Checkout failing")
    await emulator.wait_for(lambda: pagerduty.events, timeout=15)  # CRITICAL: paged

    async with _bearer(TOKEN) as http, _client(bot, http) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        listed = await _call(client, "list_incidents")
        detail = await _call(client, "get_incident", id=incident_id)
        alerts = await _call(client, "search_alerts", text="login failed")
        stats = await _call(client, "incident_stats", period="1h")
        pasted = await _call(client, "analyze_alert", payload=json.dumps(BRIEF_ALERT))
        unknown = await client.call_tool("get_incident", {"id": "INC-NOPE"})
        oversized = await client.call_tool("analyze_alert", {"payload": "x" * 1_100_000})
        acked = await _call(client, "acknowledge_incident", id=incident_id, by="Ann Lee")
        await emulator.wait_for(lambda: "Ann Lee (via MCP)" in _text(emulator.message(root.ts)))
        await _call(client, "silence_incident", id=incident_id, duration="1h", by="Ann Lee")
        await emulator.wait_for(
            lambda: any("ilenced" in m.text for m in emulator.thread(CHANNEL, root.ts)[1:])
        )
        resolved = await _call(client, "resolve_incident", id=incident_id, by="Ann Lee")
        await emulator.wait_for(
            lambda: "resolved" in json.dumps(emulator.message(root.ts).blocks).lower()
        )

    assert tools == READS | WRITES
    assert [i["id"] for i in listed["incidents"]] == [incident_id]
    assert detail["slack"]["channel"] == CHANNEL and detail["slack"]["ts"] == root.ts
    assert detail["slack"]["permalink"]
    assert [a["incident_id"] for a in alerts["alerts"]] == [incident_id]
    assert stats["opened"]["CRITICAL"] == 1 and sum(stats["opened"].values()) == 1
    await _root(emulator, "Test Error: Database Connection Failed")  # the pasted alert's post
    assert pasted["outcome"] == "opened"
    assert unknown.is_error and "there is no incident INC-NOPE" in str(unknown.content)
    assert oversized.is_error and "byte limit" in str(oversized.content)
    assert acked["incident"]["owner"] == "Ann Lee (via MCP)"
    assert resolved["incident"]["status"] == "resolved"
    await emulator.wait_for(lambda: len(pagerduty.events) == 3, timeout=15)
    actions = [event["event_action"] for event in pagerduty.events]
    assert actions == ["trigger", "acknowledge", "resolve"], "as after the buttons"
    shown = json.dumps([listed, detail, alerts, stats])
    for secret in (SECRET_PASSWORD, SECRET_SLACK, "oncall.person@example.com"):
        assert secret not in shown


async def test_without_mcp_token_there_is_no_mcp_route(tmp_path: Path, emulator: SlackEmulator):
    bot = BotProcess(
        slack_env(tmp_path, emulator.api_url, SLACK_CHANNEL=CHANNEL), tmp_path / "b.db"
    )
    await bot.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                _url(bot), headers={"Authorization": f"Bearer {TOKEN}"}, json={}
            ) as response,
        ):
            assert response.status == 404
        assert not any("serving MCP" in line for line in bot.lines)
    finally:
        assert await bot.stop() == 0


async def test_a_write_over_stdio_reaches_slack_through_the_running_bot(
    tmp_path: Path, bot: BotProcess, emulator: SlackEmulator
):
    """`incident-bot mcp` beside a running bot, on its store: the bot's resync brings the
    Slack message up to date with the change, as for a change another replica made."""
    answer = await bot.alert(LEAKY_ALERT)
    incident_id = answer["incidents"][0]
    root = await _root(emulator, "Checkout failing")
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "bot.cli", "mcp"],
        env={"SQLITE_PATH": str(bot.database), "PYTHONPATH": str(ROOT), "MCP_ALLOW_WRITES": "1"},
        cwd=str(tmp_path),
    )

    async with Client(server) as client:
        await _call(client, "acknowledge_incident", id=incident_id, by="Cy Ode")

    await emulator.wait_for(
        lambda: "Cy Ode (via MCP)" in _text(emulator.message(root.ts)), timeout=15
    )


async def test_a_pasted_alerts_message_is_posted_before_its_analysis_ends(
    tmp_path: Path, emulator: SlackEmulator
):
    async with FakeAnthropic(default_tool_input=GOOD_ANALYSIS) as claude:
        claude.enqueue(Delay(ANALYSIS_DELAY))
        env = slack_env(
            tmp_path,
            emulator.api_url,
            SLACK_CHANNEL=CHANNEL,
            SLACK_RESYNC_INTERVAL="1h",  # only the tool's own publishing posts the message
            MCP_TOKEN=TOKEN,
            ANTHROPIC_API_KEY="sk-ant-test",
            ANTHROPIC_BASE_URL=claude.url,
        )
        bot = BotProcess(env, tmp_path / "bot.db")
        await bot.start()
        try:
            await bot.wait_line(r"serving MCP on http://")
            async with _bearer(TOKEN) as http, _client(bot, http) as client:
                pasted = asyncio.create_task(
                    _call(
                        client,
                        "analyze_alert",
                        payload=json.dumps({**BRIEF_ALERT, "severity": "MEDIUM"}),
                    )
                )
                posted = await emulator.wait_for(
                    lambda: [m for m in emulator.messages(CHANNEL) if m.thread_ts is None],
                    timeout=ANALYSIS_DELAY - 1,
                )
                assert not pasted.done(), "posted only after the analysis"
                assert BRIEF_ALERT["title"] in _text(posted[0])
                answer = await pasted
            root = await _root(emulator, BRIEF_ALERT["title"])
            assert root.ts == posted[0].ts
            assert answer["analysis"]["root_cause"] == GOOD_ANALYSIS["root_cause"]
        finally:
            assert await bot.stop() == 0
