"""Escaping, cutting and code spans; the typed ids and payloads; the limit checker itself."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from blocks.ids import ActionId, ActionValue, BlockId, CallbackId, ModalMetadata
from blocks.limits import (
    assert_view_within_slack_limits,
    assert_within_slack_limits,
    slack_limit_violations,
)
from blocks.text import (
    ELLIPSIS,
    code,
    cut,
    escape,
    from_slack,
    link,
    mention_or_text,
    split_for_sections,
    truncate,
)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<!here|here>", "&lt;!here|here&gt;"),
        ("<@U123>", "&lt;@U123&gt;"),
        ("<#C123>", "&lt;#C123&gt;"),
        (
            "<https://evil.example|https://bank.example>",
            "&lt;https://evil.example|https://bank.example&gt;",
        ),
        ("&lt; already", "&amp;lt; already"),
        ("a\r\nb\rc\x00d\x1be\tf", "a\nb\ncd" + "e\tf"),
        ("*bold* `code`", "*bold* `code`"),
    ],
)
def test_escape(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped


def test_code_is_inline_when_it_can_be_and_a_block_when_backticks_would_break_it() -> None:
    assert code("  kubectl get pods  ") == "`kubectl get pods`"
    assert code("echo <!here> & done") == "`echo &lt;!here&gt; &amp; done`"
    assert code("echo `whoami`") == "```\necho `whoami`\n```"
    assert code("a\nb") == "```\na\nb\n```"
    assert code("x" * 201) == "```\n" + "x" * 201 + "\n```"
    assert code("say ``` then `x`") == "```\nsay ˋˋˋ then ˋxˋ\n```", "a fence cannot close it"
    assert code(" \n ") == ""


def test_mentions_only_for_slack_user_ids() -> None:
    assert mention_or_text("U024BE7LH") == "<@U024BE7LH>"
    assert mention_or_text("W012A3CDE") == "<@W012A3CDE>"
    for actor in ("<@U123>", "u024be7lh", "U", "alert:custom", "U123 <!here>", "bot"):
        assert "<" not in mention_or_text(actor), actor


def test_links_only_for_http_urls_and_their_pipes_cannot_end_the_url() -> None:
    assert link("https://jira.example/browse/OPS-1", "OPS-1") == (
        "<https://jira.example/browse/OPS-1|OPS-1>"
    )
    assert link("https://x.example/a|b>c&d", "<K>") == (
        "<https://x.example/a%7Cb&gt;c&amp;d|&lt;K&gt;>"
    )
    assert link("javascript:alert(1)", "OPS-1") == "OPS-1"


def test_truncate_prefers_paragraphs_then_lines_then_words() -> None:
    paragraphs = "first paragraph here\n\nsecond paragraph goes on and on"
    assert truncate(paragraphs, 30) == "first paragraph here…"
    lines = "line one is here\nline two goes on and on"
    assert truncate(lines, 30) == "line one is here…"
    words = "alpha beta gamma delta epsilon"
    assert truncate(words, 20) == "alpha beta gamma…"
    assert truncate("short", 20) == "short"


def test_a_hard_cut_never_splits_an_entity_or_a_backtick_run() -> None:
    escaped = escape("<" * 50)
    shown = truncate(escaped, 30)
    assert len(shown) <= 30
    assert re.fullmatch(r"(&lt;)+…", shown)
    head, rest = cut("x" * 7 + "`" * 10, 10)
    assert head + rest == "x" * 7 + "`" * 10
    assert not head.endswith("`")


def test_a_code_block_cut_in_two_is_closed_and_reopened() -> None:
    text = "*Steps*\n```\n" + "\n".join(f"command number {n}" for n in range(300)) + "\n```"
    parts = split_for_sections(text, 500)
    assert len(parts) > 5
    for part in parts:
        assert len(part) <= 500
        assert part.count("```") % 2 == 0, part
    assert parts[1].startswith("```\n")


def test_limits_below_what_can_make_progress_are_refused() -> None:
    with pytest.raises(ValueError):
        split_for_sections("text", 10)
    with pytest.raises(ValueError):
        truncate("text that is long", 5)


_prose = st.text(alphabet=st.characters(blacklist_characters="`"), max_size=3000)


@settings(max_examples=200, deadline=None)
@given(text=_prose, limit=st.integers(64, 700))
def test_split_keeps_every_visible_character_in_order(text: str, limit: int) -> None:
    escaped = escape(text)
    parts = split_for_sections(escaped, limit)
    assert all(len(part) <= limit for part in parts)
    assert re.sub(r"\s", "", "".join(parts)) == re.sub(r"\s", "", escaped)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="ab `\n&<>", max_size=2000), limit=st.integers(64, 400))
def test_split_of_balanced_code_stays_balanced(text: str, limit: int) -> None:
    balanced = escape(text) + ("```" if text.count("```") % 2 else "")
    for part in split_for_sections(balanced, limit):
        assert len(part) <= limit
        assert part.count("```") % 2 == 0, part
        assert not re.search(r"&(?!amp;|lt;|gt;)", part), part


@settings(max_examples=200, deadline=None)
@given(text=_prose, limit=st.integers(6, 400))
def test_truncate_is_a_prefix_within_the_limit(text: str, limit: int) -> None:
    shown = truncate(text, limit)
    assert len(shown) <= limit
    if shown != text:
        assert shown.endswith(ELLIPSIS)
        assert text.startswith(shown.removesuffix(ELLIPSIS))


def test_ids_are_namespaced_and_distinct() -> None:
    buttons = [a for a in ActionId if a.value.startswith("incident.")]
    assert len(buttons) == 9
    values = [*ActionId, *BlockId, *CallbackId]
    assert len({v.value for v in values}) == len(values)


def test_action_value_round_trip_and_size_check() -> None:
    value = ActionValue(incident_id="INC-7K2M9")
    assert value.dump() == '{"incident_id":"INC-7K2M9"}'
    assert ActionValue.parse(value.dump()) == value
    with pytest.raises(ValueError, match="Slack allows 255"):
        ActionValue(incident_id="x" * 240).dump()
    with pytest.raises(ValueError):
        ActionValue.parse('{"incident_id":"' + "x" * 300 + '"}')
    for forged in ("not json", '{"incident_id":""}', '{"incident_id":"a","extra":1}'):
        with pytest.raises(ValidationError):
            ActionValue.parse(forged)


def test_modal_metadata_allows_up_to_3000_characters() -> None:
    assert ModalMetadata.parse(ModalMetadata(incident_id="x" * 2900).dump()).incident_id
    with pytest.raises(ValueError):
        ModalMetadata(incident_id="x" * 3000).dump()


def _section(text: str) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _button(label: str, value: str) -> dict[str, object]:
    return {
        "type": "button",
        "action_id": "a",
        "text": {"type": "plain_text", "text": label},
        "value": value,
    }


@pytest.mark.parametrize(
    ("blocks", "text", "problem"),
    [
        ([_section("x")] * 51, "t", "51 blocks"),
        ([_section("x" * 3001)], "t", "3001 characters, more than 3000"),
        (
            [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}],
            "t",
            "more than 150",
        ),
        (
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2001}]}],
            "t",
            "more than 2000",
        ),
        ([{"type": "actions", "elements": [_button("x" * 76, "v")]}], "t", "more than 75"),
        ([{"type": "actions", "elements": [_button("b", "v" * 256)]}], "t", "more than 255"),
        ([_section(" ")], "t", "empty"),
        ([_section("x")], "", "fallback text: empty"),
        ([{"type": "section", "txt": {"type": "mrkdwn", "text": "x"}}], "t", "neither"),
        ([{"type": "section", "text": {"type": "mrkdwn", "text": "x"}, "colour": 1}], "t", "trip"),
        ([{"type": "divider", "block_id": "a"}, {"type": "divider", "block_id": "a"}], "t", "uniq"),
        ([{"type": "rich_text_list", "elements": []}], "t", "do not know"),
    ],
)
def test_the_checker_finds_each_broken_limit(
    blocks: list[dict[str, object]], text: str, problem: str
) -> None:
    assert any(problem in found for found in slack_limit_violations(blocks, text=text))
    with pytest.raises(AssertionError):
        assert_within_slack_limits(blocks, text=text)


def test_the_checker_finds_a_broken_view() -> None:
    view = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "x" * 25},
        "submit": {"type": "plain_text", "text": "Send"},
        "private_metadata": "m" * 3001,
        "blocks": [_section("x")],
    }
    with pytest.raises(AssertionError, match="view title.*\n.*private_metadata"):
        assert_view_within_slack_limits(view)


@pytest.mark.parametrize(
    ("sent", "typed"),
    [
        ("pool &amp; cache &lt;db&gt;", "pool & cache <db>"),
        ("ask <@U123> or <@U9|ann> in <#C1|ops> or <#C2>", "ask @U123 or @ann in #ops or #C2"),
        ("<!here> <!channel> <!subteam^S1|@ops> <!subteam^S2>", "@here @channel @ops @subteam"),
        (
            "see <https://x.example/a|docs> and <https://y.example>",
            "see docs and https://y.example",
        ),
        ("&amp;lt;already&amp;gt;", "&lt;already&gt;"),
    ],
)
def test_slack_text_reads_back_as_typed(sent: str, typed: str) -> None:
    assert from_slack(sent) == typed
