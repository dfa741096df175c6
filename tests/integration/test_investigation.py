"""The investigation loop through the real anthropic SDK against the local Messages API server,
scripted to call tools: tool_use, then our tool_result, then the conclusion. Every assertion
on what Claude saw is made on the request bodies the fake server recorded."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from anthropic import AsyncAnthropic

from analysis import prompting
from analysis.claude import ClaudeAnalyzer
from analysis.engine import AnalysisEngine, EngineConfig
from analysis.investigation.loop import InvestigationLimits, Investigator
from analysis.investigation.past_incidents import past_incidents_tool
from analysis.investigation.registry import Tool, ToolRegistry
from analysis.models import AnalyzerKind
from incidents.lifecycle import IncidentService
from incidents.models import Alert, Incident
from incidents.sqlite import SqliteStore
from ingest.normalize import parse_body
from tests.conftest import BRIEF_ALERT, ManualClock
from tests.fakes.anthropic_server import Delay, FakeAnthropic, RecordedRequest, ToolUse
from tests.integration.test_engine import GOOD_ANALYSIS

pytestmark = pytest.mark.integration

ANY: dict[str, Any] = {"type": "object", "properties": {"q": {"type": "string"}}}
SECRET_PASSWORD = "hunter2-Sup3rSecret"
SECRET_KEY = "AKIAIOSFODNN7EXAMPLE"


class Tools:
    """Scripted tools, and how often each ran; also the engine's `ToolSource`."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.runs: dict[str, int] = {}

    def _counted(self, name: str, value: Any) -> Tool:
        async def run(arguments: dict[str, Any]) -> Any:
            self.runs[name] = self.runs.get(name, 0) + 1
            if name == "slow":
                await asyncio.sleep(5)
            if name == "failing":
                raise RuntimeError(f"boom reading db-1 with password={SECRET_PASSWORD}")
            return value

        return Tool(name, f"the {name} tool", ANY, run)

    def tools_for(self, incident: Incident, alert: Alert) -> ToolRegistry:
        return ToolRegistry(
            [
                self._counted("echo", "echo: all quiet"),
                self._counted("address", "refused by 10.0.3.17:5432"),
                self._counted("slow", "never seen"),
                self._counted("failing", None),
                self._counted("big", "line of log output\n" * 2000),
                self._counted(
                    "secrets",
                    {
                        "password": SECRET_PASSWORD,
                        "events": [f"login with key {SECRET_KEY} failed"],
                    },
                ),
                past_incidents_tool(self.store, incident),
            ]
        )


class Rig:
    def __init__(
        self,
        fake: FakeAnthropic,
        store: SqliteStore,
        clock: ManualClock,
        limits: InvestigationLimits,
        redact_ips: bool = False,
    ) -> None:
        self.fake = fake
        self.store = store
        self.clock = clock
        self.service = IncidentService(store, clock=clock)
        self.client = AsyncAnthropic(api_key="sk-ant-test", base_url=fake.url, max_retries=0)
        self.tools = Tools(store)
        self.engine = AnalysisEngine(
            store,
            EngineConfig(),
            claude=ClaudeAnalyzer(self.client),
            clock=clock,
            investigator=Investigator(self.client, limits, redact_ips=redact_ips),
            tools=self.tools,
        )

    def record(self, payload: dict[str, Any]) -> tuple[Incident, Alert]:
        [alert] = parse_body(json.dumps(payload).encode(), self.clock.now).alerts
        outcome = self.service.record(alert)
        assert outcome.incident is not None
        return outcome.incident, alert


@pytest.fixture
async def make_rig(store: SqliteStore, clock: ManualClock) -> AsyncIterator[Any]:
    async with FakeAnthropic(default_tool_input=GOOD_ANALYSIS) as fake:
        made: list[Rig] = []

        def make(redact_ips: bool = False, **limits: Any) -> Rig:
            rig = Rig(fake, store, clock, InvestigationLimits(**limits), redact_ips)
            made.append(rig)
            return rig

        yield make
        for rig in made:
            await rig.engine.close()


def call(name: str, **arguments: Any) -> ToolUse:
    return ToolUse(arguments, name=name)


def conclude() -> ToolUse:
    return ToolUse(GOOD_ANALYSIS, name=prompting.TOOL_NAME)


def tool_names(request: RecordedRequest) -> list[str]:
    assert request.body is not None
    return [tool["name"] for tool in request.body["tools"]]


def results_in(request: RecordedRequest) -> list[dict[str, Any]]:
    """The tool_result blocks of the request's last (user) message. A tool's result opens
    with the number the evidence cites (`[call #3]`): it is given as `number`, and the
    content without it."""
    assert request.body is not None
    last = request.body["messages"][-1]
    assert last["role"] == "user"
    blocks = []
    for block in last["content"]:
        if block.get("type") != "tool_result":
            continue
        numbered = re.match(r"\[call #(\d+)\]\n", block["content"])
        if numbered:
            block = {
                **block,
                "number": int(numbered[1]),
                "content": block["content"][numbered.end() :],
            }
        blocks.append(block)
    return blocks


async def test_a_high_incident_is_investigated_and_concludes_with_the_recording_tool(make_rig):
    rig = make_rig()
    rig.fake.enqueue(call("echo", q="connections"), conclude())
    incident, alert = rig.record(BRIEF_ALERT)

    analysis = await rig.engine.analyze(incident, alert)

    assert analysis.analyzer is AnalyzerKind.CLAUDE
    assert analysis.root_cause == GOOD_ANALYSIS["root_cause"]
    first, second = rig.fake.requests
    assert first.body is not None and first.body["tool_choice"] == {"type": "any"}
    assert "echo" in tool_names(first) and prompting.TOOL_NAME in tool_names(first)
    assert "Analyze this incident." in first.prompt_text
    assert "This incident is serious enough to investigate" in first.prompt_text
    [result] = results_in(second)
    assert result["content"] == "echo: all quiet" and result["is_error"] is False
    assert result["number"] == 1
    trace = analysis.investigation
    assert trace is not None
    assert (trace.steps, trace.stopped) == (2, "concluded")
    [made] = trace.calls
    assert (made.step, made.tool, made.arguments, made.result) == (
        1,
        "echo",
        {"q": "connections"},
        "echo: all quiet",
    )
    assert trace.input_tokens + trace.cache_write_tokens > 0 and trace.output_tokens > 0
    assert analysis.cost_usd == pytest.approx(trace.cost_usd) and analysis.cost_usd > 0
    assert rig.store.latest_analysis(incident.id) is not None


async def test_the_step_bound_offers_only_the_recording_tool_on_the_last_step(make_rig):
    rig = make_rig(max_steps=3)
    # A model that would go on calling tools forever; the third answer is the fake's default.
    rig.fake.enqueue(call("echo", q="a"), call("echo", q="b"))
    incident, alert = rig.record(BRIEF_ALERT)

    analysis = await rig.engine.analyze(incident, alert)

    assert len(rig.fake.requests) == 3
    for request in rig.fake.requests[:2]:
        assert "echo" in tool_names(request)
    last = rig.fake.requests[2]
    assert tool_names(last) == [prompting.TOOL_NAME]
    assert last.body is not None
    assert last.body["tool_choice"] == {"type": "tool", "name": prompting.TOOL_NAME}
    assert analysis.investigation is not None
    assert (analysis.investigation.steps, analysis.investigation.stopped) == (3, "step limit")
    assert analysis.root_cause == GOOD_ANALYSIS["root_cause"]


async def test_a_slow_tool_times_out_as_an_error_and_the_loop_goes_on(make_rig):
    rig = make_rig(tool_timeout=0.2)
    rig.fake.enqueue(call("slow"), call("echo"), conclude())
    incident, alert = rig.record(BRIEF_ALERT)

    analysis = await rig.engine.analyze(incident, alert)

    [timed_out] = results_in(rig.fake.requests[1])
    assert timed_out["is_error"] is True
    assert timed_out["content"] == "slow timed out after 0.2s."
    [echoed] = results_in(rig.fake.requests[2])
    assert echoed["is_error"] is False
    assert analysis.analyzer is AnalyzerKind.CLAUDE
    assert analysis.investigation is not None
    assert [c.is_error for c in analysis.investigation.calls] == [True, False]


async def test_an_identical_call_is_refused_and_not_run_again(make_rig):
    rig = make_rig()
    rig.fake.enqueue(call("echo", q="same"), call("echo", q="same"), call("echo", q="other"))
    rig.fake.enqueue(conclude())
    incident, alert = rig.record(BRIEF_ALERT)

    await rig.engine.analyze(incident, alert)

    [refused] = results_in(rig.fake.requests[2])
    assert refused["is_error"] is True
    assert "identical call to echo was already made at step 1" in refused["content"]
    [other] = results_in(rig.fake.requests[3])
    assert other["is_error"] is False
    assert rig.tools.runs["echo"] == 2


async def test_a_long_result_is_cut_with_a_note_to_narrow_the_query(make_rig):
    rig = make_rig(result_chars=8000)
    rig.fake.enqueue(call("big"), conclude())
    incident, alert = rig.record(BRIEF_ALERT)

    await rig.engine.analyze(incident, alert)

    [cut] = results_in(rig.fake.requests[1])
    content = cut["content"]
    head, note = content.split("\n[cut: ", 1)
    assert len(head) == 8000
    assert note.startswith("this result was 38000 characters")
    assert "Narrow the query" in note


async def test_secrets_in_tool_results_never_reach_the_api(make_rig):
    rig = make_rig()
    rig.fake.enqueue(call("secrets"), call("failing"), conclude())
    incident, alert = rig.record(BRIEF_ALERT)

    analysis = await rig.engine.analyze(incident, alert)

    for request in rig.fake.requests:
        raw = request.raw.decode()
        assert SECRET_PASSWORD not in raw and SECRET_KEY not in raw
    [seen] = results_in(rig.fake.requests[1])
    assert "[REDACTED" in seen["content"] and "login with key" in seen["content"]
    stored = analysis.model_dump_json()
    assert SECRET_PASSWORD not in stored and SECRET_KEY not in stored


async def test_a_failing_tool_is_an_error_result_naming_it_and_the_loop_goes_on(make_rig):
    rig = make_rig()
    rig.fake.enqueue(call("failing"), call("no_such_tool"), call("echo"), conclude())
    incident, alert = rig.record(BRIEF_ALERT)

    analysis = await rig.engine.analyze(incident, alert)

    [failed] = results_in(rig.fake.requests[1])
    assert failed["is_error"] is True
    assert failed["content"].startswith("failing failed: RuntimeError: boom reading db-1")
    [unknown] = results_in(rig.fake.requests[2])
    assert unknown["is_error"] is True and "no tool named 'no_such_tool'" in unknown["content"]
    [fine] = results_in(rig.fake.requests[3])
    assert fine["is_error"] is False
    assert analysis.analyzer is AnalyzerKind.CLAUDE
    assert analysis.investigation is not None and analysis.investigation.steps == 4


async def test_medium_keeps_the_single_call(make_rig):
    rig = make_rig()
    incident, alert = rig.record({**BRIEF_ALERT, "severity": "MEDIUM"})

    analysis = await rig.engine.analyze(incident, alert)

    [request] = rig.fake.requests
    assert tool_names(request) == [prompting.TOOL_NAME]
    assert analysis.investigation is None
    assert analysis.model == EngineConfig().fast_model


async def test_a_single_call_cached_for_a_medium_incident_is_not_served_to_a_high_one(make_rig):
    rig = make_rig()
    medium, alert = rig.record({**BRIEF_ALERT, "severity": "MEDIUM"})
    await rig.engine.analyze(medium, alert)
    rig.service.resolve(medium.id, "U7")
    rig.clock.advance(hours=3)  # past the reopen window, within the cache's day
    rig.fake.enqueue(call("echo", q="connections"), conclude())
    high, alert = rig.record(BRIEF_ALERT)

    analysis = await rig.engine.analyze(high, alert)

    assert high.id != medium.id and high.fingerprint == medium.fingerprint
    assert high.severity.value == "HIGH"
    _, first, second = rig.fake.requests
    assert "echo" in tool_names(first) and "echo" in tool_names(second)
    assert analysis.cached is False and analysis.investigation is not None
    assert rig.tools.runs == {"echo": 1}
    again, alert = rig.record(BRIEF_ALERT)
    assert (await rig.engine.analyze(again, alert)).cached is True, "the investigation is cached"
    assert len(rig.fake.requests) == 3


async def test_a_single_call_under_way_for_medium_does_not_serve_the_incident_once_high(
    make_rig,
):
    rig = make_rig()
    rig.fake.enqueue(Delay(1.0))  # the MEDIUM analysis's single call answers late
    medium, alert = rig.record({**BRIEF_ALERT, "severity": "MEDIUM"})
    single = asyncio.create_task(rig.engine.analyze(medium, alert))
    for _ in range(200):
        if rig.fake.requests:
            break
        await asyncio.sleep(0.01)
    rig.fake.enqueue(call("echo", q="connections"), conclude())
    high, alert = rig.record(BRIEF_ALERT)  # the same incident, escalated

    investigated = await rig.engine.analyze(high, alert)
    await single

    assert high.id == medium.id and high.severity.value == "HIGH"
    assert investigated.cached is False and investigated.investigation is not None
    assert rig.tools.runs == {"echo": 1}
    assert len(rig.fake.requests) == 3


async def test_a_spent_budget_makes_the_next_request_conclude(make_rig):
    rig = make_rig(max_cost_usd=0.000001)
    rig.fake.enqueue(call("echo"))
    incident, alert = rig.record(BRIEF_ALERT)

    analysis = await rig.engine.analyze(incident, alert)

    assert len(rig.fake.requests) == 2
    assert "echo" in tool_names(rig.fake.requests[0])
    assert tool_names(rig.fake.requests[1]) == [prompting.TOOL_NAME]
    assert analysis.investigation is not None
    assert analysis.investigation.stopped == "budget"
    assert analysis.root_cause == GOOD_ANALYSIS["root_cause"]


async def test_a_token_budget_stops_the_loop_too(make_rig):
    rig = make_rig(max_tokens=1000)
    rig.fake.enqueue(call("echo"))
    incident, alert = rig.record(BRIEF_ALERT)

    analysis = await rig.engine.analyze(incident, alert)

    assert [tool_names(r) == [prompting.TOOL_NAME] for r in rig.fake.requests] == [False, True]
    assert analysis.investigation is not None and analysis.investigation.stopped == "budget"


async def test_past_incidents_come_from_the_store_with_how_they_ended(make_rig):
    rig = make_rig()
    past, _ = rig.record({**BRIEF_ALERT, "title": "Database Connection Failed on db-2"})
    rig.service.resolve(past.id, "U42")
    rig.clock.advance(hours=2)
    rig.fake.enqueue(call("past_incidents", limit=3), conclude())
    incident, alert = rig.record({**BRIEF_ALERT, "title": "Database Connection Failed on db-7"})

    analysis = await rig.engine.analyze(incident, alert)

    [result] = results_in(rig.fake.requests[1])
    [found] = json.loads(result["content"])
    assert found["incident_id"] == past.id
    assert found["outcome"].startswith("resolved by U42")
    assert analysis.investigation is not None
    assert analysis.investigation.calls[0].tool == "past_incidents"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"limit": 0}, "limit must be an integer from 1 to 10"),
        ({"limit": True}, "limit must be an integer from 1 to 10"),
        ({"title": 7}, "title must be a non-empty string of at most 300 characters"),
        ({"title": "x" * 301}, "title must be a non-empty string of at most 300 characters"),
        ({"service": "db"}, "unknown argument(s) service; the arguments are: title, limit"),
    ],
)
async def test_past_incidents_reads_its_arguments_strictly(
    make_rig, arguments: dict[str, Any], message: str
):
    rig = make_rig()
    incident, _ = rig.record(BRIEF_ALERT)
    tool = past_incidents_tool(rig.store, incident)

    with pytest.raises(ValueError) as refused:
        await tool.run(arguments)

    assert str(refused.value) == message


async def test_a_forced_conclusion_gets_one_correction_then_the_offline_analyzer(make_rig):
    rig = make_rig(max_cost_usd=0.000001)
    invalid = ToolUse({"root_cause": "no other field"}, name=prompting.TOOL_NAME)
    rig.fake.enqueue(call("echo"), invalid, invalid, conclude())
    incident, alert = rig.record(BRIEF_ALERT)

    analysis = await rig.engine.analyze(incident, alert)

    assert len(rig.fake.requests) == 3 and rig.fake.pending == 1
    [correction] = results_in(rig.fake.requests[2])
    assert correction["is_error"] is True and "did not match" in correction["content"]
    assert analysis.analyzer is AnalyzerKind.OFFLINE
    assert analysis.cost_usd > 0, "the tokens spent on a failed investigation still count"
    assert any("within the investigation's bounds (budget)" in n for n in analysis.context_notes)


def test_a_tool_name_registered_twice_is_refused():
    async def run(arguments: dict[str, Any]) -> str:
        return ""

    with pytest.raises(ValueError, match="registered twice"):
        ToolRegistry([Tool("echo", "", ANY, run), Tool("echo", "", ANY, run)])


@pytest.mark.parametrize("redact_ips", [False, True])
async def test_tool_results_honour_redact_ips(make_rig, redact_ips: bool):
    rig = make_rig(redact_ips=redact_ips)
    rig.fake.enqueue(call("address"), conclude())
    incident, alert = rig.record(BRIEF_ALERT)

    await rig.engine.analyze(incident, alert)

    [result] = results_in(rig.fake.requests[1])
    assert ("10.0.3.17" in result["content"]) is not redact_ips
    assert "refused by" in result["content"]


async def test_the_evidence_cites_numbered_calls_and_an_invented_number_is_dropped(make_rig):
    rig = make_rig()
    evidence = [
        {"claim": "connections are refused by the database", "calls": [2, 9]},
        {"claim": "nothing else is wrong", "calls": [1]},
    ]
    rig.fake.enqueue(
        call("echo"),
        call("address"),
        ToolUse({**GOOD_ANALYSIS, "evidence": evidence}, name=prompting.TOOL_NAME),
    )
    incident, alert = rig.record(BRIEF_ALERT)

    analysis = await rig.engine.analyze(incident, alert)

    assert [result["number"] for result in results_in(rig.fake.requests[2])] == [2]
    assert analysis.investigation is not None
    assert [(c.number, c.tool) for c in analysis.investigation.calls] == [
        (1, "echo"),
        (2, "address"),
    ]
    assert [(e.claim, e.calls) for e in analysis.evidence] == [
        ("connections are refused by the database", [2]),
        ("nothing else is wrong", [1]),
    ]


async def test_the_single_call_keeps_no_evidence_since_it_called_no_tool(make_rig):
    rig = make_rig()
    cited = [{"claim": "a guess", "calls": [1]}]
    rig.fake.enqueue(ToolUse({**GOOD_ANALYSIS, "evidence": cited}, name=prompting.TOOL_NAME))
    incident, alert = rig.record({**BRIEF_ALERT, "severity": "MEDIUM"})

    analysis = await rig.engine.analyze(incident, alert)

    assert analysis.investigation is None and analysis.evidence == []


async def test_an_invalid_conclusion_at_the_step_limit_gets_one_correction_too(make_rig):
    rig = make_rig(max_steps=2)
    invalid = ToolUse({"root_cause": "no other field"}, name=prompting.TOOL_NAME)
    rig.fake.enqueue(call("echo"), invalid, conclude())
    incident, alert = rig.record(BRIEF_ALERT)

    analysis = await rig.engine.analyze(incident, alert)

    assert len(rig.fake.requests) == 3
    assert all(tool_names(r) == [prompting.TOOL_NAME] for r in rig.fake.requests[1:])
    assert analysis.analyzer is AnalyzerKind.CLAUDE
    assert analysis.investigation is not None
    assert (analysis.investigation.steps, analysis.investigation.stopped) == (3, "step limit")


async def test_evidence_citing_a_failed_call_keeps_only_the_calls_that_answered(make_rig):
    rig = make_rig()
    evidence = [{"claim": "the database refused", "calls": [1, 2]}]
    rig.fake.enqueue(
        call("address"),
        call("failing"),
        ToolUse({**GOOD_ANALYSIS, "evidence": evidence}, name=prompting.TOOL_NAME),
    )
    incident, alert = rig.record(BRIEF_ALERT)

    analysis = await rig.engine.analyze(incident, alert)

    assert [(e.claim, e.calls) for e in analysis.evidence] == [("the database refused", [1])]


class BrokenTools:
    def tools_for(self, incident: Incident, alert: Alert) -> ToolRegistry:
        raise ValueError("tool 'a' is registered twice")


async def test_a_tool_source_that_fails_costs_the_tools_not_the_analysis(make_rig):
    rig = make_rig()
    rig.engine.tools = BrokenTools()
    incident, alert = rig.record(BRIEF_ALERT)

    analysis = await rig.engine.analyze(incident, alert)

    assert analysis.analyzer is AnalyzerKind.CLAUDE and analysis.investigation is None
    [request] = rig.fake.requests
    assert tool_names(request) == [prompting.TOOL_NAME]
