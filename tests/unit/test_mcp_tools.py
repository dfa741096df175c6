"""The MCP tools through the SDK's own client, in memory: schemas, results, redaction,
bounds, bad input and writes, on a real SQLite store. The transports are tested on real
processes in tests/integration/test_mcp_stdio.py and tests/integration/test_mcp_http.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, MCPError

from analysis.engine import AnalysisEngine
from analysis.models import Evidence, InvestigationTrace, ToolCall
from bot.mcp_server.server import build_server
from bot.mcp_server.tools import IncidentTools, ToolDeps
from incidents.lifecycle import IncidentService
from incidents.offload import Offload
from incidents.sqlite import SqliteStore
from incidents.store import AnalysisRecord
from ingest.normalize import MAX_PAYLOAD_BYTES
from ingest.pipeline import Ingestor
from tests.conftest import BRIEF_ALERT

SECRET_PASSWORD = "hunter2hunter2"
SECRET_SLACK = "xoxb-2222222222-3333333333333-FAKEexampleTOKEN"
LEAKY_ALERT = {
    "source": "payments",
    "title": "Checkout failing for oncall.person@example.com",
    "message": f"login failed: password={SECRET_PASSWORD} token {SECRET_SLACK}",
    "severity": "CRITICAL",
}
READS = {"list_incidents", "get_incident", "search_alerts", "incident_stats", "analyze_alert"}
WRITES = {"acknowledge_incident", "resolve_incident", "silence_incident"}


class Rig:
    def __init__(self, path: Path) -> None:
        self.store = SqliteStore(path)
        self.ingestor = Ingestor(IncidentService(self.store), self.store)
        self.engine = AnalysisEngine(self.store)

    def tools(self) -> IncidentTools:
        deps = ToolDeps(
            store=self.store,
            service=self.ingestor.service,
            ingestor=self.ingestor,
            engine=self.engine,
            offload=Offload(),
        )
        return IncidentTools(deps)

    def seed(self, payload: dict[str, Any]) -> str:
        return self.ingestor.ingest(json.dumps(payload).encode(), "test").incident_ids[0]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    made = Rig(tmp_path / "mcp.db")
    yield made
    await made.engine.close()
    made.store.close()


async def _call(client: Client, name: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.content
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


async def _error(client: Client, name: str, **arguments: Any) -> str:
    result = await client.call_tool(name, arguments)
    assert result.is_error
    return " ".join(getattr(block, "text", "") for block in result.content)


async def test_writes_are_not_listed_unless_allowed(rig: Rig):
    async with Client(build_server(rig.tools(), allow_writes=False)) as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}
        assert listed == READS
        assert "Unknown tool" in await _error(client, "acknowledge_incident", id="INC-1", by="x")
    async with Client(build_server(rig.tools(), allow_writes=True)) as client:
        tools = (await client.list_tools()).tools
        assert {tool.name for tool in tools} == READS | WRITES
        for tool in tools:
            assert tool.input_schema["type"] == "object"
            assert tool.output_schema is not None, f"{tool.name} has no output schema"


async def test_reads_are_redacted_and_shaped(rig: Rig):
    leaky = rig.seed(LEAKY_ALERT)
    rig.seed(BRIEF_ALERT)
    await rig.engine.analyze(*_incident_and_alert(rig, leaky))
    async with Client(build_server(rig.tools(), allow_writes=False)) as client:
        listed = await _call(client, "list_incidents")
        critical = await _call(client, "list_incidents", severity="CRITICAL")
        detail = await _call(client, "get_incident", id=leaky.lower())
        alerts = await _call(client, "search_alerts", text="login failed")
        stats = await _call(client, "incident_stats", period="7d")
        page = await client.read_resource(f"incident://{leaky}")
        prompt = await client.get_prompt("postmortem", {"id": leaky})

    assert [i["severity"] for i in listed["incidents"]] == ["HIGH", "CRITICAL"]
    assert [i["id"] for i in critical["incidents"]] == [leaky]
    assert detail["incident"]["id"] == leaky and detail["analysis"] is not None
    assert detail["timeline"][0]["kind"] == "opened"
    assert [a["incident_id"] for a in alerts["alerts"]] == [leaky]
    assert stats["opened"]["CRITICAL"] == 1 and stats["opened"]["HIGH"] == 1
    markdown = page.contents[0].text  # type: ignore[union-attr]
    assert f"# {leaky}" in markdown and "## Timeline" in markdown
    text = json.dumps([listed, detail, alerts, stats, markdown, prompt.model_dump(mode="json")])
    for secret in (SECRET_PASSWORD, SECRET_SLACK, "oncall.person@example.com"):
        assert secret not in text
    assert "[REDACTED:password]" in text and "[REDACTED:email]" in text


async def test_bad_input_is_a_tool_error_not_a_crash(rig: Rig):
    known = rig.seed(BRIEF_ALERT)
    async with Client(build_server(rig.tools(), allow_writes=True)) as client:
        assert "there is no incident INC-NOPE" in await _error(
            client, "get_incident", id="inc-nope"
        )
        assert "not an incident id" in await _error(client, "get_incident", id="../etc/passwd")
        assert "is not a duration" in await _error(
            client, "silence_incident", id=known, duration="forever", by="ann"
        )
        assert "at most 30d" in await _error(
            client, "silence_incident", id=known, duration="90d", by="ann"
        )
        huge = "x" * (MAX_PAYLOAD_BYTES + 1)
        assert "over the" in await _error(client, "analyze_alert", payload=huge)
        assert "neither a duration" in await _error(client, "list_incidents", since="last tuesday")
        assert await _error(client, "list_incidents", limit=100_000)
        assert await _error(client, "acknowledge_incident", id=known, by="")
        with pytest.raises(MCPError, match="there is no incident INC-NOPE"):
            await client.read_resource("incident://INC-NOPE")
        with pytest.raises(MCPError, match="there is no incident INC-NOPE"):
            await client.get_prompt("postmortem", {"id": "INC-NOPE"})
        # And it still serves.
        assert (await _call(client, "get_incident", id=known))["incident"]["id"] == known


async def test_writes_are_recorded_as_made_via_mcp_by_the_person(rig: Rig):
    known = rig.seed(BRIEF_ALERT)
    async with Client(build_server(rig.tools(), allow_writes=True)) as client:
        acked = await _call(client, "acknowledge_incident", id=known, by="Ann Lee")
        again = await _call(client, "acknowledge_incident", id=known, by="Bob")
        silenced = await _call(client, "silence_incident", id=known, duration="1h", by="Ann Lee")
        resolved = await _call(
            client, "resolve_incident", id=known, by="Ann Lee", note="rolled back the pool"
        )
        late = await _error(client, "acknowledge_incident", id=known, by="Bob")

    assert acked["incident"]["status"] == "acknowledged"
    assert acked["incident"]["owner"] == "Ann Lee (via MCP)"
    assert "already acknowledged by Ann Lee (via MCP)" in again["done"]
    assert silenced["silenced_until"] is not None
    assert resolved["incident"]["status"] == "resolved"
    assert "already resolved" in late
    events = {(e.kind.value, e.actor): e.detail for e in rig.store.timeline(known)}
    assert ("acknowledged", "Ann Lee (via MCP)") in events
    assert ("silenced", "Ann Lee (via MCP)") in events
    assert events[("resolved", "Ann Lee (via MCP)")].endswith(": rolled back the pool")


async def test_analyze_alert_records_the_alert_and_returns_its_analysis(rig: Rig):
    async with Client(build_server(rig.tools(), allow_writes=False)) as client:
        answer = await _call(client, "analyze_alert", payload=json.dumps(LEAKY_ALERT))
        plain = await _call(client, "analyze_alert", payload="disk full on db-7: /var at 100%")
        unreadable = await _error(client, "analyze_alert", payload="   ")

    assert answer["outcome"] == "opened"
    assert answer["analysis"]["root_cause"]
    assert SECRET_PASSWORD not in json.dumps(answer)
    assert rig.store.get_incident(answer["incident"]["id"]) is not None
    assert plain["incident"]["id"] != answer["incident"]["id"]
    assert "empty" in unreadable


async def test_results_are_bounded(rig: Rig):
    for n in range(30):
        name = "".join(chr(ord("a") + int(digit)) for digit in f"{n:02d}")  # no digits: one each
        rig.seed({**BRIEF_ALERT, "source": f"svc-{name}", "title": f"Problem {name} " + "y" * 5000,
                  "message": "z" * 50_000})  # fmt: skip
    async with Client(build_server(rig.tools(), allow_writes=False)) as client:
        listed = await _call(client, "list_incidents", limit=25)
        alerts = await _call(client, "search_alerts", limit=5)

    assert len(listed["incidents"]) == 25 and listed["truncated"]
    assert all(len(i["title"]) <= 300 for i in listed["incidents"])
    assert len(alerts["alerts"]) == 5 and alerts["truncated"]
    assert all(len(a["message"]) <= 2000 for a in alerts["alerts"])


def _incident_and_alert(rig: Rig, incident_id: str) -> Any:
    incident = rig.store.get_incident(incident_id)
    assert incident is not None
    return incident, rig.store.occurrences(incident_id, 1)[0].alert


async def test_resolve_records_the_cause_and_fix_and_get_incident_shows_them(rig: Rig):
    known = rig.seed(BRIEF_ALERT)
    async with Client(build_server(rig.tools(), allow_writes=True)) as client:
        resolved = await _call(
            client,
            "resolve_incident",
            id=known,
            by="Ann Lee",
            cause=f"pool too small; the new password={SECRET_PASSWORD} was fine",
            fix="raised max_connections",
        )
        detail = await _call(client, "get_incident", id=known)

    assert resolved["done"].endswith("; cause and fix recorded")
    confirmed = detail["confirmed"]
    assert confirmed["by"] == "Ann Lee (via MCP)" and confirmed["fix"] == "raised max_connections"
    assert confirmed["cause"].startswith("pool too small") and SECRET_PASSWORD not in json.dumps(
        detail
    )
    incident = rig.store.get_incident(known)
    assert incident is not None and incident.confirmed is not None
    assert SECRET_PASSWORD in (incident.confirmed.cause or ""), (
        "kept as typed, redacted on the way out"
    )


async def test_get_incident_shows_the_investigation_and_its_evidence_redacted(rig: Rig):
    known = rig.seed(BRIEF_ALERT)
    incident = rig.store.get_incident(known)
    assert incident is not None
    stored = AnalysisEngine(rig.store)
    analysis = (
        await stored.analyze(incident, rig.store.occurrences(known, 1)[0].alert)
    ).model_copy(
        update={
            "evidence": [Evidence(claim="the pool is exhausted", calls=[1])],
            "investigation": InvestigationTrace(
                steps=2,
                calls=[
                    ToolCall(
                        number=1,
                        step=1,
                        tool="log_events",
                        arguments={"filter_pattern": "FATAL"},
                        result=f"FATAL too many connections; password={SECRET_PASSWORD}",
                    )
                ],  # fmt: skip
                cost_usd=0.02,
                seconds=3.5,
            ),
        }
    )
    await stored.close()
    rig.store.put_analysis(
        AnalysisRecord(
            incident_id=known, fingerprint=incident.fingerprint, source=incident.source,
            prompt_version=analysis.prompt_version, created_at=analysis.created_at,
            analyzer="claude", model="claude-sonnet-4-6", cached=False, cost_usd=0.02,
            body=analysis.model_dump_json(),
        )
    )  # fmt: skip
    async with Client(build_server(rig.tools(), allow_writes=False)) as client:
        detail = await _call(client, "get_incident", id=known)

    shown = detail["analysis"]
    assert shown["evidence"] == [{"claim": "the pool is exhausted", "calls": [1]}]
    [call] = shown["investigation"]["calls"]
    assert (call["number"], call["tool"], call["arguments"]) == (
        1,
        "log_events",
        "filter_pattern=FATAL",
    )
    assert call["result"].startswith("FATAL too many connections")
    assert SECRET_PASSWORD not in json.dumps(detail)
    assert shown["investigation"]["stopped"] == "concluded" and shown["lessons"] == []
