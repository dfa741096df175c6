"""Learning from outcomes, through the real engine, store and gatherer, against the local
Messages API: what the team confirmed about an incident reaches the next analysis of the same
problem, and of a similar one, as a hypothesis to check; and a problem's cached analysis is not
reused once the team confirmed something it could not know."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from anthropic import AsyncAnthropic

from analysis.claude import ClaudeAnalyzer
from analysis.engine import AnalysisEngine, EngineConfig
from analysis.gather import ContextGatherer
from analysis.lessons import CAUTION, record_confirmation
from incidents.lifecycle import IncidentService
from incidents.models import Alert, Incident
from incidents.sqlite import SqliteStore
from ingest.normalize import parse_body
from tests.conftest import BRIEF_ALERT, ManualClock
from tests.fakes.anthropic_server import Delay, FakeAnthropic
from tests.integration.test_engine import GOOD_ANALYSIS

pytestmark = pytest.mark.integration

CAUSE = "the pool was sized for 10 connections after Tuesday's config change"
FIX = "raised max_connections to 200 and restarted the API tasks"
MEDIUM = {**BRIEF_ALERT, "severity": "MEDIUM"}


class Rig:
    def __init__(self, fake: FakeAnthropic, store: SqliteStore, clock: ManualClock) -> None:
        self.fake = fake
        self.store = store
        self.clock = clock
        self.service = IncidentService(store, clock=clock)
        self.client = AsyncAnthropic(api_key="sk-ant-test", base_url=fake.url, max_retries=0)
        self.engine = AnalysisEngine(
            store,
            EngineConfig(),
            claude=ClaudeAnalyzer(self.client),
            gatherer=ContextGatherer(store),
            clock=clock,
        )

    def record(self, payload: dict[str, Any]) -> tuple[Incident, Alert]:
        [alert] = parse_body(json.dumps(payload).encode(), self.clock.now).alerts
        outcome = self.service.record(alert)
        assert outcome.incident is not None
        return outcome.incident, alert

    def resolve_and_confirm(self, incident: Incident) -> None:
        """As the Slack modal and MCP do: confirm, which forgets the cached analysis."""
        self.service.resolve(incident.id, "U7")
        record_confirmation(self.service, self.store, incident.id, "U7", CAUSE, FIX)


@pytest.fixture
async def rig(store: SqliteStore, clock: ManualClock) -> AsyncIterator[Rig]:
    async with FakeAnthropic(default_tool_input=GOOD_ANALYSIS) as fake:
        made = Rig(fake, store, clock)
        yield made
        await made.engine.close()


def context_of(fake: FakeAnthropic, request: int = -1) -> dict[str, str]:
    """The `context` a request (the last by default) gave Claude, read from the fenced
    evidence."""
    text = fake.requests[request].prompt_text
    start = text.index('"context": {')
    document, _ = json.JSONDecoder().raw_decode(text[start + len('"context": ') :])
    return dict(document)


async def test_the_next_incident_of_the_problem_is_told_what_was_confirmed(rig: Rig):
    first, alert = rig.record(MEDIUM)
    await rig.engine.analyze(first, alert)
    rig.resolve_and_confirm(first)
    rig.clock.advance(hours=3)  # past the reopen window, within the cache's day

    second, alert = rig.record(MEDIUM)
    analysis = await rig.engine.analyze(second, alert)

    assert second.id != first.id and second.fingerprint == first.fingerprint
    assert len(rig.fake.requests) == 2, "the cached analysis predates the confirmation"
    assert analysis.cached is False
    confirmed = context_of(rig.fake)["confirmed_causes"]
    assert confirmed.startswith(
        f"last time ({first.id}, 3h ago): cause {CAUSE}, fixed by {FIX} (confirmed by U7)"
    )
    assert confirmed.endswith(CAUTION)
    assert "never\n  the conclusion" in rig.fake.requests[-1].prompt_text
    assert [(x.incident_id, x.same_alert, x.cause, x.fix) for x in analysis.lessons] == [
        (first.id, True, CAUSE, FIX)
    ]


async def test_a_similar_incident_is_told_too_and_an_unconfirmed_one_is_not(rig: Rig):
    first, alert = rig.record(MEDIUM)
    await rig.engine.analyze(first, alert)
    rig.resolve_and_confirm(first)
    rig.clock.advance(days=2)
    unconfirmed, alert = rig.record({**MEDIUM, "title": "Disk full on db-1"})
    await rig.engine.analyze(unconfirmed, alert)
    assert "confirmed_causes" not in context_of(rig.fake)

    similar, alert = rig.record({**MEDIUM, "title": "Test Error: Database Connection Failed db-2"})
    analysis = await rig.engine.analyze(similar, alert)

    assert similar.fingerprint != first.fingerprint
    assert context_of(rig.fake)["confirmed_causes"].startswith(
        f"a similar incident ({first.id}, 2d ago): cause {CAUSE}"
    )
    assert [x.same_alert for x in analysis.lessons] == [False]


async def test_a_reopened_incident_is_told_what_was_confirmed_about_itself(rig: Rig):
    first, alert = rig.record(MEDIUM)
    await rig.engine.analyze(first, alert)
    rig.resolve_and_confirm(first)
    rig.clock.advance(minutes=20)  # within the reopen window

    reopened, alert = rig.record(MEDIUM)
    analysis = await rig.engine.analyze(reopened, alert)

    assert reopened.id == first.id and reopened.reopen_count == 1
    assert context_of(rig.fake)["confirmed_causes"].startswith(
        f"last time ({first.id}, 20m ago): cause {CAUSE}"
    )
    assert [x.incident_id for x in analysis.lessons] == [first.id]


async def test_an_analysis_under_way_when_a_cause_is_confirmed_is_not_cached(rig: Rig):
    rig.fake.enqueue(Delay(1.0))  # Claude answers the first analysis late
    first, alert = rig.record(MEDIUM)
    analyzing = asyncio.create_task(rig.engine.analyze(first, alert))
    for _ in range(200):
        if rig.fake.requests:
            break
        await asyncio.sleep(0.01)
    rig.clock.advance(minutes=1)
    rig.resolve_and_confirm(first)  # forgets a cache the first analysis has yet to write
    await analyzing
    rig.clock.advance(hours=3)

    second, alert = rig.record(MEDIUM)
    analysis = await rig.engine.analyze(second, alert)

    assert len(rig.fake.requests) == 2, "the analysis that did not know the cause was cached"
    assert [x.incident_id for x in analysis.lessons] == [first.id]


async def test_a_cause_confirmed_on_another_incident_of_the_problem_stops_caching_too(rig: Rig):
    """The analysis under way is of a new incident; the cause is confirmed on an earlier one of
    the same problem. The analysis never saw that lesson, so it must not be reused."""
    earlier, _ = rig.record(MEDIUM)
    rig.service.resolve(earlier.id, "U7")
    rig.clock.advance(hours=3)  # past the reopen window: the next alert opens a new incident
    rig.fake.enqueue(Delay(1.0))  # Claude answers the new incident's analysis late
    current, alert = rig.record(MEDIUM)
    analyzing = asyncio.create_task(rig.engine.analyze(current, alert))
    for _ in range(200):
        if rig.fake.requests:
            break
        await asyncio.sleep(0.01)
    rig.clock.advance(minutes=1)
    record_confirmation(rig.service, rig.store, earlier.id, "U7", CAUSE, FIX)
    await analyzing
    rig.service.resolve(current.id, "U7")
    rig.clock.advance(hours=3)

    following, alert = rig.record(MEDIUM)
    analysis = await rig.engine.analyze(following, alert)

    assert len({earlier.id, current.id, following.id}) == 3
    assert earlier.fingerprint == current.fingerprint == following.fingerprint
    assert "confirmed_causes" not in context_of(rig.fake, 0)
    assert len(rig.fake.requests) == 2, "the analysis that did not know the cause was cached"
    assert analysis.cached is False
    assert [x.incident_id for x in analysis.lessons] == [earlier.id]
