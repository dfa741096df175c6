"""Thread notes, follow-up answers, `/incident` replies, errors and the email modal: each within
Slack's limits, and each showing hostile text as text."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blocks.commands import (
    LIST_SHOWN,
    IncidentStats,
    digest_message,
    error_message,
    help_message,
    incident_detail,
    incident_list,
    stats_message,
)
from blocks.ids import ActionId, BlockId, CallbackId, ModalMetadata
from blocks.limits import assert_view_within_slack_limits
from blocks.modals import email_modal
from blocks.thread import (
    continuation,
    followup_messages,
    reanalyzed_note,
    reopened_note,
    resolved_note,
    silenced_note,
)
from incidents.models import (
    Delivery,
    DeliveryStatus,
    IncidentStatus,
    Severity,
    Silence,
    TimelineEvent,
    TimelineKind,
)
from incidents.store import AlertCount
from tests.unit.test_blocks import (
    ACK_USER,
    HOSTILE,
    HOSTILE_TEXT,
    T0,
    assert_safe,
    block_texts,
    make_analysis,
    make_incident,
)


def test_reopened_note_counts_and_nudges_a_flapping_incident() -> None:
    incident = make_incident(
        reopen_count=3, flapping=True, recent_reopens=[T0 + timedelta(minutes=50)]
    )
    note = reopened_note(incident)

    assert note.blocks[0]["text"]["text"] == (
        ":leftwards_arrow_with_hook: Reopened at 2026-11-24 08:50 UTC: the alert fired again. "
        "That makes 3 reopens.\n"
        ":repeat: *Flapping*: it keeps coming back. "
        "*Silence* it while the cause is fixed, or tune the alarm."
    )
    assert_safe(note)


def test_resolved_note_says_how_long_and_who() -> None:
    incident = make_incident(
        status=IncidentStatus.RESOLVED,
        resolved_at=T0 + timedelta(minutes=12),
        resolved_by=ACK_USER,
    )
    note = resolved_note(incident)

    assert note.text == (
        f":white_check_mark: Resolved after 12m by <@{ACK_USER}> · 51 occurrence(s)."
    )
    assert_safe(note, allowed=(f"<@{ACK_USER}>",))
    [record] = note.blocks[-1]["elements"]
    assert record["action_id"] == ActionId.CONFIRM
    assert json.loads(record["value"]) == {"incident_id": incident.id}
    with pytest.raises(ValueError, match="not resolved"):
        resolved_note(make_incident())


def test_reanalyzed_note_mentions_a_user_and_escapes_anything_else() -> None:
    note = reanalyzed_note(make_analysis(), ACK_USER)
    assert note.text == (
        f":arrows_counterclockwise: <@{ACK_USER}> asked for a new analysis; "
        "the message above now shows it (confidence 72%)."
    )
    assert "· $0.0042 ·" in block_texts(note)
    assert_safe(note, allowed=(f"<@{ACK_USER}>",))
    assert_safe(reanalyzed_note(make_analysis(model="<!here>"), "<!channel>"))


def test_silenced_note_says_who_and_until_when() -> None:
    silence = Silence(fingerprint="fp", until=T0 + timedelta(hours=24), by=ACK_USER, at=T0)
    note = silenced_note(silence)
    assert note.text == (
        f":zzz: <@{ACK_USER}> silenced this alert until 2026-11-25 08:00 UTC. "
        "New alerts are still recorded, but not posted."
    )
    assert_safe(note, allowed=(f"<@{ACK_USER}>",))


def test_a_long_followup_messages_becomes_several_posts_within_limits() -> None:
    answer = "\n\n".join(f"Paragraph {n}: {HOSTILE_TEXT} " + "detail " * 300 for n in range(30))
    posts = followup_messages(answer, footer="claude-haiku-4-5 · $0.0010 <!here>")

    assert len(posts) > 1
    for post in posts:
        assert_safe(post)
    assert block_texts(posts[-1]).endswith("claude-haiku-4-5 · $0.0010 &lt;!here&gt;")
    assert "Paragraph 29" in block_texts(posts[-1])
    assert followup_messages("")[0].blocks[0]["text"]["text"] == "—"


@settings(max_examples=60, deadline=None)
@given(answer=st.lists(st.one_of(st.text(), st.sampled_from(HOSTILE)), max_size=40).map("".join))
def test_any_followup_answer_is_safe(answer: str) -> None:
    for post in followup_messages(answer * 50):
        assert_safe(post)


def test_continuation_posts_the_overflow_in_order() -> None:
    overflow = [f"*Part {n}*\n" + "x" * 2900 for n in range(9)]
    posts = continuation(make_incident(), overflow)

    assert [len(post.blocks) for post in posts] == [4, 4, 1]
    assert [b["text"]["text"] for post in posts for b in post.blocks] == overflow
    for post in posts:
        assert_safe(post)


def test_incident_list_is_newest_first_and_only_active() -> None:
    incidents = [
        make_incident(id="INC-OLD", opened_at=T0),
        make_incident(id="INC-NEW", opened_at=T0 + timedelta(hours=2), title=HOSTILE_TEXT),
        make_incident(id="INC-DONE", status=IncidentStatus.RESOLVED, resolved_at=T0),
    ]
    reply = incident_list(incidents)

    text = block_texts(reply)
    assert reply.text == "Open incidents (2)"
    assert text.index("INC-NEW") < text.index("INC-OLD")
    assert "INC-DONE" not in text
    assert "`/incident show &lt;id&gt;` shows one with its timeline." in text
    assert_safe(reply)


def test_a_long_incident_list_is_capped() -> None:
    incidents = [
        make_incident(id=f"INC-{n}", opened_at=T0 + timedelta(minutes=n), title="t" * 500)
        for n in range(200)
    ]
    reply = incident_list(incidents)

    assert f"…and {200 - LIST_SHOWN} more." in block_texts(reply)
    assert_safe(reply)
    assert incident_list([]).text == ":white_check_mark: No open incidents."


def test_incident_detail_shows_the_latest_timeline() -> None:
    events = [
        TimelineEvent(
            incident_id="INC-7K2M9",
            at=T0 + timedelta(minutes=n),
            actor=ACK_USER if n % 2 else "alert:custom",
            kind=list(TimelineKind)[n % len(TimelineKind)],
            detail=HOSTILE_TEXT * 5,
        )
        for n in range(100)
    ]
    reply = incident_detail(make_incident(), make_analysis(root_cause="x " * 2000), events)

    text = block_texts(reply)
    assert "_60 earlier events not shown._" in text
    assert "2026-11-24 09:39 UTC" in text, "the newest event"
    assert "2026-11-24 08:59 UTC" not in text
    assert f"by <@{ACK_USER}>" in text
    assert "by alert:custom" in text
    assert "*Root cause* · confidence 72%" in text
    assert_safe(reply, allowed=(f"<@{ACK_USER}>",))
    assert "_No events recorded._" in block_texts(incident_detail(make_incident(), None, []))


def _stats(**changes: object) -> IncidentStats:
    base = IncidentStats(
        period="last 7d <!channel>",
        until=T0 + timedelta(hours=3),
        opened={Severity.CRITICAL: 1, Severity.HIGH: 4, Severity.LOW: 2},
        resolved={Severity.HIGH: 3},
        mtta=timedelta(minutes=4),
        mttr=timedelta(hours=1, minutes=5),
        alerts=21,
        alerted_incidents=7,
        noisiest_fingerprints=[
            AlertCount("0123456789abcdef0123", 12, HOSTILE_TEXT),
            AlertCount("fp`<!here>", 2, ""),
        ],
        noisiest_sources=[AlertCount("cloudwatch", 12), AlertCount("<!channel>", 9)],
        analyses=9,
        cache_hit_rate=0.89,
        claude_calls=1,
        claude_cost_usd=0.0497,
        open_count=3,
        open_incidents=[make_incident(title="<!channel> disk full", opened_at=T0)],
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_stats_message() -> None:
    reply = stats_message(_stats())

    assert reply.blocks[0]["text"]["text"] == ":bar_chart: Incidents, last 7d &lt;!channel&gt;"
    assert [field["text"] for field in reply.blocks[1]["fields"]] == [
        "*Opened*\n7 · :red_circle: 1 · :large_orange_circle: 4 · :large_yellow_circle: 0 · "
        ":large_blue_circle: 2",
        "*Resolved*\n3 · :red_circle: 0 · :large_orange_circle: 3 · :large_yellow_circle: 0 · "
        ":large_blue_circle: 0",
        "*Mean time to acknowledge*\n4m",
        "*Mean time to resolve*\n1h 5m",
        "*Alerts per incident*\n3.0 (21 alerts, 7 incidents)",
        "*Still open*\n3",
        "*Analysis cache hit rate*\n89% of 9 analyses",
        "*Claude*\n1 call · $0.0497",
    ]
    text = block_texts(reply)
    assert "1. *12* · " in text and "`0123456789ab`" in text, "fingerprints cut to 12"
    assert "`cloudwatch` 12 · `&lt;!channel&gt;` 9" in text
    assert "*INC-7K2M9* &lt;!channel&gt; disk full" in text and "open 3h" in text
    assert "…and 2 more: `/incident list`" in text
    assert_safe(reply)
    empty = stats_message(
        _stats(
            mtta=None,
            mttr=None,
            alerts=0,
            alerted_incidents=0,
            noisiest_fingerprints=[],
            noisiest_sources=[],
            cache_hit_rate=None,
            open_count=0,
            open_incidents=[],
        )
    )
    assert "*Mean time to acknowledge*\n—" in block_texts(empty)
    assert "*Alerts per incident*\n—" in block_texts(empty)
    assert "Noisiest" not in block_texts(empty) and "Still open (" not in block_texts(empty)


def test_digest_message_is_dated_in_its_timezone_and_lists_what_is_open() -> None:
    late = T0 + timedelta(hours=15)  # 23:00 UTC on the 24th: 08:00 on the 25th in Tokyo
    digest = digest_message(_stats(until=late, period="last 24h"), ZoneInfo("Asia/Tokyo"))

    title = "Daily incident digest · Wed 25 Nov 2026 (Asia/Tokyo)"
    assert digest.blocks[0]["text"]["text"] == f":newspaper: {title}"
    assert digest.text == f"{title}: 7 opened, 3 resolved, 3 still open"
    text = block_texts(digest)
    assert "Last 24h to 2026-11-24 23:00 UTC" in text
    assert "*Still open (3)*" in text
    assert ":red_circle: *INC-7K2M9* &lt;!channel&gt; disk full" in text and "open 15h" in text
    assert "<!channel>" not in text
    assert_safe(digest)


def test_a_digest_with_long_hostile_titles_stays_within_limits() -> None:
    incidents = [make_incident(id=f"INC-{n}", title=HOSTILE_TEXT * 50) for n in range(10)]
    counts = [AlertCount(HOSTILE_TEXT * 5, 10**6, HOSTILE_TEXT * 50) for _ in range(5)]
    digest = digest_message(
        _stats(open_incidents=incidents, open_count=500, noisiest_fingerprints=counts),
        ZoneInfo("UTC"),
    )
    assert_safe(digest)


def test_help_lists_every_subcommand() -> None:
    reply = help_message()
    text = block_texts(reply)
    for usage in (
        "analyze &lt;text&gt;",
        "list",
        "show &lt;id&gt;",
        "ack &lt;id&gt;",
        "resolve &lt;id&gt;",
        "silence &lt;id&gt; &lt;duration&gt;",
        "stats [period]",
        "help",
    ):
        assert f"`/incident {usage}`" in text
    assert_safe(reply)


def test_error_message_escapes_and_carries_a_reference() -> None:
    reply = error_message("No incident <!here> INC-X", correlation_id="c0ffee")
    assert reply.text == ":warning: No incident &lt;!here&gt; INC-X"
    assert "Reference `c0ffee` for the bot's logs." in block_texts(reply)
    assert_safe(reply)
    assert_safe(error_message("x" * 10_000))


def test_email_modal_is_prefilled_and_within_limits() -> None:
    view = email_modal(
        make_incident(title=HOSTILE_TEXT), recipients=["ops@example.com", " lead@example.com"]
    )

    assert_view_within_slack_limits(view)
    assert view["callback_id"] == CallbackId.EMAIL
    assert ModalMetadata.parse(view["private_metadata"]).incident_id == "INC-7K2M9"
    recipients, note = view["blocks"][1], view["blocks"][2]
    assert recipients["block_id"] == BlockId.EMAIL_RECIPIENTS
    assert recipients["element"]["action_id"] == ActionId.EMAIL_RECIPIENTS
    assert recipients["element"]["initial_value"] == "ops@example.com, lead@example.com"
    assert note["block_id"] == BlockId.EMAIL_NOTE
    assert note["optional"] is True
    assert note["element"]["multiline"] is True
    assert "&lt;!channel&gt;" in view["blocks"][0]["text"]["text"]
    assert "<!channel>" not in str(view)


def test_email_modal_keeps_recipients_whole() -> None:
    many = [f"person{n}@example.com" for n in range(500)]
    view = email_modal(make_incident(), recipients=many)
    prefilled = view["blocks"][1]["element"]["initial_value"]

    assert len(prefilled) <= 3000
    assert all(address in many for address in prefilled.split(", "))
    assert_view_within_slack_limits(view)
    unfilled = email_modal(make_incident(), recipients=[])
    assert "initial_value" not in unfilled["blocks"][1]["element"]


def test_incident_detail_lists_what_was_sent_where_with_errors_escaped() -> None:
    def delivery(target: str, action: str, **changes: object) -> Delivery:
        return Delivery(
            key=f"INC-7K2M9:{target}:{action}", incident_id="INC-7K2M9", target=target,
            action=action, requested_by=ACK_USER, requested_at=T0, next_attempt_at=T0,
        ).model_copy(update=changes)  # fmt: skip

    sent = [
        delivery("jira", "create", status=DeliveryStatus.SENT, attempts=1, result="OPS-12"),
        delivery("pagerduty", "trigger", attempts=2, last_error=f"HTTP 503 {HOSTILE_TEXT}"),
        delivery("email", "send", status=DeliveryStatus.FAILED, attempts=1,
                 last_error="recipient refused"),
    ]  # fmt: skip

    reply = incident_detail(make_incident(), None, [], sent)

    text = block_texts(reply)
    assert f"jira create by <@{ACK_USER}>: sent `OPS-12` · 1 attempt" in text
    assert "pagerduty trigger" in text and ": pending (HTTP 503" in text and "2 attempts" in text
    assert ": failed (recipient refused) · 1 attempt" in text
    assert_safe(reply, allowed=(f"<@{ACK_USER}>",))
    assert "*Sent*" not in block_texts(incident_detail(make_incident(), None, []))
