"""One scenario through the bot's own analysis: the alert parsed and recorded in a fresh
SQLite store, the context gathered from moto, and the real `Investigator` calling the real
tools (`CombinedTools(StoreTools, AwsTools)`) against moto, with "Claude" either the local
Messages API fake answering from the scenario's recording, or the real API (`--live`), whose
answers are recorded back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from anthropic import AsyncAnthropic

from analysis import prompting
from analysis.aws_clients import ClientFactory
from analysis.claude import ClaudeAnalyzer
from analysis.engine import AnalysisEngine, EngineConfig
from analysis.gather import ContextGatherer
from analysis.investigation.loop import InvestigationLimits, Investigator
from analysis.investigation.registry import ToolSource
from analysis.models import Analysis
from bench.investigation import alerts, seed
from bench.investigation.scenario import Call, Recording, Scenario, Step
from incidents.lifecycle import IncidentService
from incidents.models import Alert, Incident
from incidents.sqlite import SqliteStore
from ingest.normalize import parse_body
from tests.fakes.anthropic_server import Error, FakeAnthropic, Turn
from tests.fakes.moto_server import reset

ToolsFor = Callable[[SqliteStore, ClientFactory, Scenario], ToolSource]


@dataclass
class Run:
    """What one scenario's investigation did, before scoring."""

    scenario: Scenario
    analysis: Analysis
    seconds: float
    unused_answers: int = 0
    recorded: Recording | None = None


def alert_time() -> datetime:
    """On the minute (so metric periods line up with the datapoints), ten minutes ago (so
    the tools' default window, to ten minutes after the alert, is already over)."""
    return datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _record_alert(store: SqliteStore, scenario: Scenario, at: datetime) -> tuple[Incident, Alert]:
    """The past incidents of the scenario, each resolved, then the alert itself."""
    clock = _Clock(at)
    service = IncidentService(store, clock=clock)
    for past in scenario.seed.past_incidents:
        clock.now = at - timedelta(days=past.days_ago)
        [earlier] = parse_alerts(scenario, clock.now)
        opened = service.record(earlier).incident
        assert opened is not None
        clock.now += timedelta(minutes=past.resolved_after_minutes)
        service.resolve(opened.id, "U0ONCALL", past.note or None)
    clock.now = at
    first, *_ = parse_alerts(scenario, at)
    outcome = service.record(first)
    assert outcome.incident is not None
    return outcome.incident, first


def parse_alerts(scenario: Scenario, at: datetime) -> list[Alert]:
    body = json.dumps(alerts.payload(scenario.alert, at)).encode()
    return parse_body(body, at).alerts


def turns(recording: Recording) -> list[Turn]:
    """The recorded answers as the fake sends them, block for block."""
    turns = []
    for step in recording.steps:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": step.text}] if step.text else []
        blocks += [
            {"type": "tool_use", "name": call.tool, "input": call.input} for call in step.calls
        ]
        turns.append(Turn(tuple(blocks), step.usage))
    return turns


@dataclass
class Harness:
    """The parts every scenario shares: moto's endpoint, boto3 clients on it, a folder for
    the stores, and how the tools are built."""

    endpoint: str
    clients: ClientFactory
    folder: Path
    tools_for: ToolsFor
    limits: InvestigationLimits = field(default_factory=InvestigationLimits)

    def prepare(self, scenario: Scenario) -> tuple[SqliteStore, Incident, Alert]:
        reset(self.endpoint)
        at = alert_time()
        seed.seed(scenario, self.clients, at)
        store = SqliteStore(self.folder / f"{scenario.name}.db")
        incident, alert = _record_alert(store, scenario, at)
        return store, incident, alert

    def engine(
        self, store: SqliteStore, client: AsyncAnthropic, model: str, scenario: Scenario
    ) -> AnalysisEngine:
        """The engine as `bot.components.build_engine` makes it, on this scenario's store."""
        return AnalysisEngine(
            store,
            EngineConfig(model=model),
            claude=ClaudeAnalyzer(client),
            gatherer=ContextGatherer(store, self.clients, timeout=5.0),
            investigator=Investigator(client, self.limits),
            tools=self.tools_for(store, self.clients, scenario),
        )

    async def replay(self, scenario: Scenario, model: str) -> Run:
        """The scenario against its recording, served by the local Messages API fake."""
        store, incident, alert = self.prepare(scenario)
        async with FakeAnthropic() as fake:
            fake.default = lambda body: Error.invalid_request(
                "the recording has no answer left for this request"
            )
            fake.enqueue(*turns(scenario.recording))
            client = AsyncAnthropic(api_key="sk-ant-replay", base_url=fake.url, max_retries=0)
            engine = self.engine(store, client, model, scenario)
            try:
                started = time.monotonic()
                analysis = await engine.analyze(incident, alert)
                seconds = time.monotonic() - started
            finally:
                await engine.close()
                store.close()
            return Run(scenario, analysis, seconds, unused_answers=fake.pending)

    async def live(self, scenario: Scenario, model: str, api_key: str) -> Run:
        """The scenario with real Claude; its answers become the new recording."""
        store, incident, alert = self.prepare(scenario)
        captured: list[tuple[dict[str, Any], float]] = []
        sent: dict[int, float] = {}

        async def on_request(request: httpx.Request) -> None:
            sent[id(request)] = time.monotonic()

        async def on_response(response: httpx.Response) -> None:
            await response.aread()
            if response.request.url.path.endswith("/v1/messages") and response.is_success:
                took = time.monotonic() - sent.pop(id(response.request), time.monotonic())
                captured.append((response.json(), took))

        http = httpx.AsyncClient(
            timeout=120, event_hooks={"request": [on_request], "response": [on_response]}
        )
        client = AsyncAnthropic(api_key=api_key, http_client=http, max_retries=2)
        engine = self.engine(store, client, model, scenario)
        try:
            started = time.monotonic()
            analysis = await engine.analyze(incident, alert)
            seconds = time.monotonic() - started
        finally:
            await engine.close()
            store.close()
        return Run(scenario, analysis, seconds, recorded=recording_of(captured, analysis, model))


def recording_of(
    captured: list[tuple[dict[str, Any], float]], analysis: Analysis, model: str
) -> Recording:
    """The real answers as a recording; each tool call marked with whether it failed in this
    run, so that a replay expects the same."""
    failed = {
        (call.step, call.tool, json.dumps(call.arguments, sort_keys=True)): call.is_error
        for call in (analysis.investigation.calls if analysis.investigation else [])
    }
    steps = []
    for number, (message, seconds) in enumerate(captured, start=1):
        text = "\n".join(b["text"] for b in message["content"] if b.get("type") == "text")
        calls = [
            Call(
                tool=b["name"],
                input=b["input"],
                error=failed.get((number, b["name"], json.dumps(b["input"], sort_keys=True)), False)
                if b["name"] != prompting.TOOL_NAME
                else False,
            )
            for b in message["content"]
            if b.get("type") == "tool_use"
        ]
        usage = message["usage"]
        steps.append(Step(text=text, calls=calls, usage=usage, seconds=round(seconds, 3)))
    return Recording(model=model, steps=steps)
