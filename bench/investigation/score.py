"""A scenario's run reduced to the benchmark's figures, and the figures of all of them beside
the targets of issue 18.

The scoring rule: a conclusion names the true cause when its `root_cause`, lower-cased and
with runs of whitespace collapsed, contains any of the scenario's `cause.keywords` (normalised
the same way). An analysis the offline analyzer made (Claude gave none) never names it.

Show the work: a claim of the analysis's `evidence` is cited when at least one of the calls
it cites survived the loop's `cited()`, which drops the numbers of calls that failed, were
refused or never happened; a claim left with none is bare. Each dropped number is reported
with why, so that a recording whose numbering drifted, or a model that cites a failed call or
invents one, shows up beside the figure rather than inside it.

A recorded tool call says whether it is meant to fail; a call whose outcome differs (a
recording whose argument names drifted from the tools' schemas fails where it should not) is
an unexpected outcome, and so is a recording answer left unused or a run that stopped for
another reason than the scenario expects.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import ValidationError

from analysis import prompting
from analysis.models import AnalyzerKind, Evidence
from bench.investigation.replay import Run
from bench.investigation.scenario import Recording

TARGET_NAMED = 0.85
TARGET_MEDIAN_CALLS = 6
TARGET_P95_SECONDS = 60.0
TARGET_MAX_COST = 0.10


def normalised(text: str) -> str:
    return " ".join(text.lower().split())


def names_cause(root_cause: str, keywords: list[str]) -> bool:
    """The scoring rule (module docstring)."""
    said = normalised(root_cause)
    return any(normalised(keyword) in said for keyword in keywords)


@dataclass(frozen=True)
class Outcome:
    """One scenario's figures."""

    name: str
    analyzer: str
    stopped: str
    steps: int
    tool_calls: int
    tool_errors: int
    unexpected: list[str]
    tokens: int
    cost_usd: float
    seconds: float
    named: bool
    root_cause: str
    claims: int
    cited: int
    bare: list[str]
    dropped: list[str]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def score(run: Run) -> Outcome:
    analysis = run.analysis
    trace = analysis.investigation
    claude = analysis.analyzer is AnalyzerKind.CLAUDE
    calls = trace.calls if trace else []
    tokens = (
        analysis.input_tokens
        + analysis.output_tokens
        + analysis.cache_read_tokens
        + analysis.cache_write_tokens
    )
    return Outcome(
        name=run.scenario.name,
        analyzer=analysis.analyzer.value,
        stopped=trace.stopped if trace else "no investigation",
        steps=trace.steps if trace else 0,
        tool_calls=len(calls),
        tool_errors=sum(call.is_error for call in calls),
        unexpected=unexpected(run),
        tokens=tokens,
        cost_usd=analysis.cost_usd,
        seconds=round(run.seconds + _recorded_seconds(run), 3),
        named=claude and names_cause(analysis.root_cause, run.scenario.cause.keywords),
        root_cause=analysis.root_cause,
        claims=len(analysis.evidence),
        cited=sum(bool(item.calls) for item in analysis.evidence),
        bare=[item.claim for item in analysis.evidence if not item.calls],
        dropped=dropped(run),
    )


def asked(recording: Recording) -> list[Evidence]:
    """The evidence as the model wrote it: that of the recording's last `record_analysis`,
    the conclusion the loop accepted (an invalid one before it was sent back)."""
    for step in reversed(recording.steps):
        for call in reversed(step.calls):
            if call.tool == prompting.TOOL_NAME:
                try:
                    return [Evidence.model_validate(i) for i in call.input.get("evidence", [])]
                except ValidationError:  # an invalid conclusion, not the one accepted
                    return []
    return []


def dropped(run: Run) -> list[str]:
    """Each citation the loop dropped, `#5 (failed)` or `#9 (no such call)`: what the model
    asked for compared claim by claim with what the analysis kept."""
    trace = run.analysis.investigation
    kept = run.analysis.evidence
    wrote = asked(run.recorded or run.scenario.recording)
    if trace is None or [item.claim for item in wrote] != [item.claim for item in kept]:
        return []  # not this conclusion's evidence (an offline analysis, a drifted replay)
    failed = {call.number for call in trace.calls if call.is_error}
    lost = []
    for before, after in zip(wrote, kept, strict=True):
        for number in sorted(set(before.calls) - set(after.calls)):
            why = "failed" if number in failed else "no such call"
            lost.append(f"#{number} ({why})")
    return lost


def _recorded_seconds(run: Run) -> float:
    """A replayed live recording's model time, which the fake does not spend again."""
    if run.recorded is not None:  # a live run: its own time is the real one
        return 0.0
    return sum(step.seconds or 0.0 for step in run.scenario.recording.steps)


def unexpected(run: Run) -> list[str]:
    """How the run differs from what its recording says should happen (module docstring)."""
    trace = run.analysis.investigation
    if run.analysis.analyzer is not AnalyzerKind.CLAUDE or trace is None:
        return ["no investigation: " + "; ".join(run.analysis.context_notes)]
    if run.recorded is not None:  # a live run: the model's answers are the new recording
        return []
    problems = []
    if trace.stopped != run.scenario.expect.stopped:
        problems.append(f"stopped: {trace.stopped}, expected {run.scenario.expect.stopped}")
    if run.unused_answers:
        problems.append(f"{run.unused_answers} recorded answers unused")
    for number, step in enumerate(run.scenario.recording.steps, start=1):
        meant = Counter(
            (call.tool, call.error) for call in step.calls if call.tool != prompting.TOOL_NAME
        )
        made = Counter((call.tool, call.is_error) for call in trace.calls if call.step == number)
        for (tool, failed), count in (made - meant).items():
            outcome = "failed" if failed else "succeeded"
            problems.append(f"step {number}: {tool} {outcome} {count}x unexpectedly")
    return problems


def calls(run: Run) -> list[str]:
    """The scenario's tool calls, each with its arguments and its result's first line."""
    trace = run.analysis.investigation
    lines = [f"{run.scenario.name}:"]
    for call in trace.calls if trace else []:
        mark = "ERROR " if call.is_error else ""
        lines.append(f"  #{call.number} step {call.step}: {call.tool} {json.dumps(call.arguments)}")
        lines.append(f"     -> {mark}{call.result}")
    lines.append(f"  root cause: {run.analysis.root_cause}")
    for item in run.analysis.evidence:
        shown = ", ".join(f"#{number}" for number in item.calls) or "no tool call shows this"
        lines.append(f"  evidence: {item.claim} ({shown})")
    return lines


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank, so that p95 of 20 runs is the 19th smallest: a figure one run shows."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def overall(outcomes: list[Outcome]) -> dict[str, Any]:
    calls = [float(o.tool_calls) for o in outcomes]
    costs = [o.cost_usd for o in outcomes]
    claims = sum(o.claims for o in outcomes)
    return {
        "scenarios": len(outcomes),
        "true_cause_rate": sum(o.named for o in outcomes) / len(outcomes),
        "median_tool_calls": statistics.median(calls),
        "p95_tool_calls": percentile(calls, 0.95),
        "tool_errors": sum(o.tool_errors for o in outcomes),
        "unexpected": sum(len(o.unexpected) for o in outcomes),
        "p95_seconds": percentile([o.seconds for o in outcomes], 0.95),
        "tokens": sum(o.tokens for o in outcomes),
        "cost_max_usd": max(costs),
        "cost_mean_usd": statistics.fmean(costs),
        "step_limit": sum(o.stopped == "step limit" for o in outcomes),
        "claims": claims,
        "claims_bare": sum(len(o.bare) for o in outcomes),
        "citations_dropped": sum(len(o.dropped) for o in outcomes),
        "evidence_cited_rate": sum(o.cited for o in outcomes) / claims if claims else None,
    }


TARGETS = {
    "true_cause_rate": f">= {TARGET_NAMED:.0%}",
    "median_tool_calls": f"<= {TARGET_MEDIAN_CALLS}",
    "p95_seconds": f"< {TARGET_P95_SECONDS:g} s",
    "cost_max_usd": f"<= ${TARGET_MAX_COST:.2f}",
    "evidence_cited_rate": "—",  # issue 18 sets none
}


REPLAY_NOTE = """
Replay scores the recordings, not the model. The conclusions and tool calls are the
recordings'; the alerts' parsing, the gathered context, the loop, the tools against moto and
the scoring are real. Tokens are the local fake's estimate (about 4 characters a token) of
these very requests, unless a live recording carries the API's own usage; cost is that at the
model's price. Seconds add the model's time a live recording noted (none in scripted ones).
The evidence figure is the recordings' citations against the calls the loop numbered.
The targets are for real Claude (--live)."""


def table(outcomes: list[Outcome]) -> str:
    header = (
        f"{'scenario':<34} {'steps':>5} {'calls':>5} {'errs':>4} {'tokens':>7} "
        f"{'cost $':>7} {'secs':>6} {'cited':>5}  cause  stopped"
    )
    lines = [header, "-" * len(header)]
    for o in outcomes:
        lines.append(
            f"{o.name:<34} {o.steps:>5} {o.tool_calls:>5} {o.tool_errors:>4} {o.tokens:>7,} "
            f"{o.cost_usd:>7.4f} {o.seconds:>6.2f} {_cited(o):>5}  "
            f"{'yes' if o.named else 'NO ':<5}  {o.stopped}"
        )
        lines += [f"    unexpected: {problem}" for problem in o.unexpected]
        lines += [f"    bare claim: {claim}" for claim in o.bare]
        if o.dropped:
            lines.append(f"    citations dropped: {', '.join(o.dropped)}")
    return "\n".join(lines)


def _cited(outcome: Outcome) -> str:
    return f"{outcome.cited}/{outcome.claims}" if outcome.claims else "—"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def summary(figures: dict[str, Any], live: bool) -> str:
    rows = [
        ("scenarios", f"{figures['scenarios']}", ""),
        ("true cause named", f"{figures['true_cause_rate']:.0%}", TARGETS["true_cause_rate"]),
        ("tool calls, median", f"{figures['median_tool_calls']:g}", TARGETS["median_tool_calls"]),
        ("tool calls, p95", f"{figures['p95_tool_calls']:g}", ""),
        ("tool errors", f"{figures['tool_errors']}", ""),
        ("unexpected outcomes", f"{figures['unexpected']}", "0"),
        ("stopped at the step limit", f"{figures['step_limit']}", ""),
        ("seconds, p95", f"{figures['p95_seconds']:.2f}", TARGETS["p95_seconds"]),
        ("tokens, total", f"{figures['tokens']:,}", ""),
        ("cost per investigation, max", f"${figures['cost_max_usd']:.4f}", TARGETS["cost_max_usd"]),
        ("cost per investigation, mean", f"${figures['cost_mean_usd']:.4f}", ""),
        (
            "evidence: claims citing a call that answered",
            _rate(figures["evidence_cited_rate"]),
            TARGETS["evidence_cited_rate"],
        ),
        ("evidence: claims", f"{figures['claims']}", ""),
        ("evidence: claims left bare", f"{figures['claims_bare']}", ""),
        ("evidence: citations dropped", f"{figures['citations_dropped']}", ""),
    ]
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{name:<{width}} {value:>10}   {target}".rstrip() for name, value, target in rows]
    if not live:
        lines.append(REPLAY_NOTE)
    return "\n".join(lines)
