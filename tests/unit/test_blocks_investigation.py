""" "How I investigated": the trace in the thread, in `/incident show` and on the console;
within Slack's limits however long, and hostile tool output shown as text."""

from __future__ import annotations

from analysis.models import Evidence, InvestigationTrace, ToolCall
from blocks.commands import incident_detail
from blocks.thread import investigation_note
from bot.console import analysis_lines
from tests.unit.test_blocks import (
    HOSTILE_TEXT,
    assert_safe,
    block_texts,
    make_analysis,
    make_incident,
)


def _trace(calls: list[ToolCall], **changes: object) -> InvestigationTrace:
    fields: dict[str, object] = {
        "steps": 3,
        "calls": calls,
        "input_tokens": 9000,
        "output_tokens": 800,
        "cost_usd": 0.0412,
        "seconds": 14.25,
    }
    return InvestigationTrace.model_validate({**fields, **changes})


CALLS = [
    ToolCall(
        number=1,
        step=1,
        tool="logs_insights_query",
        arguments={"query": "fields @message | filter @message like /timeout/", "limit": 20},
        result='{"rows": [{"@message": "connection timeout after 30s"}], "records_matched": 42}',
        seconds=1.2,
    ),
    ToolCall(
        number=2,
        step=1,
        tool="recent_changes",
        arguments={"minutes_before": 120},
        result="ecs UpdateService checkout by deploy-bot at 13:58",
    ),
    ToolCall(
        number=3,
        step=2,
        tool="metric_data",
        arguments={},
        result="AccessDenied: not authorized to perform cloudwatch:GetMetricData",
        is_error=True,
    ),
]


def test_the_note_lists_each_step_its_calls_and_the_evidence_with_time_and_cost() -> None:
    analysis = make_analysis(
        investigation=_trace(CALLS),
        evidence=[
            Evidence(claim="A deploy preceded the timeouts", calls=[1, 2]),
            Evidence(claim="The database is healthy", calls=[]),
        ],
    )

    [note] = investigation_note(analysis)

    text = block_texts(note)
    assert note.text.startswith("How I investigated: 3 tool calls (1 failed) in 3 steps")
    assert "14.2 s · $0.0412 · concluded" in text
    assert text.index("*Step 1*") < text.index("`#1` *logs_insights_query*")
    assert text.index("`#2` *recent_changes*") < text.index("*Step 2*")
    assert "`minutes_before=120`" in text
    assert "→ :warning: AccessDenied" in text
    assert "• A deploy preceded the timeouts — #1, #2" in text
    assert "• The database is healthy — no tool call shows this" in text
    assert "redacted before Claude read them" in text
    assert_safe(note)


def test_no_note_for_a_single_call_nor_for_a_cached_investigation() -> None:
    assert investigation_note(make_analysis()) == []
    cached = make_analysis(investigation=_trace(CALLS), cached=True)
    assert investigation_note(cached) == []


def test_an_investigation_that_called_nothing_says_so() -> None:
    [note] = investigation_note(make_analysis(investigation=_trace([], steps=1)))
    assert "No tool was called" in block_texts(note)


def test_hostile_tool_output_and_arguments_stay_text() -> None:
    hostile = ToolCall(
        number=1, step=1, tool="log_events", arguments={"filter_pattern": HOSTILE_TEXT},
        result=HOSTILE_TEXT,
    )  # fmt: skip
    analysis = make_analysis(
        investigation=_trace([hostile]), evidence=[Evidence(claim=HOSTILE_TEXT, calls=[1])]
    )
    for message in investigation_note(analysis):
        assert_safe(message)
        assert "&lt;!channel&gt;" in block_texts(message)


def test_a_long_trace_is_paged_within_slack_limits() -> None:
    many = [
        ToolCall(number=n, step=1 + n // 5, tool="log_events", arguments={"q": "x" * 300},
                 result="y" * 400)
        for n in range(1, 41)
    ]  # fmt: skip
    notes = investigation_note(make_analysis(investigation=_trace(many, steps=8)))
    assert len(notes) >= 1
    shown = "\n".join(block_texts(note) for note in notes)
    assert all(f"`#{n}`" in shown for n in range(1, 41))
    for note in notes:
        assert_safe(note)


def test_incident_show_includes_the_trace() -> None:
    analysis = make_analysis(investigation=_trace(CALLS))
    message = incident_detail(make_incident(), analysis, [])
    text = block_texts(message)
    assert "How I investigated" in text and "`#3` *metric_data*" in text
    assert_safe(message)


def test_the_console_prints_the_trace_and_the_evidence() -> None:
    analysis = make_analysis(
        investigation=_trace(CALLS),
        evidence=[Evidence(claim="A deploy", calls=[2]), Evidence(claim="A spike", calls=[])],
    )
    lines = analysis_lines(make_incident(), analysis)
    joined = "\n".join(lines)
    assert "How I investigated:[/] 3 tool calls (1 failed)" in joined
    assert "#2 (step 1) recent_changes" in joined
    assert "[red]failed:[/] AccessDenied" in joined
    assert "Evidence:[/] A deploy — #2" in joined
    assert "Evidence:[/] A spike — no tool call shows this" in joined, "as the thread says it"
