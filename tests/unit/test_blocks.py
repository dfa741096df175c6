"""The incident message: its important parts, hostile alert text, huge analyses, and a property
that holds for any text: within Slack's limits, and no markup that our code did not write."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.models import (
    Alternative,
    Analysis,
    AnalyzerKind,
    RelatedIncident,
    RemediationStep,
)
from blocks.ids import ActionId, ActionValue, BlockId
from blocks.incident import IncidentMessage, render_incident
from blocks.kit import Message
from blocks.limits import SECTION_TEXT_MAX, assert_within_slack_limits
from blocks.thread import continuation
from incidents.models import Incident, IncidentStatus, Severity

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
ACK_USER = "U024BE7LH"
HOSTILE = [
    "<!channel>",
    "<!here|here>",
    "<!everyone>",
    "<@U123>",
    "<#C123>",
    "<!subteam^S123|oncall>",
    "<https://evil.example|https://bank.example>",
    "&lt;already escaped&gt; &amp;",
    "`whoami` ``` ```",
]
HOSTILE_TEXT = " ".join(HOSTILE)
_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


def make_incident(**changes: Any) -> Incident:
    incident = Incident(
        id="INC-7K2M9",
        fingerprint="fp",
        title="Database connection failed",
        source="custom",
        resource="db-prod-1",
        severity=Severity.CRITICAL,
        opened_at=T0,
        last_seen_at=T0 + timedelta(minutes=7),
        occurrences=51,
    )
    return incident.model_copy(update=changes)


def make_analysis(**changes: Any) -> Analysis:
    """Built without validation, as a stored or future analysis may break today's bounds."""
    fields: dict[str, Any] = {
        "root_cause": "Connection pool exhausted: app_user hit max_connections.",
        "alternatives": [
            Alternative(hypothesis="Network partition", why_less_likely="others reach the DB")
        ],
        "severity": Severity.CRITICAL,
        "severity_justification": "Checkout fails for every user.",
        "impact": "All API writes fail.",
        "remediation_steps": [
            RemediationStep(action="Count connections", command="psql -c 'select 1'"),
            RemediationStep(action="Restart the API pods"),
        ],
        "check_first": ["RDS DatabaseConnections metric"],
        "confidence": 0.72,
        "analyzer": AnalyzerKind.CLAUDE,
        "model": "claude-sonnet-4-6",
        "prompt_version": "a1b2c3d4e5f6a7b8c9d0",
        "fingerprint": "fp",
        "related_incidents": [],
        "context_notes": [],
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "cost_usd": 0.0042,
        "cached": False,
        "created_at": T0,
    }
    fields.update(changes)
    return Analysis.model_construct(**fields)


def render(incident: Incident | None = None, analysis: Analysis | None = None, **kw: Any):
    options: dict[str, Any] = {"jira_enabled": True, "email_enabled": True}
    options.update(kw)
    return render_incident(incident or make_incident(), analysis, **options)


def strings(payload: Any) -> Iterator[str]:
    """Every string value anywhere in a payload: texts, values, ids, URLs."""
    if isinstance(payload, str):
        yield payload
    elif isinstance(payload, dict):
        for value in payload.values():
            yield from strings(value)
    elif isinstance(payload, list):
        for value in payload:
            yield from strings(value)


def texts(message: Message) -> list[str]:
    """The fallback text, every string of every block, and the overflow, if any."""
    found = [message.text, *strings(message.blocks)]
    if isinstance(message, IncidentMessage):
        found += message.overflow
    return found


def assert_safe(message: Message, allowed: tuple[str, ...] = ()) -> None:
    """Within Slack's limits; no `<` or `>` but the `allowed` markup our code writes; no entity
    cut in half."""
    assert_within_slack_limits(message.blocks, text=message.text)
    for text in texts(message):
        rest = text
        for token in allowed:
            rest = rest.replace(token, "")
        assert "<" not in rest and ">" not in rest, text
        assert not _ENTITY.search(rest), text
    if isinstance(message, IncidentMessage):
        assert all(len(part) <= SECTION_TEXT_MAX for part in message.overflow)


def action_ids(message: Message) -> list[str]:
    return [
        element["action_id"]
        for block in message.blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def block_texts(message: Message) -> str:
    return "\n".join(strings(message.blocks))


def test_the_important_parts_of_an_open_incident() -> None:
    message = render(
        make_incident(), make_analysis(), alert_message="PostgreSQL connection timeout after 30s"
    )

    assert message.text == ":red_circle: CRITICAL INC-7K2M9 Database connection failed"
    assert message.blocks[0] == {
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": ":red_circle: CRITICAL: Database connection failed",
            "emoji": True,
        },
    }
    assert message.blocks[1]["elements"][0]["text"] == "*INC-7K2M9*"
    assert [field["text"] for field in message.blocks[2]["fields"]] == [
        "*Source*\ncustom",
        "*Resource*\ndb-prod-1",
        "*First seen*\n2026-11-24 08:00 UTC",
        "*Last seen*\n2026-11-24 08:07 UTC",
        "*Occurrences*\n51",
        "*Status*\n:rotating_light: Open",
        "*Owner*\n_Unassigned_",
    ]
    assert message.blocks[3]["text"]["text"] == (
        "*Alert*\n`PostgreSQL connection timeout after 30s`"
    )
    sections = [b["text"]["text"] for b in message.blocks if b["type"] == "section" and "text" in b]
    assert sections[1:] == [
        "*Root cause* · confidence 72%\nConnection pool exhausted: app_user hit max_connections.",
        "*Impact*\nAll API writes fail.",
        "*Severity*\nCRITICAL: Checkout fails for every user.",
        "*First steps*\n*1.* Count connections\n`psql -c 'select 1'`\n\n*2.* Restart the API pods",
        "*Check first*\n• RDS DatabaseConnections metric",
        "*Other causes considered*\n• Network partition (less likely: others reach the DB)",
    ]
    credit = ":robot_face: Claude · `claude-sonnet-4-6` · $0.0042 · prompt `a1b2c3d4e5f6`"
    assert credit in block_texts(message)
    assert action_ids(message) == [
        ActionId.ACKNOWLEDGE,
        ActionId.RESOLVE,
        ActionId.CREATE_JIRA,
        ActionId.EMAIL,
        ActionId.REANALYZE,
        ActionId.SILENCE_1H,
        ActionId.SILENCE_24H,
    ]
    buttons = message.blocks[-1]
    assert buttons["block_id"] == BlockId.INCIDENT_ACTIONS
    assert {ActionValue.parse(b["value"]).incident_id for b in buttons["elements"]} == {"INC-7K2M9"}
    assert message.overflow == []
    assert_safe(message)


def test_acknowledged_incident_mentions_its_owner_and_drops_acknowledge() -> None:
    incident = make_incident(
        status=IncidentStatus.ACKNOWLEDGED,
        acknowledged_at=T0 + timedelta(minutes=4),
        acknowledged_by=ACK_USER,
    )
    message = render(incident, make_analysis())

    fields = [field["text"] for field in message.blocks[2]["fields"]]
    assert "*Status*\n:eyes: Acknowledged after 4m" in fields
    assert f"*Owner*\n<@{ACK_USER}>" in fields
    assert ActionId.ACKNOWLEDGE not in action_ids(message)
    assert ActionId.RESOLVE in action_ids(message)
    assert_safe(message, allowed=(f"<@{ACK_USER}>",))


def test_an_owner_that_is_not_a_slack_user_id_is_text() -> None:
    for owner in ("<!channel>", "u024be7lh", "alert:custom", "U024 <!here>"):
        incident = make_incident(status=IncidentStatus.ACKNOWLEDGED, acknowledged_by=owner)
        message = render(incident)
        assert_safe(message)


def test_resolved_incident_shows_duration_and_keeps_reanalyze_only() -> None:
    incident = make_incident(
        status=IncidentStatus.RESOLVED,
        acknowledged_by=ACK_USER,
        resolved_at=T0 + timedelta(minutes=12),
        resolved_by=ACK_USER,
    )
    message = render(incident, make_analysis())

    assert message.text == (
        ":white_check_mark: RESOLVED INC-7K2M9 Database connection failed (after 12m)"
    )
    assert message.blocks[0]["text"]["text"] == (
        ":white_check_mark: Resolved · CRITICAL: Database connection failed"
    )
    fields = [field["text"] for field in message.blocks[2]["fields"]]
    assert f"*Status*\n:white_check_mark: Resolved after 12m by <@{ACK_USER}>" in fields
    assert ActionId.ACKNOWLEDGE not in action_ids(message)
    assert ActionId.RESOLVE not in action_ids(message)
    assert ActionId.REANALYZE in action_ids(message)
    assert "*Root cause*" in block_texts(message), "the message stays readable"
    assert_safe(message, allowed=(f"<@{ACK_USER}>",))


def test_resolved_by_its_alert_says_so() -> None:
    incident = make_incident(
        status=IncidentStatus.RESOLVED,
        resolved_at=T0 + timedelta(hours=1, minutes=5),
        resolved_by="alert:cloudwatch",
    )
    fields = [field["text"] for field in render(incident).blocks[2]["fields"]]
    assert "*Status*\n:white_check_mark: Resolved after 1h 5m (the alert cleared)" in fields


def test_badges_flapping_silenced_and_jira_link() -> None:
    incident = make_incident(flapping=True, reopen_count=3, firing_members=["a", "b"])
    message = render(
        incident,
        jira_link=("OPS-42", "https://jira.example/browse/OPS-42"),
        silenced_until=T0 + timedelta(hours=1),
    )

    assert message.blocks[1]["elements"][0]["text"] == (
        "*INC-7K2M9* · :repeat: *Flapping* · :leftwards_arrow_with_hook: Reopened 3× · "
        ":zzz: Silenced until 2026-11-24 09:00 UTC · "
        ":ticket: <https://jira.example/browse/OPS-42|OPS-42>"
    )
    assert "*Occurrences*\n51 (2 still firing)" in block_texts(message)
    assert ActionId.CREATE_JIRA not in action_ids(message), "the ticket exists"
    assert_safe(message, allowed=("<https://jira.example/browse/OPS-42|OPS-42>",))


def test_a_jira_link_that_is_not_http_shows_only_its_key() -> None:
    message = render(jira_link=("OPS-1", "javascript:alert(1)"))
    assert ":ticket: OPS-1" in block_texts(message)
    assert "javascript" not in block_texts(message)


def test_disabled_integrations_hide_their_buttons() -> None:
    message = render(jira_enabled=False, email_enabled=False)
    assert ActionId.CREATE_JIRA not in action_ids(message)
    assert ActionId.EMAIL not in action_ids(message)


def test_analyzing_without_analysis_says_so_and_hides_reanalyze() -> None:
    message = render(analyzing=True)
    assert ":hourglass_flowing_sand: Analyzing…" in block_texts(message)
    assert ActionId.REANALYZE not in action_ids(message)

    again = render(analysis=make_analysis(), analyzing=True)
    assert ":hourglass_flowing_sand: Re-analyzing…" in block_texts(again)
    assert "*Root cause*" in block_texts(again)

    idle = render()
    assert "No analysis yet" in block_texts(idle)
    assert ActionId.REANALYZE in action_ids(idle)


def test_offline_and_cached_analyses_say_so() -> None:
    offline = render(analysis=make_analysis(analyzer=AnalyzerKind.OFFLINE, model=None))
    assert "*Offline analysis*: built-in rules, no AI model was asked" in block_texts(offline)
    assert "$" not in block_texts(offline)

    cached = render(analysis=make_analysis(cached=True))
    assert ":robot_face: Claude · `claude-sonnet-4-6` · cached · prompt" in block_texts(cached)


def test_similar_incidents_and_context_notes_are_shown_briefly() -> None:
    analysis = make_analysis(
        related_incidents=[
            RelatedIncident(incident_id="INC-1", title="DB down", status="resolved", outcome="x")
        ]
        * 5,
        context_notes=["CloudWatch Logs timed out"] * 5,
    )
    text = block_texts(render(analysis=analysis))
    assert text.count(":link: Similar: *INC-1* DB down (resolved: x)") == 3
    assert text.count(":information_source: CloudWatch Logs timed out") == 3


def test_hostile_alert_and_model_text_is_only_ever_text() -> None:
    incident = make_incident(
        title=HOSTILE_TEXT,
        source=HOSTILE_TEXT,
        resource=HOSTILE_TEXT,
        status=IncidentStatus.ACKNOWLEDGED,
        acknowledged_by="<@U123>",
        flapping=True,
    )
    analysis = make_analysis(
        root_cause=HOSTILE_TEXT,
        impact=HOSTILE_TEXT,
        severity_justification=HOSTILE_TEXT,
        remediation_steps=[RemediationStep(action=h, command=h) for h in HOSTILE],
        check_first=HOSTILE,
        alternatives=[Alternative(hypothesis=h, why_less_likely=h) for h in HOSTILE[:4]],
        related_incidents=[
            RelatedIncident(incident_id=h, title=h, status=h, outcome=h) for h in HOSTILE[:3]
        ],
        context_notes=HOSTILE[:3],
        model=HOSTILE_TEXT,
        prompt_version="<!here>",
    )
    message = render(incident, analysis, alert_message=HOSTILE_TEXT)

    assert_safe(message)
    for hostile in (h for h in HOSTILE if "<" in h or "&" in h):
        assert all(hostile not in text for text in texts(message)), hostile
    header = message.blocks[0]["text"]["text"]
    assert "&lt;!channel&gt; &lt;!here|here&gt;" in header, "shown as text, not dropped"
    assert "&amp;lt;already escaped&amp;gt; &amp;amp;" in block_texts(message)


def test_a_huge_analysis_stays_within_limits_and_the_thread_gets_the_rest() -> None:
    root_cause = "The pool is exhausted. " * 440 + "ROOT-CAUSE-END"
    steps = [
        RemediationStep(
            action=f"Step {n}: " + "check the pool settings " * 40 + f"STEP-{n:02}-END",
            command=f"psql -c 'select {n}' # CMD-{n:02}",
        )
        for n in range(1, 21)
    ]
    analysis = make_analysis(root_cause=root_cause, remediation_steps=steps)
    assert len(root_cause) > 10_000

    message = render(analysis=analysis)

    assert_safe(message)
    assert message.overflow, "the cut parts continue in the thread"
    shown = block_texts(message)
    everything = shown + "\n".join(message.overflow)
    for marker in ["ROOT-CAUSE-END"] + [f"STEP-{n:02}-END" for n in range(1, 21)]:
        assert everything.count(marker) == 1, marker
    assert "ROOT-CAUSE-END" not in shown
    assert "*Root cause (continued)*" in message.overflow[0]
    assert any(part.startswith("*First steps (continued)*") for part in message.overflow)
    assert ":thread: The rest of the analysis is in the thread." in shown
    for post in continuation(make_incident(), message.overflow):
        assert_within_slack_limits(post.blocks, text=post.text)


def test_escaping_that_quadruples_the_length_is_cut_between_entities() -> None:
    analysis = make_analysis(
        root_cause="<" * 2000,
        impact="&" * 2000,
        remediation_steps=[RemediationStep(action=">" * 2000, command="<&>" * 600)],
    )
    message = render(make_incident(title="<" * 200), analysis, alert_message="&" * 2000)
    assert_safe(message)
    assert message.overflow


_fragment = st.one_of(st.text(), st.sampled_from(HOSTILE), st.sampled_from(["\n", "\n\n", " "]))
_text = st.lists(_fragment, max_size=12).map("".join)
_long_text = st.one_of(
    _text, st.builds(lambda text, times: text * times, _text, st.integers(1, 300))
)
_steps = st.lists(
    st.builds(RemediationStep.model_construct, action=_long_text, command=st.none() | _long_text),
    min_size=1,
    max_size=12,
)


@settings(max_examples=120, deadline=None)
@given(
    title=_long_text,
    source=_text,
    resource=st.none() | _text,
    alert_message=st.none() | _long_text,
    root_cause=_long_text,
    impact=_long_text,
    justification=_text,
    steps=_steps,
    check_first=st.lists(_long_text, max_size=6),
    notes=st.lists(_text, max_size=4),
    status=st.sampled_from(IncidentStatus),
    owner=st.none() | st.just(ACK_USER) | _text,
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
    with_analysis=st.booleans(),
)
def test_any_text_renders_within_limits_and_without_foreign_markup(
    title: str,
    source: str,
    resource: str | None,
    alert_message: str | None,
    root_cause: str,
    impact: str,
    justification: str,
    steps: list[RemediationStep],
    check_first: list[str],
    notes: list[str],
    status: IncidentStatus,
    owner: str | None,
    flags: tuple[bool, bool, bool, bool],
    with_analysis: bool,
) -> None:
    flapping, analyzing, jira_enabled, email_enabled = flags
    incident = make_incident(
        title=title,
        source=source,
        resource=resource,
        status=status,
        acknowledged_by=owner,
        resolved_at=T0 + timedelta(minutes=30) if status is IncidentStatus.RESOLVED else None,
        resolved_by=owner,
        flapping=flapping,
    )
    analysis = make_analysis(
        root_cause=root_cause,
        impact=impact,
        severity_justification=justification,
        remediation_steps=steps,
        check_first=check_first,
        context_notes=notes,
    )
    message = render_incident(
        incident,
        analysis if with_analysis else None,
        jira_enabled=jira_enabled,
        email_enabled=email_enabled,
        analyzing=analyzing,
        alert_message=alert_message,
    )

    # The owner is written by our code; whatever it renders as a mention is ours.
    allowed = (f"<@{owner}>",) if owner else ()
    assert_safe(message, allowed=allowed)
    for post in continuation(incident, message.overflow):
        assert_within_slack_limits(post.blocks, text=post.text)


def test_a_log_incident_says_which_template_grouped_its_lines() -> None:
    """Issue 16: an on-call engineer sees why the lines are one incident; an alarm, which
    names itself, has no template and no such line."""
    template = "Receiving block <*> src: <*> dest: <*>"
    logs = render(make_incident(template=template), None)
    alarm = render(make_incident(), None)

    grouped = [
        element["text"]
        for block in logs.blocks
        if block["type"] == "context"
        for element in block["elements"]
        if "Grouped by template" in element["text"]
    ]
    assert grouped == [
        ":jigsaw: Grouped by template `Receiving block &lt;*&gt; src: &lt;*&gt; dest: &lt;*&gt;`"
    ]
    assert "Grouped by template" not in str(alarm.blocks)
