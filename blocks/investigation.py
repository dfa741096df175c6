""" "How I investigated": an investigation's trace as the incident's thread shows it, and as
`/incident show` and the console print it.

The incident message keeps its shape; the work behind an investigated analysis goes under it,
so that the engineer can check each claim against the call that supports it. Every text here
came from a tool result or from Claude, both untrusted, so all of it is escaped.
"""

from __future__ import annotations

import json
from itertools import groupby
from typing import Any

from analysis.models import Analysis, Evidence, InvestigationTrace, ToolCall
from blocks.text import code, escape, truncate

ARGUMENTS_SHOWN = 160
RESULT_SHOWN = 160


def investigation_summary(trace: InvestigationTrace) -> str:
    """`5 tool calls (1 failed) in 3 steps · 14.2 s · $0.0412 · concluded`: only our own
    figures and words, so it needs no escaping anywhere."""
    calls = len(trace.calls)
    failed = sum(1 for call in trace.calls if call.is_error)
    counted = f"{calls} tool call{'' if calls == 1 else 's'}" + (
        f" ({failed} failed)" if failed else ""
    )
    return (
        f"{counted} in {trace.steps} step{'' if trace.steps == 1 else 's'} · "
        f"{trace.seconds:.1f} s · ${trace.cost_usd:.4f} · {trace.stopped}"
    )


def call_line(call: ToolCall) -> str:
    """`#2 logs_insights_query `query="…" minutes_before=30` → 42 rows…`, a warning sign
    on a call that failed."""
    mark = ":warning: " if call.is_error else ""
    arguments = code(truncate(call_arguments(call.arguments), ARGUMENTS_SHOWN))
    shown = f" {arguments}" if arguments else ""
    result = escape(truncate(call.result, RESULT_SHOWN)) or "(empty)"
    return f"`#{call.number}` *{escape(call.tool)}*{shown} → {mark}{result}"


def citations(item: Evidence) -> str:
    """`#2, #4`: the calls a claim rests on; a claim no call supports says so. Plain text,
    shared by the thread and the console."""
    return ", ".join(f"#{number}" for number in item.calls) or "no tool call shows this"


def evidence_line(item: Evidence) -> str:
    """`• the pool was exhausted — #2, #4`."""
    return f"• {escape(item.claim)} — {citations(item)}"


def investigation_text(analysis: Analysis) -> str | None:
    """The trace as mrkdwn: the summary, each step's calls, then the evidence behind the root
    cause; None when the analysis was not investigated."""
    trace = analysis.investigation
    if trace is None:
        return None
    lines = [f":mag: *How I investigated* · {investigation_summary(trace)}"]
    for step, calls in groupby(trace.calls, key=lambda call: call.step):
        lines.append(f"*Step {step}*")
        lines += [call_line(call) for call in calls]
    if not trace.calls:
        lines.append("No tool was called: the opening evidence was enough.")
    if analysis.evidence:
        lines.append("*Evidence for the root cause*")
        lines += [evidence_line(item) for item in analysis.evidence]
    return "\n".join(lines)


def call_arguments(arguments: dict[str, Any]) -> str:
    """`query="fields @message" minutes_before=30`: how an engineer would type them; plain
    text, for the caller to escape as its output needs."""
    return " ".join(f"{name}={_value(value)}" for name, value in arguments.items())


def _value(value: Any) -> str:
    return (
        value
        if isinstance(value, str) and value and " " not in value
        else json.dumps(value, ensure_ascii=False, default=str)
    )
