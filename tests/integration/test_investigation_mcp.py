"""The team's MCP servers as tools of the investigation: the team server of
`tests/fakes/team_mcp_server.py`, built with the SDK, runs as a real subprocess over stdio and
over Streamable HTTP on 127.0.0.1, and `McpTools` speaks to it through the SDK's client. The
investigation runs through the real `Investigator` against the local Messages API, and what
Claude saw is read from the request bodies that server recorded."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from anthropic import AsyncAnthropic

from analysis import prompting
from analysis.claude import ClaudeAnalyzer
from analysis.engine import AnalysisEngine, EngineConfig
from analysis.investigation.loop import Investigator
from analysis.investigation.mcp_servers import McpServer, load_servers
from analysis.investigation.mcp_session import McpClosedError, McpSession, McpUnavailableError
from analysis.investigation.mcp_tools import McpTools
from analysis.investigation.past_incidents import StoreTools
from analysis.investigation.registry import CombinedTools
from analysis.models import AnalyzerKind
from incidents.lifecycle import IncidentService
from incidents.sqlite import SqliteStore
from ingest.normalize import parse_body
from tests.conftest import BRIEF_ALERT, ManualClock
from tests.fakes.anthropic_server import FakeAnthropic, ToolUse
from tests.fakes.bot_process import BotProcess
from tests.fakes.team_mcp_server import SECRET_KEY, SECRET_PASSWORD, SECRET_TOKEN, HttpProcess
from tests.integration.test_engine import GOOD_ANALYSIS
from tests.integration.test_investigation import results_in

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ONCALL = "Ann Example"
TOKEN = "team-mcp-token-0123456789abcdef"
READS = ["recent_deploys", "service_owner", "broken_query", "server_pid"]


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the servers file's `${...}` name: the on-call person and the HTTP token."""
    monkeypatch.setenv("TEAM_ONCALL_NAME", ONCALL)
    monkeypatch.setenv("TEAM_MCP_TEST_TOKEN", TOKEN)


def stdio_entry(journal: Path, tools: list[str] = READS, **extra: Any) -> dict[str, Any]:
    return {
        "command": sys.executable,
        "args": ["-m", "tests.fakes.team_mcp_server", "stdio"],
        "env": {
            "PYTHONPATH": str(ROOT),
            "TEAM_MCP_ONCALL": "${TEAM_ONCALL_NAME}",
            "TEAM_MCP_JOURNAL": str(journal),
        },
        "tools": tools,
        **extra,
    }


def http_entry(url: str, tools: list[str] = READS) -> dict[str, Any]:
    bearer = {"Authorization": "Bearer ${TEAM_MCP_TEST_TOKEN}"}
    return {"url": url, "headers": bearer, "tools": tools}


def http_process(journal: Path, port: int = 0, *, handshake_only: bool = False) -> HttpProcess:
    env = {"TEAM_MCP_TOKEN": TOKEN, "TEAM_MCP_ONCALL": ONCALL, "TEAM_MCP_JOURNAL": str(journal)}
    if handshake_only:
        env["TEAM_MCP_HANDSHAKE_ONLY"] = "1"
    return HttpProcess(env, port)


def servers_file(tmp_path: Path, **entries: dict[str, Any]) -> Path:
    path = tmp_path / "mcp-servers.yaml"
    path.write_text(yaml.safe_dump({"servers": entries}, sort_keys=False), encoding="utf-8")
    return path


def servers(tmp_path: Path, **entries: dict[str, Any]) -> list[McpServer]:
    return load_servers(servers_file(tmp_path, **entries))


@asynccontextmanager
async def opened(configured: list[McpServer], **options: float) -> AsyncIterator[McpTools]:
    tools = McpTools(configured, **options)
    try:
        await tools.ready()
        yield tools
    finally:
        await tools.close()


def journal_of(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def calls_of(path: Path) -> list[str]:
    """The tools the server ran, without the `stopped` of a closed stdio session."""
    return [line for line in journal_of(path) if line != "stopped"]


def offered(tools: McpTools) -> set[str]:
    return {tool.name for tool in tools.tools_for(None, None)}  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def team_server(transport: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """The team server's entry in the servers file, started for HTTP."""
    journal = tmp_path / "journal.txt"
    if transport == "stdio":
        yield stdio_entry(journal)
        return
    async with http_process(journal) as process:
        yield http_entry(process.url)


def call(name: str, **arguments: Any) -> ToolUse:
    return ToolUse(arguments, name=name)


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_an_investigation_calls_the_team_server_redacted_and_allow_listed(
    transport: str, tmp_path: Path, store: SqliteStore, clock: ManualClock
):
    async with (
        team_server(transport, tmp_path) as entry,
        opened(servers(tmp_path, team=entry)) as mcp,
        FakeAnthropic(default_tool_input=GOOD_ANALYSIS) as fake,
    ):
        client = AsyncAnthropic(api_key="sk-ant-test", base_url=fake.url, max_retries=0)
        engine = AnalysisEngine(
            store,
            EngineConfig(),
            claude=ClaudeAnalyzer(client),
            clock=clock,
            investigator=Investigator(client),
            tools=CombinedTools(StoreTools(store), mcp),
        )
        fake.enqueue(
            call("team__recent_deploys", service="orders"),
            call("team__service_owner", service="orders"),
            call("team__broken_query", query="p99 latency"),
            call("team__restart_service", service="orders"),
            ToolUse(GOOD_ANALYSIS, name=prompting.TOOL_NAME),
        )
        [alert] = parse_body(json.dumps(BRIEF_ALERT).encode(), clock.now).alerts
        incident = IncidentService(store, clock=clock).record(alert).incident
        assert incident is not None
        analysis = await engine.analyze(incident, alert)
        await engine.close()

    assert analysis.analyzer is AnalyzerKind.CLAUDE
    first = fake.requests[0]
    assert first.body is not None
    tools = {tool["name"]: tool for tool in first.body["tools"]}
    assert {f"team__{name}" for name in READS} <= set(tools)
    assert "team__restart_service" not in tools, "a tool not allow-listed is never offered"
    assert tools["team__recent_deploys"]["description"].startswith("[team MCP server")
    assert tools["team__recent_deploys"]["input_schema"]["required"] == ["service"]

    [deploys] = results_in(fake.requests[1])
    [owner] = results_in(fake.requests[2])
    [broken] = results_in(fake.requests[3])
    [refused] = results_in(fake.requests[4])
    assert deploys["is_error"] is False and '"version": "v42"' in deploys["content"]
    assert '"password": "[REDACTED' in deploys["content"], "a secret-named key goes whole"
    assert owner["is_error"] is False
    assert owner["content"] == f"orders is owned by team payments; on call: {ONCALL}"
    assert (
        broken["is_error"] is True
        and "backend unavailable for 'p99 latency'" in (broken["content"])
    )
    assert refused["is_error"] is True and "There is no tool named" in refused["content"]
    sent = json.dumps([request.body for request in fake.requests])
    for secret in (SECRET_PASSWORD, SECRET_KEY, SECRET_TOKEN):
        assert secret not in sent
    assert analysis.investigation is not None
    trace = [(made.tool, made.is_error) for made in analysis.investigation.calls]
    assert trace == [
        ("team__recent_deploys", False),
        ("team__service_owner", False),
        ("team__broken_query", True),
        ("team__restart_service", True),
    ]
    assert SECRET_PASSWORD not in analysis.investigation.model_dump_json()
    reached = calls_of(tmp_path / "journal.txt")
    assert reached == ["recent_deploys", "service_owner", "broken_query"]


async def test_servers_that_fail_to_start_are_skipped_and_the_rest_offered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="analysis.investigation")
    journal = tmp_path / "journal.txt"
    async with http_process(journal) as process:
        configured = servers(
            tmp_path,
            team=stdio_entry(journal, tools=["service_owner"]),
            missing={"command": str(tmp_path / "no-such-server"), "tools": ["anything"]},
            silent={"command": sys.executable, "args": ["-c", "import time; time.sleep(30)"],
                    "tools": ["anything"]},
            refused={"url": process.url, "headers": {"Authorization": "Bearer wrong-secret"},
                     "tools": ["service_owner"]},
        )  # fmt: skip
        started = asyncio.get_running_loop().time()
        async with opened(configured, connect_timeout=3) as mcp:
            waited = asyncio.get_running_loop().time() - started
            names = offered(mcp)
            with pytest.raises(PermissionError):
                await mcp.call("missing", "anything", {})

    assert names == {"team__service_owner"}
    assert waited < 15, "the silent server's attempt is bounded (it would sleep 30 s)"
    skipped = {r.getMessage().split()[2] for r in caplog.records if "skipped" in r.getMessage()}
    assert skipped == {"missing", "silent", "refused"}
    log = caplog.text
    assert "FileNotFoundError" in log and "no answer within 3s" in log and "(HTTP 401)" in log
    assert "wrong-secret" not in log and TOKEN not in log, "header values are never logged"


async def test_doctor_reports_each_server(tmp_path: Path):
    journal = tmp_path / "journal.txt"
    path = servers_file(
        tmp_path,
        team=stdio_entry(journal, tools=["service_owner", "recent_deploys"]),
        missing={"command": str(tmp_path / "no-such-server"), "tools": ["anything"]},
        writes=stdio_entry(journal, tools=["server_pid", "restart_service", "either_id"]),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_"))}
    env.update(SQLITE_PATH=str(tmp_path / "doctor.db"), MCP_SERVERS_FILE=str(path))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "doctor", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 90)

    assert process.returncode == 1, stderr
    lines = {line.split()[1]: line for line in stdout.decode().splitlines()}
    assert lines["mcp:team"].startswith("ok")
    assert "offers team__service_owner, team__recent_deploys" in lines["mcp:team"]
    assert lines["mcp:missing"].startswith("FAIL") and "FileNotFoundError" in lines["mcp:missing"]
    assert lines["mcp:writes"].startswith("FAIL")
    assert "restart_service: not annotated read-only" in lines["mcp:writes"]
    assert "either_id: its input schema has anyOf at the top level" in lines["mcp:writes"]
    assert ONCALL not in stdout.decode(), "env values are never printed"
    assert "mcp-servers" not in lines


async def test_the_allow_list_and_read_only_decide_what_can_be_called(tmp_path: Path):
    ro_journal, rw_journal = tmp_path / "ro.txt", tmp_path / "rw.txt"
    configured = servers(
        tmp_path,
        ro=stdio_entry(ro_journal, tools=["server_pid", "restart_service"]),
        rw=stdio_entry(rw_journal, tools=["restart_service"], read_only=False),
    )
    async with opened(configured) as mcp:
        names = offered(mcp)
        with pytest.raises(PermissionError, match="not a tool the MCP servers file allows"):
            await mcp.call("ro", "restart_service", {"service": "orders"})
        with pytest.raises(PermissionError):
            await mcp.call("ro", "recent_deploys", {"service": "orders"})
        restart = mcp.tools_for(None, None).get("rw__restart_service")  # type: ignore[arg-type]
        assert restart is not None
        restarted = await restart.run({"service": "orders"})

    assert names == {"ro__server_pid", "rw__restart_service"}
    assert calls_of(ro_journal) == [], "a refused call never reaches the server"
    assert restarted == "orders restarted" and calls_of(rw_journal) == ["restart_service"]


async def test_a_dead_stdio_server_is_restarted_by_the_next_call(tmp_path: Path):
    configured = servers(tmp_path, team=stdio_entry(tmp_path / "journal.txt"))
    async with opened(configured) as mcp:
        before = int(await mcp.call("team", "server_pid", {}))
        os.kill(before, signal.SIGKILL)
        after = int(await mcp.call("team", "server_pid", {}))

    assert after != before


async def test_a_dead_http_server_fails_the_call_then_is_reconnected_when_back(tmp_path: Path):
    journal = tmp_path / "journal.txt"
    port = free_port()
    async with http_process(journal, port) as process:
        configured = servers(tmp_path, team=http_entry(process.url))
        async with opened(configured, connect_timeout=3) as mcp:
            assert await mcp.call("team", "service_owner", {"service": "db"})
            await process.stop()
            with pytest.raises(McpUnavailableError):
                await mcp.call("team", "service_owner", {"service": "db"})
            async with http_process(journal, port):
                back = await mcp.call("team", "service_owner", {"service": "db"})

    assert back == f"db is owned by team payments; on call: {ONCALL}"


async def test_a_restarted_http_server_gets_a_new_session_on_the_next_call(tmp_path: Path):
    """A server of the handshake era (sessions), restarted on its own port as a deploy does
    (the URL is the configuration): the new process answers the old session id with 404, and
    the next call starts a new session."""
    journal = tmp_path / "journal.txt"
    port = free_port()
    async with http_process(journal, port, handshake_only=True) as process:
        configured = servers(tmp_path, team=http_entry(process.url))
        async with opened(configured, connect_timeout=3) as mcp:
            before = await mcp.call("team", "server_pid", {})
            await process.stop()
            async with http_process(journal, port, handshake_only=True):
                after = await mcp.call("team", "server_pid", {})
                again = await mcp.call("team", "server_pid", {})

    assert after != before and again == after, "one new session, kept for the next calls"


async def test_a_reconnect_outlives_a_caller_whose_time_ran_out(tmp_path: Path):
    """The caller that found the server dead gives up at its own timeout; the restart it
    started goes on, and the next call is answered by that very process."""
    starts, slow = tmp_path / "starts.txt", tmp_path / "slow-start.txt"
    entry = stdio_entry(tmp_path / "journal.txt")
    entry["env"].update(TEAM_MCP_STARTS=str(starts), TEAM_MCP_SLOW_START=str(slow))
    async with opened(servers(tmp_path, team=entry), connect_timeout=10) as mcp:
        first = int(await mcp.call("team", "server_pid", {}))
        slow.write_text("3")
        os.kill(first, signal.SIGKILL)
        started = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(mcp.call("team", "server_pid", {}), 0.5)
        gave_up = asyncio.get_running_loop().time() - started
        second = int(await mcp.call("team", "server_pid", {}))

    assert gave_up < 1.5, "the caller waits only within its own time"
    assert [int(pid) for pid in starts.read_text().split()] == [first, second]


class _UnexpectedSession(McpSession):
    """A server whose every attempt fails in a way nothing planned for."""

    attempts = 0

    async def open(self) -> list[Any]:
        self.attempts += 1
        raise RuntimeError("listing came back malformed")


async def test_an_unexpected_error_is_that_servers_failure_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    configured = servers(
        tmp_path,
        team=stdio_entry(tmp_path / "journal.txt", tools=["service_owner"]),
        odd=stdio_entry(tmp_path / "odd.txt", tools=["service_owner"]),
    )
    mcp = McpTools(configured, retry_interval=0.2)
    odd = mcp.sessions["odd"] = _UnexpectedSession(mcp.sessions["odd"].server, 1.0)
    try:
        await asyncio.wait_for(mcp.ready(), 20)
        for _ in range(50):
            if odd.attempts >= 2:
                break
            await asyncio.sleep(0.1)
        names = offered(mcp)
    finally:
        await mcp.close()

    assert names == {"team__service_owner"}
    assert odd.attempts >= 2, "the retrying goes on"
    assert "MCP server odd skipped: unexpected error" in caplog.text
    assert "listing came back malformed" in caplog.text


async def test_a_call_in_flight_at_close_does_not_start_the_server_again(tmp_path: Path):
    starts = tmp_path / "starts.txt"
    entry = stdio_entry(tmp_path / "journal.txt", tools=["server_pid", "wait_seconds"])
    entry["env"]["TEAM_MCP_STARTS"] = str(starts)
    mcp = McpTools(servers(tmp_path, team=entry))
    await mcp.ready()
    in_flight = asyncio.create_task(mcp.call("team", "wait_seconds", {"seconds": 5}))
    await asyncio.sleep(0.5)
    await mcp.close()

    with pytest.raises(McpClosedError, match="closed"):
        await asyncio.wait_for(in_flight, 10)
    with pytest.raises(McpClosedError):
        await mcp.call("team", "server_pid", {})
    await asyncio.sleep(1)
    assert len(starts.read_text().split()) == 1, "no server started after close"


async def test_a_server_down_at_start_is_tried_again_and_offered_once_up(tmp_path: Path):
    port = free_port()
    configured = servers(tmp_path, team=http_entry(f"http://127.0.0.1:{port}/mcp"))
    async with opened(configured, connect_timeout=2, retry_interval=0.3) as mcp:
        assert offered(mcp) == set()
        async with http_process(tmp_path / "journal.txt", port):
            for _ in range(100):
                if offered(mcp):
                    break
                await asyncio.sleep(0.1)
            names = offered(mcp)

    assert names == {f"team__{name}" for name in READS}


async def test_the_analyze_command_opens_the_servers_for_its_duration(tmp_path: Path):
    path = servers_file(tmp_path, team=stdio_entry(tmp_path / "journal.txt"))
    async with FakeAnthropic(default_tool_input=GOOD_ANALYSIS) as fake:
        fake.enqueue(call("team__service_owner", service="orders"))
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("ANTHROPIC_", "AWS_", "SLACK_", "WEBHOOK_"))
        }
        env.update(
            SQLITE_PATH=str(tmp_path / "cli.db"),
            ANTHROPIC_API_KEY="sk-ant-test",
            ANTHROPIC_BASE_URL=fake.url,
            MCP_SERVERS_FILE=str(path),
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "analyze", "--json", "-", env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(
            process.communicate(json.dumps(BRIEF_ALERT).encode()), timeout=90
        )

    assert process.returncode == 0, stderr
    analysis = json.loads(stdout)["analysis"]
    assert analysis["analyzer"] == "claude"
    [owner] = results_in(fake.requests[1])
    assert owner["content"] == f"orders is owned by team payments; on call: {ONCALL}"
    assert [made["tool"] for made in analysis["investigation"]["calls"]] == ["team__service_owner"]
    assert journal_of(tmp_path / "journal.txt") == ["service_owner", "stopped"], "closed at the end"


async def test_the_bot_offers_the_team_tools_and_closes_the_servers_when_it_stops(tmp_path: Path):
    journal = tmp_path / "journal.txt"
    path = servers_file(tmp_path, team=stdio_entry(journal))
    async with FakeAnthropic(default_tool_input=GOOD_ANALYSIS) as fake:
        fake.enqueue(call("team__recent_deploys", service="orders"))
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("ANTHROPIC_", "AWS_", "SLACK_", "WEBHOOK_"))
        }
        env.update(
            SQLITE_PATH=str(tmp_path / "bot.db"),
            WEBHOOK_PORT="0",
            PYTHONUNBUFFERED="1",
            ANTHROPIC_API_KEY="sk-ant-test",
            ANTHROPIC_BASE_URL=fake.url,
            MCP_SERVERS_FILE=str(path),
        )
        bot = BotProcess(env, tmp_path / "bot.db")
        await bot.start(wait_connected=False)
        try:
            await bot.wait_line(r"MCP server team \(stdio\): offering team__recent_deploys")
            await bot.alert(BRIEF_ALERT)
            for _ in range(200):
                if len(fake.requests) >= 2:
                    break
                await asyncio.sleep(0.05)
        finally:
            code = await bot.stop()

    assert code == 0, bot.lines[-20:]
    [deploys] = results_in(fake.requests[1])
    assert '"version": "v42"' in deploys["content"] and SECRET_PASSWORD not in deploys["content"]
    assert journal_of(journal) == ["recent_deploys", "stopped"], "closed with the bot"
