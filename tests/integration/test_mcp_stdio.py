"""`incident-bot mcp` as a real subprocess, spoken to over stdio by the SDK's own client, as
Claude Desktop and Claude Code start it: every tool, the resource and the prompt on the
configured store, writes off by default, writes on with MCP_ALLOW_WRITES, redaction of the
secrets seeded in the store, and bad input answered as tool errors by a server that goes on."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from incidents.lifecycle import IncidentService
from incidents.sqlite import SqliteStore
from ingest.normalize import MAX_PAYLOAD_BYTES
from ingest.pipeline import Ingestor
from tests.conftest import BRIEF_ALERT
from tests.unit.test_mcp_tools import (
    LEAKY_ALERT,
    READS,
    SECRET_PASSWORD,
    SECRET_SLACK,
    WRITES,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _server(tmp_path: Path, **env: str) -> StdioServerParameters:
    """The command a client's configuration names, on the test's store; run from an empty
    folder so that no `.env` is read, and with the repository on the path."""
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "bot.cli", "mcp"],
        env={"SQLITE_PATH": str(tmp_path / "bot.db"), "PYTHONPATH": str(ROOT), **env},
        cwd=str(tmp_path),
    )


def _seed(tmp_path: Path, *payloads: dict[str, Any]) -> list[str]:
    store = SqliteStore(tmp_path / "bot.db")
    try:
        ingestor = Ingestor(IncidentService(store), store)
        return [ingestor.ingest(json.dumps(p).encode(), "test").incident_ids[0] for p in payloads]
    finally:
        store.close()


async def _call(client: Client, name: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.content
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


async def _error(client: Client, name: str, **arguments: Any) -> str:
    result = await client.call_tool(name, arguments)
    assert result.is_error, result.structured_content
    return " ".join(getattr(block, "text", "") for block in result.content)


async def test_every_read_tool_resource_and_prompt_over_stdio_redacted(tmp_path: Path):
    leaky, brief = _seed(tmp_path, LEAKY_ALERT, BRIEF_ALERT)

    async with Client(_server(tmp_path)) as client:
        listed_tools = {tool.name for tool in (await client.list_tools()).tools}
        listed = await _call(client, "list_incidents", status="active")
        detail = await _call(client, "get_incident", id=leaky)
        alerts = await _call(client, "search_alerts", severity="CRITICAL")
        stats = await _call(client, "incident_stats", period="24h")
        analyzed = await _call(client, "analyze_alert", payload=json.dumps(BRIEF_ALERT))
        page = await client.read_resource(f"incident://{leaky}")
        prompt = await client.get_prompt("postmortem", {"id": brief})

    assert listed_tools == READS, "writes are off by default"
    assert {i["id"] for i in listed["incidents"]} == {leaky, brief}
    assert detail["incident"]["severity"] == "CRITICAL" and detail["slack"] is None
    assert [a["incident_id"] for a in alerts["alerts"]] == [leaky]
    assert sum(stats["opened"].values()) == 2 and stats["open_now"] == 2
    assert analyzed["outcome"] == "repeated" and analyzed["incident"]["id"] == brief
    assert analyzed["incident"]["occurrences"] == 2
    markdown = page.contents[0].text  # type: ignore[union-attr]
    assert markdown.startswith(f"# {leaky}: Checkout failing for [REDACTED:email]")
    assert "post-mortem" in prompt.messages[0].content.text  # type: ignore[union-attr]
    shown = json.dumps([listed, detail, alerts, stats, markdown, prompt.model_dump(mode="json")])
    for secret in (SECRET_PASSWORD, SECRET_SLACK, "oncall.person@example.com"):
        assert secret not in shown
    assert "[REDACTED:password]" in shown and "[REDACTED:slack_token]" in shown


async def test_writes_and_bad_input_over_stdio(tmp_path: Path):
    (known,) = _seed(tmp_path, BRIEF_ALERT)

    async with Client(_server(tmp_path, MCP_ALLOW_WRITES="true")) as client:
        listed_tools = {tool.name for tool in (await client.list_tools()).tools}
        unknown = await _error(client, "get_incident", id="INC-NOSUCH1")
        bad_duration = await _error(
            client, "silence_incident", id=known, duration="a while", by="Ann"
        )
        oversized = await _error(client, "analyze_alert", payload="x" * (MAX_PAYLOAD_BYTES + 1))
        wrong_type = await _error(client, "list_incidents", limit="ten")
        acked = await _call(client, "acknowledge_incident", id=known, by="Ann Lee")
        silenced = await _call(client, "silence_incident", id=known, duration="2h", by="Ann Lee")
        resolved = await _call(client, "resolve_incident", id=known, by="Bo", note="pool resized")

    assert listed_tools == READS | WRITES
    assert "there is no incident INC-NOSUCH1" in unknown
    assert "is not a duration" in bad_duration
    assert f"over the {MAX_PAYLOAD_BYTES} byte limit" in oversized
    assert wrong_type
    assert acked["incident"]["owner"] == "Ann Lee (via MCP)"
    assert silenced["silenced_until"]
    assert resolved["incident"]["status"] == "resolved"
    store = SqliteStore(tmp_path / "bot.db")
    try:
        events = [(e.kind.value, e.actor, e.detail) for e in store.timeline(known)]
        incident = store.get_incident(known)
    finally:
        store.close()
    assert incident is not None and incident.resolved_by == "Bo (via MCP)"
    kinds = [(kind, actor) for kind, actor, _ in events]
    assert ("acknowledged", "Ann Lee (via MCP)") in kinds
    assert ("silenced", "Ann Lee (via MCP)") in kinds
    assert events[-1][2].endswith(": pool resized")
