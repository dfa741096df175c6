"""Claude's post-mortem through the real anthropic SDK against the local Messages API server:
the forced tool call, the tiering, what the request carried (timeline, thread, alerts) and
what it must never carry (secrets), the cost, and the errors a caller can show."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from anthropic import AsyncAnthropic

from analysis.claude import ClaudeAnswerError, ClaudeUnavailableError
from analysis.models import AnalyzerKind, ThreadMessage
from analysis.postmortem import MAX_TOKENS, TOOL_NAME, PostMortemWriter, system_prompt, tool_schema
from analysis.postmortem_document import PostMortemInput, ThreadPost
from analysis.postmortem_markdown import render_markdown
from incidents.models import IncidentStatus, Occurrence, Severity, TimelineEvent, TimelineKind
from tests.conftest import T0, make_alert
from tests.fakes.anthropic_server import Error, FakeAnthropic, Text, ToolUse
from tests.samples import make_analysis, make_incident

pytestmark = pytest.mark.integration

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
THREAD_PASSWORD = "hunter2-Sup3rSecret"

GOOD_POSTMORTEM: dict[str, Any] = {
    "title": "Orders database ran out of connections",
    "summary": "Checkout failed for 42 minutes while the orders database refused connections.",
    "impact": "All checkouts failed between 08:00 and 08:42 UTC.",
    "timeline": [
        {"at": "2026-11-24T08:00:00Z", "event": "The connection alarm fired."},
        {"at": "2026-11-24T08:04:00+00:00", "event": "The incident was acknowledged."},
        {"at": "2026-11-24T08:42:00", "event": "The pool limit was raised; errors stopped."},
    ],
    "root_cause": "A connection leak in orders-api exhausted max_connections.",
    "went_well": ["The analysis pointed at the pool within minutes."],
    "went_badly": ["The alarm watched errors, not connections, so it fired late."],
    "action_items": ["Alarm on DatabaseConnections above 80% of max_connections."],
}


def postmortem_inputs(severity: Severity = Severity.HIGH) -> PostMortemInput:
    incident = make_incident(
        severity=severity,
        status=IncidentStatus.RESOLVED,
        acknowledged_at=T0 + timedelta(minutes=4),
        acknowledged_by="U0ACK",
        resolved_at=T0 + timedelta(minutes=42),
        resolved_by="U0RES",
    )
    timeline = [
        TimelineEvent(
            incident_id=incident.id,
            at=T0,
            actor="alert:cloudwatch",
            kind=TimelineKind.OPENED,
            detail="HIGH: Database connection failed",
        ),
        TimelineEvent(
            incident_id=incident.id,
            at=T0 + timedelta(minutes=4),
            actor="U0ACK",
            kind=TimelineKind.ACKNOWLEDGED,
            detail="acknowledged after 4m",
        ),
        TimelineEvent(
            incident_id=incident.id,
            at=T0 + timedelta(minutes=42),
            actor="U0RES",
            kind=TimelineKind.RESOLVED,
            detail="resolved after 42m",
        ),
    ]
    alert = make_alert().model_copy(
        update={"message": f"boto failed: aws_secret_access_key={AWS_SECRET} rejected"}
    )
    thread: list[ThreadMessage] = [
        ThreadMessage(author="bot", text="Analysis posted."),
        ThreadPost(
            author="engineer",
            text=f"raised the pool limit, db login was password={THREAD_PASSWORD}",
            at=T0 + timedelta(minutes=40),
        ),
    ]
    return PostMortemInput(
        incident=incident,
        analysis=make_analysis(analyzer=AnalyzerKind.CLAUDE, model="claude-sonnet-4-6"),
        timeline=timeline,
        thread=thread,
        occurrences=[Occurrence(key="k1", incident_id=incident.id, alert=alert)],
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(default_tool_input=GOOD_POSTMORTEM) as server:
        yield server


@pytest.fixture
async def writer(fake: FakeAnthropic) -> AsyncIterator[PostMortemWriter]:
    client = AsyncAnthropic(api_key="sk-ant-test", base_url=fake.url, max_retries=0, timeout=5)
    yield PostMortemWriter(client, model="claude-sonnet-4-6", fast_model="claude-haiku-4-5")
    await client.close()


async def test_claude_drafts_the_postmortem_through_a_forced_tool_call(
    fake: FakeAnthropic, writer: PostMortemWriter
):
    fake.enqueue(ToolUse(GOOD_POSTMORTEM))
    inputs = postmortem_inputs()

    pm = await writer.draft(inputs)

    assert fake.pending == 0
    assert pm.written_by is AnalyzerKind.CLAUDE
    assert pm.model == "claude-sonnet-4-6"
    assert pm.title == GOOD_POSTMORTEM["title"]
    assert pm.root_cause == GOOD_POSTMORTEM["root_cause"]
    assert [entry.at for entry in pm.timeline] == [
        T0,
        T0 + timedelta(minutes=4),
        T0 + timedelta(minutes=42),
    ]
    assert [(a.item, a.owner) for a in pm.action_items] == [
        ("Alarm on DatabaseConnections above 80% of max_connections.", "")
    ]
    assert "Drafted by Claude (claude-sonnet-4-6)" in pm.note
    [request] = fake.requests
    body = request.body
    assert body is not None
    assert body["model"] == "claude-sonnet-4-6"
    assert body["max_tokens"] == MAX_TOKENS
    assert body["tool_choice"] == {"type": "tool", "name": TOOL_NAME}
    [tool] = body["tools"]
    assert tool["name"] == TOOL_NAME and tool["input_schema"] == tool_schema()
    assert body["system"][0]["text"] == system_prompt()
    assert "blameless" in system_prompt().lower()
    # Usage becomes cost at the Sonnet price.
    assert pm.cost_usd > 0
    document = render_markdown(pm, inputs.incident)
    assert f"Cost ${pm.cost_usd:.4f}." in document


async def test_the_request_carries_the_timeline_thread_and_alerts_fenced(
    fake: FakeAnthropic, writer: PostMortemWriter
):
    await writer.draft(postmortem_inputs())

    body = fake.requests[0].body
    assert body is not None
    content = body["messages"][0]["content"]
    fence = content.split("`")[1]
    assert fence.startswith("<<<INCIDENT_DATA_") and content.count(fence) == 3
    data = content.split(fence)[2]
    assert "acknowledged after 4m" in data and "resolved after 42m" in data
    assert '"actor": "U0ACK"' in data
    assert "raised the pool limit" in data and "Analysis posted." in data
    assert '"at": "2026-11-24T08:40:00+00:00"' in data
    assert "boto failed" in data
    assert "app_user leaks connections" in data


async def test_secrets_in_the_alert_and_the_thread_never_reach_claude(
    fake: FakeAnthropic, writer: PostMortemWriter
):
    await writer.draft(postmortem_inputs())

    request = fake.requests[0]
    raw = request.raw.decode()
    assert AWS_SECRET not in raw and AWS_SECRET.replace("/", "\\/") not in raw
    assert THREAD_PASSWORD not in raw
    assert "[REDACTED:aws_secret_key]" in request.prompt_text
    assert "password=[REDACTED:password]" in request.prompt_text


async def test_a_long_thread_is_capped_per_message_and_in_total(
    fake: FakeAnthropic, writer: PostMortemWriter
):
    inputs = postmortem_inputs()
    thread = [ThreadMessage(author="engineer", text=f"{n} " + "x" * 5000) for n in range(40)]

    await writer.draft(
        PostMortemInput(inputs.incident, inputs.analysis, inputs.timeline, thread=thread)
    )

    body = fake.requests[0].body
    assert body is not None
    content = body["messages"][0]["content"]
    assert len(content) < 30_000
    assert '"text": "39 xxx' in content and '"text": "32 xxx' in content
    assert '"text": "31 xxx' not in content
    assert '"earlier_thread_messages_left_out": 32' in content


async def test_medium_and_low_go_to_the_fast_model(fake: FakeAnthropic, writer: PostMortemWriter):
    pm = await writer.draft(postmortem_inputs(Severity.LOW))

    assert pm.model == "claude-haiku-4-5"
    body = fake.requests[0].body
    assert body is not None and body["model"] == "claude-haiku-4-5"


async def test_an_invalid_tool_input_raises_a_clear_error(
    fake: FakeAnthropic, writer: PostMortemWriter
):
    broken = {key: value for key, value in GOOD_POSTMORTEM.items() if key != "summary"}
    fake.enqueue(ToolUse({**broken, "timeline": [{"at": "yesterday", "event": "x"}]}))

    with pytest.raises(ClaudeAnswerError) as raised:
        await writer.draft(postmortem_inputs())

    message = str(raised.value)
    assert message.startswith("Claude's post-mortem did not match its schema:")
    assert "summary: Field required" in message
    assert "timeline.0.at" in message
    assert raised.value.usage.output_tokens > 0
    assert len(fake.requests) == 1


async def test_an_answer_without_the_tool_call_raises(
    fake: FakeAnthropic, writer: PostMortemWriter
):
    fake.enqueue(Text("Here is your post-mortem: ..."))

    with pytest.raises(ClaudeAnswerError, match=f"without calling {TOOL_NAME}"):
        await writer.draft(postmortem_inputs())


async def test_an_overloaded_api_is_an_outage(fake: FakeAnthropic, writer: PostMortemWriter):
    fake.enqueue(Error.overloaded())

    with pytest.raises(ClaudeUnavailableError, match="Claude unavailable"):
        await writer.draft(postmortem_inputs())
