"""The scenarios of bench/investigate.py kept honest: every file loads and its recording fits
the tools it calls, and a few replay end to end through the real engine, Investigator and AWS
tools against moto, with the scored outcome asserted. A scenario or a harness that breaks,
a recording whose arguments drift from the tools' schemas, or one whose evidence cites a call
its numbering no longer gives, fails here rather than in a benchmark nobody runs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from analysis import prompting
from analysis.investigation.loop import InvestigationLimits
from analysis.models import Diagnosis
from bench.investigation import scenario as scenarios
from bench.investigation.replay import Harness, parse_alerts, turns
from bench.investigation.scenario import Call, Recording, Scenario, Step
from bench.investigation.score import Outcome, names_cause, overall, score
from bench.investigation.tools import clients, tools_for
from incidents.models import Incident, Severity
from incidents.sqlite import SqliteStore
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.moto_gaps import moto_gaps  # noqa: F401
from tests.fakes.moto_server import aws, moto_server  # noqa: F401

pytestmark = pytest.mark.integration

ALL = scenarios.load_all()
BY_NAME = {scenario.name: scenario for scenario in ALL}
MODEL = "claude-sonnet-4-6"


def test_there_are_at_least_twenty_scenarios_each_named_after_its_file():
    assert len(ALL) >= 20
    assert len(BY_NAME) == len(ALL)
    assert [p.stem for p in scenarios.paths()] == [s.name for s in ALL]
    assert any(s.expect.stopped == "step limit" for s in ALL)
    assert sum(any(c.error for st in s.recording.steps for c in st.calls) for s in ALL) >= 3


def test_a_misspelt_key_makes_a_scenario_invalid(tmp_path: Path):
    text = (scenarios.DATA / "ecs-bad-deploy-5xx.yaml").read_text()
    broken = tmp_path / "ecs-bad-deploy-5xx.yaml"
    broken.write_text(text.replace("  log_groups:", "  log_group:", 1))

    with pytest.raises(ValueError, match="log_group"):
        scenarios.load(broken)


@pytest.mark.parametrize("scenario", ALL, ids=lambda s: s.name)
def test_the_alert_is_investigated_and_every_recorded_call_fits_its_tool(
    scenario: Scenario, store: SqliteStore
):
    """Calls not meant to fail must match the tool's input schema, the conclusion must be a
    valid analysis, and the recording must end the way the scenario expects."""
    [alert, *_] = parse_alerts(scenario, datetime.now(UTC))
    assert alert.severity in (Severity.CRITICAL, Severity.HIGH)  # what the engine investigates
    incident = Incident(
        id="INC-SCENARIO",
        fingerprint=alert.fingerprint,
        title=alert.title,
        source=alert.source,
        resource=alert.resource,
        severity=alert.severity,
        opened_at=alert.occurred_at,
        last_seen_at=alert.occurred_at,
    )
    registry = tools_for(store, clients(), scenario).tools_for(incident, alert)
    schemas = {tool.name: tool.input_schema for tool in registry}
    for step in scenario.recording.steps:
        for call in step.calls:
            _check(call, schemas)
    last = scenario.recording.steps[-1].calls
    assert [call.tool for call in last] == [prompting.TOOL_NAME]
    if scenario.expect.stopped == "step limit":
        assert len(scenario.recording.steps) == InvestigationLimits().max_steps
    else:
        assert len(scenario.recording.steps) < InvestigationLimits().max_steps


def _check(call: Call, schemas: dict[str, dict[str, Any]]) -> None:
    if call.tool == prompting.TOOL_NAME:
        Diagnosis.model_validate(call.input)
        return
    assert call.tool in schemas, f"no tool {call.tool!r}: {sorted(schemas)}"
    if not call.error:
        schema = schemas[call.tool]
        # Unknown argument names must fail, as the model's drifted names do in the real loop.
        assert schema.get("additionalProperties") is False, f"{call.tool} allows any argument"
        problems = [
            error.message
            for error in jsonschema.Draft202012Validator(schema).iter_errors(call.input)
        ]
        assert not problems, f"{call.tool} {call.input}: {problems}"


def numbered(recording: Recording) -> dict[int, Call]:
    """The recording's tool calls by the number the loop gives each (`[call #N]`): 1-based in
    the order asked, across steps, failed and refused calls included, `record_analysis` not
    numbered; a step whose conclusion is valid runs nothing else."""
    calls: dict[int, Call] = {}
    for step in recording.steps:
        concluding = [c for c in step.calls if c.tool == prompting.TOOL_NAME]
        if any(_valid(call) for call in concluding):
            break
        for call in step.calls:
            if call.tool != prompting.TOOL_NAME:
                calls[len(calls) + 1] = call
    return calls


def _valid(call: Call) -> bool:
    try:
        Diagnosis.model_validate(call.input)
    except ValueError:
        return False
    return True


def citation_problems(scenario: Scenario) -> list[str]:
    """What is wrong with the evidence of the recording's conclusion: a claim citing nothing,
    a number no call of the recording has, or a call the scenario means to fail."""
    calls = numbered(scenario.recording)
    conclusion = Diagnosis.model_validate(scenario.recording.steps[-1].calls[-1].input)
    problems = []
    for item in conclusion.evidence:
        if not item.calls:
            problems.append(f"{item.claim!r} cites nothing")
        for number in item.calls:
            if number not in calls:
                problems.append(f"{item.claim!r} cites #{number}; there are {len(calls)} calls")
            elif calls[number].error:
                problems.append(f"{item.claim!r} cites #{number}, meant to fail")
    return problems


@pytest.mark.parametrize("scenario", ALL, ids=lambda s: s.name)
def test_the_evidence_cites_only_calls_of_the_recording_that_answer(scenario: Scenario):
    conclusion = Diagnosis.model_validate(scenario.recording.steps[-1].calls[-1].input)

    assert 1 <= len(conclusion.evidence) <= 3
    assert citation_problems(scenario) == []


def _with_steps(scenario: Scenario, steps: list[Step]) -> Scenario:
    recording = scenario.recording.model_copy(update={"steps": steps})
    return scenario.model_copy(update={"recording": recording})


def test_a_recording_edit_that_shifts_the_numbering_breaks_its_citations():
    """ecs-bad-deploy-5xx cites #1 and #2 (changes, deployments) and #3 (the logs)."""
    original = BY_NAME["ecs-bad-deploy-5xx"]
    first, *rest = original.recording.steps
    dropped = first.model_copy(update={"calls": first.calls[1:]})
    failing = Call(tool="describe_alarms", input={"state": "FIRING"}, error=True)
    inserted = first.model_copy(update={"calls": [failing, *first.calls]})

    shifted = citation_problems(_with_steps(original, [dropped, *rest]))
    moved = citation_problems(_with_steps(original, [inserted, *rest]))

    assert [problem.rsplit(" cites ", 1)[1] for problem in shifted] == ["#3; there are 2 calls"]
    assert [problem.rsplit(" cites ", 1)[1] for problem in moved] == ["#1, meant to fail"]


def test_the_schema_check_catches_drifted_names_types_ranges_and_enums():
    """The recorded calls are checked with a full JSON Schema validator, so a value out of a
    tool's range or outside its enum fails as a drifted name or type does."""
    schema = {
        "type": "object",
        "properties": {
            "ecs_service": {"type": "string"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 50},
            "state": {"type": "string", "enum": ["ALARM", "OK", "INSUFFICIENT_DATA"]},
            "names": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
        },
        "required": ["ecs_service"],
        "additionalProperties": False,
    }
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"ecs_service": "checkout", "limit": 3, "state": "ALARM"})
    assert not validator.is_valid({"service": "checkout"})
    assert not validator.is_valid({"ecs_service": "checkout", "limit": "3"})
    assert not validator.is_valid({"ecs_service": "checkout", "limit": True})
    assert not validator.is_valid({"ecs_service": "checkout", "limit": 51})
    assert not validator.is_valid({"ecs_service": "checkout", "limit": 0})
    assert not validator.is_valid({"ecs_service": "checkout", "state": "FIRING"})
    assert not validator.is_valid({"ecs_service": "checkout", "names": ["a", 1]})
    assert not validator.is_valid({"ecs_service": "checkout", "names": ["a", "b", "c"]})


def test_the_scoring_rule_ignores_case_and_whitespace():
    assert names_cause("The deploy of  Task Definition\nCHECKOUT:42 broke it", ["checkout:42"])
    assert not names_cause("The database is overloaded", ["checkout:42", "PAYMENT_PROVIDER_URL"])


@pytest.fixture
def harness(aws: str, moto_gaps: None, tmp_path: Path) -> Harness:  # noqa: F811
    """moto with the two operations it lacks (DescribeAlarmHistory, LookupEvents)."""
    return Harness(aws, clients(), tmp_path, tools_for)


async def replay(harness: Harness, scenario: Scenario) -> Outcome:
    return score(await harness.replay(scenario, MODEL))


async def test_a_bad_deploy_replays_to_its_true_cause(harness: Harness):
    outcome = await replay(harness, BY_NAME["ecs-bad-deploy-5xx"])

    assert outcome.unexpected == []
    assert (outcome.analyzer, outcome.stopped, outcome.steps) == ("claude", "concluded", 3)
    assert (outcome.tool_calls, outcome.tool_errors) == (3, 0)
    assert outcome.named
    assert outcome.tokens > 0 and 0 < outcome.cost_usd < 0.10


async def test_a_replayed_analysis_carries_its_evidence_through_the_real_loop(harness: Harness):
    scenario = BY_NAME["ecs-bad-deploy-5xx"]
    conclusion = Diagnosis.model_validate(scenario.recording.steps[-1].calls[-1].input)

    run = await harness.replay(scenario, MODEL)
    outcome = score(run)

    assert run.analysis.evidence == conclusion.evidence
    assert [(e.claim, e.calls) for e in run.analysis.evidence][1] == (
        "Since then every POST /api/checkout fails with KeyError 'PAYMENT_PROVIDER_URL' "
        "in payments/client.py.",
        [3],
    )
    trace = run.analysis.investigation
    assert trace is not None
    meant = numbered(scenario.recording)
    assert [(c.number, c.tool) for c in trace.calls] == [(n, c.tool) for n, c in meant.items()]
    assert (outcome.claims, outcome.cited, outcome.bare, outcome.dropped) == (2, 2, [], [])
    assert overall([outcome])["evidence_cited_rate"] == 1.0


async def test_citations_of_a_failed_or_invented_call_are_dropped_and_reported(
    harness: Harness,
):
    """lambda-timeout-new-version's call #1 is meant to fail (a wrong log group)."""
    original = BY_NAME["lambda-timeout-new-version"]
    *steps, last = original.recording.steps
    [conclusion] = last.calls
    evidence = [
        {"claim": "orders_sync times out.", "calls": [1]},
        {"claim": "Version 8 set a 3 s timeout.", "calls": [3, 9]},
    ]
    cites_badly = conclusion.model_copy(
        update={"input": {**conclusion.input, "evidence": evidence}}
    )
    scenario = _with_steps(original, [*steps, last.model_copy(update={"calls": [cites_badly]})])

    outcome = await replay(harness, scenario)

    assert outcome.unexpected == [] and outcome.named
    assert (outcome.claims, outcome.cited) == (2, 1)
    assert outcome.bare == ["orders_sync times out."]
    assert outcome.dropped == ["#1 (failed)", "#9 (no such call)"]
    figures = overall([outcome])
    assert (figures["evidence_cited_rate"], figures["claims_bare"]) == (0.5, 1)
    assert figures["citations_dropped"] == 2


async def test_a_meant_tool_error_and_the_step_limit_are_as_the_scenarios_say(harness: Harness):
    timeout = await replay(harness, BY_NAME["lambda-timeout-new-version"])
    wandering = await replay(harness, BY_NAME["opensearch-step-limit"])

    assert timeout.unexpected == [] and timeout.tool_errors == 1 and timeout.named
    assert wandering.unexpected == []
    assert (wandering.stopped, wandering.steps, wandering.tool_errors) == ("step limit", 8, 2)
    assert not wandering.named
    figures = overall([timeout, wandering])
    assert figures["true_cause_rate"] == 0.5 and figures["step_limit"] == 1


async def test_a_recording_whose_arguments_drifted_shows_unexpected_tool_errors(
    harness: Harness,
):
    original = BY_NAME["ecs-bad-deploy-5xx"]
    first, *rest = original.recording.steps
    drifted_calls = [
        call.model_copy(update={"input": {"cluster": "prod", "service": "checkout"}})
        if call.tool == "deployments"
        else call
        for call in first.calls
    ]
    recording = original.recording.model_copy(
        update={"steps": [first.model_copy(update={"calls": drifted_calls}), *rest]}
    )

    outcome = await replay(harness, original.model_copy(update={"recording": recording}))

    assert outcome.tool_errors == 1
    assert outcome.unexpected == ["step 1: deployments failed 1x unexpectedly"]


async def test_a_live_run_is_recorded_as_the_model_answered(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """--live against the local Messages API (the SDK honours ANTHROPIC_BASE_URL): the
    answers come back as a recording that replays the same calls and outcomes."""
    original = BY_NAME["lambda-timeout-new-version"]
    async with FakeAnthropic() as fake:
        fake.enqueue(*turns(original.recording))
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        run = await harness.live(original, MODEL, "sk-ant-live-test")

    assert run.recorded is not None and run.recorded.model == MODEL
    said = [[(c.tool, c.input, c.error) for c in step.calls] for step in run.recorded.steps]
    meant = [[(c.tool, c.input, c.error) for c in step.calls] for step in original.recording.steps]
    assert said == meant
    assert [step.text for step in run.recorded.steps] == [s.text for s in original.recording.steps]
    for step in run.recorded.steps:
        assert step.usage is not None and step.usage["output_tokens"] > 0
    assert all(step.seconds is not None for step in run.recorded.steps)
    copy = tmp_path / f"{original.name}.yaml"
    copy.write_text((scenarios.DATA / copy.name).read_text())
    scenarios.save_recording(copy, run.recorded, scenarios.Expect(stopped="budget"))
    saved = scenarios.load(copy)
    assert saved.recording == run.recorded and saved.expect.stopped == "budget"
    assert saved.model_copy(
        update={"recording": original.recording, "expect": original.expect}
    ) == (original)
