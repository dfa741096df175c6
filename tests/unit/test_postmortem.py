"""The offline post-mortem from a seeded timeline (durations, verdicts, action items, the
"timeline alone" note), its Markdown document, and the thread message posted beside it."""

from __future__ import annotations

import re
from datetime import timedelta

from analysis.models import AnalyzerKind
from analysis.postmortem import tool_schema
from analysis.postmortem_document import ActionItem, PostMortem, PostMortemInput, TimelineEntry
from analysis.postmortem_markdown import postmortem_filename, render_markdown
from analysis.postmortem_offline import OFFLINE_NOTE, offline_postmortem
from blocks.limits import assert_within_slack_limits
from blocks.postmortem import postmortem_summary
from incidents.models import Incident, IncidentStatus, Severity, TimelineEvent, TimelineKind
from tests.conftest import T0
from tests.samples import make_analysis, make_incident

SECTIONS = [
    "## Summary",
    "## Impact",
    "## Timeline",
    "## Root cause",
    "## What went well",
    "## What did not",
    "## Action items",
]


def event(minutes: float, kind: TimelineKind, actor: str, detail: str = "") -> TimelineEvent:
    return TimelineEvent(
        incident_id="INC-7K2M9",
        at=T0 + timedelta(minutes=minutes),
        actor=actor,
        kind=kind,
        detail=detail,
    )


def resolved_incident(**changes: object) -> Incident:
    return make_incident(
        status=IncidentStatus.RESOLVED,
        acknowledged_at=T0 + timedelta(minutes=4),
        acknowledged_by="U0ACK",
        resolved_at=T0 + timedelta(minutes=42),
        resolved_by="U0RES",
        last_seen_at=T0 + timedelta(minutes=35),
        **changes,
    )


CLEAN_TIMELINE = [
    event(0, TimelineKind.OPENED, "alert:cloudwatch", "HIGH: Database connection failed"),
    event(4, TimelineKind.ACKNOWLEDGED, "U0ACK", "acknowledged after 4m"),
    event(42, TimelineKind.RESOLVED, "U0RES", "resolved after 42m"),
]

# Opened, resolved by the alert clearing without anyone acknowledging, back three times
# (flapping), acknowledged late in the last round, severity raised, resolved by hand.
FLAPPING_TIMELINE = [
    event(0, TimelineKind.OPENED, "alert:cloudwatch", "HIGH: Database connection failed"),
    event(6, TimelineKind.RESOLVED, "alert:cloudwatch", "resolved after 6m"),
    event(10, TimelineKind.REOPENED, "alert:cloudwatch", "recurred 4m after resolution"),
    event(14, TimelineKind.RESOLVED, "alert:cloudwatch", "resolved after 14m"),
    event(20, TimelineKind.REOPENED, "alert:cloudwatch", "recurred 6m after resolution"),
    event(20, TimelineKind.FLAPPING, "bot", "reopened 2 times within 1h"),
    event(38, TimelineKind.ACKNOWLEDGED, "U0ACK", "acknowledged after 38m"),
    event(45, TimelineKind.SEVERITY_RAISED, "alert:cloudwatch", "HIGH -> CRITICAL"),
    event(70, TimelineKind.RESOLVED, "U0RES", "resolved after 1h 10m"),
]


def flapping_incident() -> Incident:
    return make_incident(
        status=IncidentStatus.RESOLVED,
        severity=Severity.CRITICAL,
        acknowledged_at=T0 + timedelta(minutes=38),
        acknowledged_by="U0ACK",
        resolved_at=T0 + timedelta(minutes=70),
        resolved_by="U0RES",
        last_seen_at=T0 + timedelta(minutes=60),
        reopen_count=2,
        flapping=True,
    )


def test_the_offline_draft_computes_the_response_times_from_the_timeline():
    incident = resolved_incident()

    pm = offline_postmortem(PostMortemInput(incident, None, CLEAN_TIMELINE))

    assert pm.written_by is AnalyzerKind.OFFLINE
    assert pm.model is None and pm.cost_usd == 0.0
    assert pm.note == OFFLINE_NOTE
    assert "offline" in pm.note and "timeline alone" in pm.note
    assert "no AI model" in pm.note
    assert pm.title == "Post-mortem: Database connection failed"
    assert "acknowledged after 4m" in pm.summary
    assert "resolved after 42m" in pm.summary
    assert "51 alerts" in pm.summary
    assert pm.went_well[0] == ("Acknowledged 4m after it opened, within the 15m target for HIGH.")
    assert "It did not reopen: the resolution held." in pm.went_well
    assert pm.went_badly == ["Nothing in the timeline points to a problem with the response."]
    assert pm.root_cause.startswith("Not determined: no analysis was stored")
    assert [entry.at for entry in pm.timeline] == [
        T0,
        T0 + timedelta(minutes=4),
        T0 + timedelta(minutes=35),
        T0 + timedelta(minutes=42),
    ]
    assert pm.timeline[1].event == "Acknowledged by U0ACK: acknowledged after 4m"
    assert pm.timeline[2].event == "Last alert received (51 alerts in all)"
    assert all(item.owner == "" for item in pm.action_items)


def test_the_offline_draft_is_deterministic():
    inputs = PostMortemInput(resolved_incident(), make_analysis(), CLEAN_TIMELINE)

    assert offline_postmortem(inputs) == offline_postmortem(inputs)


def test_a_flapping_incident_gets_the_verdicts_and_actions_it_earned():
    incident = flapping_incident()

    pm = offline_postmortem(PostMortemInput(incident, None, FLAPPING_TIMELINE))

    # Time to acknowledge counts from the first opening, time to resolve to the last resolution.
    assert "acknowledged after 38m" in pm.summary
    assert "resolved after 1h 10m" in pm.summary
    assert "reopened 2 times and was marked as flapping" in pm.summary
    assert pm.went_badly == [
        "Acknowledged 38m after it opened, past the 5m target for CRITICAL.",
        "2 openings resolved without an acknowledgement.",
        "It reopened 2 times after being resolved: the fix did not hold, "
        "or the alarm cleared before the problem did.",
        "It flapped, which makes each new alert easier to ignore.",
        "Severity rose while it was open (HIGH -> CRITICAL).",
    ]
    items = [action.item for action in pm.action_items]
    assert any("Review the alarm threshold" in item for item in items)
    assert any("why the first resolution did not hold" in item for item in items)
    assert any("reach the on-call engineer" in item for item in items)
    assert any("higher severity" in item for item in items)
    # Resolved by a person in the end: the alert clearing on its own is not the story.
    assert not any("clear on its own" in item for item in items)
    assert all(action.owner == "" for action in pm.action_items)
    assert pm.went_well == ["Nothing in the timeline stands out; add what helped the response."]


def test_the_caller_sets_the_acknowledgement_target():
    incident = resolved_incident()

    pm = offline_postmortem(
        PostMortemInput(incident, None, CLEAN_TIMELINE), ack_target=timedelta(minutes=2)
    )

    assert pm.went_badly[0] == "Acknowledged 4m after it opened, past the 2m target for HIGH."


def test_a_stored_analysis_gives_the_root_cause_and_says_where_it_came_from():
    analysis = make_analysis(analyzer=AnalyzerKind.CLAUDE, model="claude-sonnet-4-6")

    pm = offline_postmortem(PostMortemInput(resolved_incident(), analysis, CLEAN_TIMELINE))

    assert pm.root_cause == (
        "Not confirmed. The Claude analysis (claude-sonnet-4-6) proposed, with confidence 80%: "
        "The orders database hit max_connections: app_user leaks connections."
    )
    assert "The Claude analysis (claude-sonnet-4-6) estimated: All checkouts fail" in pm.impact
    # Still offline: the analysis is an input, not the writer.
    assert pm.written_by is AnalyzerKind.OFFLINE


def test_an_open_incident_alert_cleared_and_no_timeline_still_drafts():
    incident = make_incident(
        status=IncidentStatus.RESOLVED,
        resolved_at=T0 + timedelta(minutes=9),
        resolved_by="alert:cloudwatch",
    )

    pm = offline_postmortem(PostMortemInput(incident, None, []))

    assert "resolved after 9m, when the alert cleared" in pm.summary
    assert "No acknowledgement was recorded." in pm.summary
    assert any("clear on its own" in action.item for action in pm.action_items)
    assert pm.went_badly[0].startswith("No acknowledgement was recorded")

    ongoing = offline_postmortem(PostMortemInput(make_incident(), None, CLEAN_TIMELINE[:1]))
    assert "It is not resolved; the last alert arrived at 2026-11-24 08:07 UTC." in ongoing.summary
    assert "It was still unresolved when this draft was written." in ongoing.went_badly


def test_a_fallback_says_why_claude_did_not_draft_it():
    pm = offline_postmortem(
        PostMortemInput(resolved_incident(), None, CLEAN_TIMELINE), reason="Claude rate limit"
    )

    assert pm.note.startswith("Claude could not draft this post-mortem (Claude rate limit).")
    assert pm.note.endswith(OFFLINE_NOTE)


def test_a_long_timeline_keeps_its_start_and_its_end():
    events = [event(0, TimelineKind.OPENED, "alert:cloudwatch")] + [
        event(minute, TimelineKind.SILENCED, "U0ACK", f"silenced #{minute}")
        for minute in range(1, 120)
    ]

    pm = offline_postmortem(PostMortemInput(make_incident(last_seen_at=T0), None, events))

    assert len(pm.timeline) == 60
    assert pm.timeline[0].event == "Opened by the cloudwatch alert"
    assert pm.timeline[29].event == "… 61 more events in the incident's timeline"
    assert pm.timeline[-1].event == "Silenced by U0ACK: silenced #119"


def test_the_model_cannot_name_an_owner():
    action_items = tool_schema()["properties"]["action_items"]

    assert action_items["items"] == {"maxLength": 500, "type": "string"}
    assert set(tool_schema()["required"]) >= {"title", "summary", "timeline", "action_items"}


def test_the_markdown_document_has_every_section_in_order():
    incident = resolved_incident()
    pm = offline_postmortem(PostMortemInput(incident, make_analysis(), CLEAN_TIMELINE))

    document = render_markdown(pm, incident)

    assert document.startswith("# Post-mortem: Database connection failed\n")
    positions = [document.index(f"\n{heading}\n") for heading in SECTIONS]
    assert positions == sorted(positions)
    for row in [
        "| Incident | INC-7K2M9 |",
        "| Severity | HIGH |",
        "| Opened | 2026-11-24 08:00 UTC |",
        "| Acknowledged | 2026-11-24 08:04 UTC |",
        "| Resolved | 2026-11-24 08:42 UTC |",
        "| Duration | 42m |",
        "| Time (UTC) | Event |",
        "| 2026-11-24 08:04:00 | Acknowledged by U0ACK: acknowledged after 4m |",
        "| # | Action | Owner |",
    ]:
        assert f"\n{row}\n" in document, row
    action_rows = re.findall(r"^\| \d+ \| .* \|  \|$", document, flags=re.MULTILINE)
    assert len(action_rows) == len(pm.action_items) >= 2
    assert document.rstrip().endswith(f"_{OFFLINE_NOTE}_")


def test_markdown_escapes_table_pipes_and_keeps_rows_on_one_line():
    incident = resolved_incident(title="5xx | checkout\nerrors", resource="api|prod")
    pm = PostMortem(
        title="Checkout | down",
        summary="Checkout failed.",
        impact="Users could not pay.",
        timeline=[TimelineEntry(at=T0, event="Alarm | fired\nagain")],
        root_cause="A bad | deploy.",
        went_well=["Fast\nrollback"],
        went_badly=[],
        action_items=[ActionItem(item="Add a | canary")],
        written_by=AnalyzerKind.CLAUDE,
        model="claude-sonnet-4-6",
        cost_usd=0.01234,
        note="Drafted by Claude (claude-sonnet-4-6).",
    )

    document = render_markdown(pm, incident)

    assert "| Resource | api\\|prod |" in document
    assert "| 2026-11-24 08:00:00 | Alarm \\| fired again |" in document
    assert "| 1 | Add a \\| canary |  |" in document
    assert "- Fast rollback" in document
    assert "## What did not\n\n- —\n" in document
    assert document.startswith("# Checkout | down\n")
    assert "_Drafted by Claude (claude-sonnet-4-6). Cost $0.0123._" in document
    # Every table row has as many unescaped pipes as its header.
    for line in document.splitlines():
        if line.startswith("| "):
            assert len(re.findall(r"(?<!\\)\|", line)) in (3, 4), line


def test_the_filename_names_the_incident():
    assert postmortem_filename(make_incident()) == "postmortem-INC-7K2M9.md"
    assert postmortem_filename(make_incident(id="../INC 1/x")) == "postmortem-INC-1-x.md"


def test_the_summary_message_escapes_alert_and_model_text():
    incident = resolved_incident(title="<!channel> db down <https://evil.example|click>")
    pm = offline_postmortem(PostMortemInput(incident, None, CLEAN_TIMELINE)).model_copy(
        update={"summary": "Ping <!here> and see <https://evil.example|the fix> & <@U999>."}
    )

    message = postmortem_summary(incident, pm, requested_by="U0REQ")

    assert_within_slack_limits(message.blocks, text=message.text)
    rendered = message.text + repr(message.blocks)
    assert "<!channel>" not in rendered and "<!here>" not in rendered
    assert "<https://evil.example" not in rendered and "<@U999>" not in rendered
    assert "&lt;!channel&gt; db down &lt;https://evil.example|click&gt;" in message.text
    first = message.blocks[0]["text"]["text"]
    assert first.startswith(":memo: *Post-mortem draft* for INC-7K2M9: &lt;!channel&gt;")
    escaped = "Ping &lt;!here&gt; and see &lt;https://evil.example|the fix&gt; &amp; &lt;@U999&gt;"
    assert escaped in first
    asked = message.blocks[1]["text"]["text"]
    assert asked.startswith("<@U0REQ> asked for it")
    assert "`postmortem-INC-7K2M9.md`" in asked
    credit = message.blocks[2]["elements"][0]["text"]
    assert credit.startswith(":gear: Drafted offline from the incident's timeline alone")


def test_the_summary_message_credits_claude_with_model_and_cost():
    incident = resolved_incident()
    pm = offline_postmortem(PostMortemInput(incident, None, CLEAN_TIMELINE)).model_copy(
        update={
            "written_by": AnalyzerKind.CLAUDE,
            "model": "claude-sonnet-4-6",
            "cost_usd": 0.0421,
            "summary": "x" * 5000,
        }
    )

    message = postmortem_summary(incident, pm, requested_by="someone <!channel>")

    assert_within_slack_limits(message.blocks, text=message.text)
    credit = message.blocks[2]["elements"][0]["text"]
    assert credit == ":robot_face: Drafted by Claude · `claude-sonnet-4-6` · $0.0421"
    assert message.blocks[0]["text"]["text"].endswith("…")
    assert message.blocks[1]["text"]["text"].startswith("someone &lt;!channel&gt; asked")
