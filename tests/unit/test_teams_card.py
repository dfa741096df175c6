"""The Teams Adaptive Card: what it shows, that alert and model text can never become a link,
emphasis or a list in it, and that it always fits in a Teams message."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.models import TEXT_LIMIT, Analysis, RemediationStep
from incidents.models import Incident, IncidentStatus
from notify.teams import (
    CARD_BUDGET,
    CARD_CONTENT_TYPE,
    CUT_NOTE,
    adaptive_card,
    encode,
    escape_markdown,
    resolved_card,
)
from tests import samples
from tests.conftest import T0
from tests.fakes.teams_server import MAX_BODY, message_problem
from tests.samples import PERMALINK

HOSTILE = "<!channel> [click](http://evil.example) **bold** <a href=x>"
MARKDOWN = set("\\`*_[]()#<>~")


def make_incident(**changes: Any) -> Incident:
    return samples.make_incident(**{"id": "INC-7K2M9QXA", **changes})


def make_analysis(**changes: Any) -> Analysis:
    """Two steps, so that the cuts and drops below are counted on a short list."""
    steps = samples.make_analysis().remediation_steps[:2]
    return samples.make_analysis(**{"remediation_steps": steps, **changes})


def content(card: dict[str, Any]) -> dict[str, Any]:
    [attachment] = card["attachments"]
    assert attachment["contentType"] == CARD_CONTENT_TYPE and attachment["contentUrl"] is None
    result: dict[str, Any] = attachment["content"]
    return result


def texts(card: dict[str, Any]) -> list[str]:
    """Every string Teams renders as Markdown: TextBlock texts and FactSet values."""
    shown = []
    for element in content(card)["body"]:
        if element["type"] == "TextBlock":
            shown.append(element["text"])
        elif element["type"] == "FactSet":
            shown += [fact["value"] for fact in element["facts"]]
    return shown


def unescaped(markdown: str) -> set[str]:
    """The Markdown characters in `markdown` not preceded by an escaping backslash."""
    found = set()
    escaped = False
    for char in markdown:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in MARKDOWN:
            found.add(char)
    return found


def test_the_card_is_a_workflows_message_with_header_facts_and_analysis() -> None:
    card = adaptive_card(make_incident(), make_analysis(), PERMALINK)

    assert card["type"] == "message" and message_problem(card) is None
    body = content(card)["body"]
    assert content(card)["type"] == "AdaptiveCard" and content(card)["version"] == "1.4"
    header, facts = body[0], body[1]
    assert header["text"] == "HIGH · Database connection failed"
    assert header["weight"] == "Bolder" and header["color"] == "Attention"
    assert {fact["title"]: fact["value"] for fact in facts["facts"]} == {
        "Id": "INC-7K2M9QXA",
        "Status": "open",
        "Source": "cloudwatch",
        "Resource": "db-prod-1",
        "First seen": "2026-11-24 08:00:00 UTC",
        "Last seen": "2026-11-24 08:07:00 UTC",
        "Occurrences": "51",
    }
    shown = [block["text"] for block in body[2:]]
    assert shown[:4] == [
        "Root cause",
        "The orders database hit max\\_connections: app\\_user leaks connections.",
        "Impact",
        "All checkouts fail; the orders API answers 500.",
    ]
    assert "**1.** List the sessions held by app\\_user." in shown
    assert "**2.** Restart the leaking orders-api pods." in shown
    [command] = [block for block in body if block.get("fontType") == "Monospace"]
    assert command["text"] == "psql -c 'select count\\(\\*\\) from pg\\_stat\\_activity'"
    assert CUT_NOTE not in shown
    assert content(card)["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open in Slack", "url": PERMALINK}
    ]


def test_without_analysis_the_card_says_so() -> None:
    card = adaptive_card(make_incident(), None, None)
    assert any("No analysis is available yet" in text for text in texts(card))
    assert message_problem(card) is None


@pytest.mark.parametrize(
    "permalink", [None, "", "http://example.slack.com/x", "javascript:alert(1)", "https://"]
)
def test_only_an_https_permalink_becomes_an_open_url_button(permalink: str | None) -> None:
    assert "actions" not in content(adaptive_card(make_incident(), make_analysis(), permalink))


def test_hostile_alert_and_model_text_is_neutralised_everywhere() -> None:
    incident = make_incident(title=HOSTILE, source=HOSTILE, resource=HOSTILE)
    step = RemediationStep(action=HOSTILE, command=f"curl {HOSTILE}")
    analysis = make_analysis(root_cause=HOSTILE, impact=HOSTILE, remediation_steps=[step])
    card = adaptive_card(incident, analysis, "http://evil.example/slack")

    assert message_problem(card) is None and "actions" not in content(card)
    for text in texts(card):
        assert "](" not in text and "**bold**" not in text
        assert unescaped(text.replace("**1.**", "")) == set(), text
    prose = [text for text in texts(card) if not text.startswith("curl")]
    assert all("http://evil" not in text for text in prose), "a bare URL must not be linkable"
    [command] = [b["text"] for b in content(card)["body"] if b.get("fontType") == "Monospace"]
    assert "http://evil.example" in command, "a command keeps its URL, to run as written"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("[click](http://evil.example)", "\\[click\\]\\(http:\u200b//evil.example\\)"),
        ("**bold** _it_ `code` ~strike~", "\\*\\*bold\\*\\* \\_it\\_ \\`code\\` \\~strike\\~"),
        ("# heading\n> quote", "\\# heading\n\n\\> quote"),
        ("- item\n+ item\n1. item\n2) item", "\\- item\n\n\\+ item\n\n1\\. item\n\n2\\) item"),
        ("see www.evil.example", "see www\u200b.evil.example"),
        (
            "{{DATE(2017-02-14T06:08:39Z, SHORT)}}",
            "{\u200b{DATE\\(2017-02-14T06:08:39Z, SHORT\\)}}",
        ),
        ("C:\\temp\\*", "C:\\\\temp\\\\\\*"),
        ("bell\x07 and\r\nline", "bell and\n\nline"),
        ("10.0.0.1 - 5 items\n2026. Done", "10.0.0.1 - 5 items\n\n2026\\. Done"),
    ],
)
def test_escape_markdown(text: str, shown: str) -> None:
    assert escape_markdown(text) == shown


def test_commands_keep_their_urls() -> None:
    assert escape_markdown("curl https://x.example/_health", links=False) == (
        "curl https://x.example/\\_health"
    )


@given(st.text())
def test_no_text_can_make_a_link_or_markup(text: str) -> None:
    shown = escape_markdown(text)
    assert unescaped(shown) == set()
    assert "](" not in shown and "://" not in shown and "{{" not in shown
    assert not re.search(r"^\s*([-+]|\d{1,9}[.)](\s|$))", shown, re.MULTILINE)


def test_long_fields_are_cut_and_the_card_says_so() -> None:
    analysis = make_analysis(root_cause="x" * 50_000)
    card = adaptive_card(make_incident(title="t" * 5000), analysis, PERMALINK)

    body = content(card)["body"]
    assert len(body[0]["text"]) <= 310 and body[0]["text"].endswith("…")
    assert body[3]["text"].endswith("…") and len(body[3]["text"]) <= 2000
    assert body[-1]["text"] == escape_markdown(CUT_NOTE)
    assert message_problem(card) is None


def test_the_worst_case_card_fits_in_a_teams_message() -> None:
    """Backslashes double when escaped and again in JSON; an emoji is 12 bytes escaped."""
    heavy = "\\" * TEXT_LIMIT
    wide = "😀" * TEXT_LIMIT
    steps = [RemediationStep(action=heavy, command=wide) for _ in range(8)]
    analysis = make_analysis(root_cause=wide, impact=heavy, remediation_steps=steps)
    incident = make_incident(title=wide, source=wide, resource=heavy)
    card = adaptive_card(incident, analysis, PERMALINK)

    assert len(encode(card)) <= CARD_BUDGET < MAX_BODY
    assert len(json.dumps(card)) < MAX_BODY
    assert texts(card)[-1] == escape_markdown(CUT_NOTE)
    assert content(card)["actions"][0]["url"] == PERMALINK, "the button survives the cut"
    assert message_problem(card) is None


def test_steps_left_out_are_left_out_whole() -> None:
    """Escaping doubles `_` and `*`: eight such steps cannot all fit."""
    steps = [RemediationStep(action="_" * 1000, command="*" * 1500) for _ in range(8)]
    card = adaptive_card(make_incident(), make_analysis(remediation_steps=steps), PERMALINK)

    body = content(card)["body"]
    numbered = [b for b in body if b.get("text", "").startswith("**")]
    commands = [b for b in body if b.get("fontType") == "Monospace"]
    assert 0 < len(numbered) < 8 and len(commands) == len(numbered)
    assert body[-1]["text"] == escape_markdown(CUT_NOTE)


def test_the_resolved_card_says_by_whom_and_after_how_long() -> None:
    incident = make_incident(
        status=IncidentStatus.RESOLVED,
        resolved_at=T0 + timedelta(hours=1, minutes=5),
        resolved_by="U123ABC",
    )
    card = resolved_card(incident)

    assert message_problem(card) is None and "actions" not in content(card)
    header, line, facts = content(card)["body"]
    assert header["text"] == "RESOLVED · Database connection failed"
    assert header["color"] == "Good"
    assert line["text"] == "Resolved by U123ABC after 1h 5m."
    assert {"title": "Id", "value": "INC-7K2M9QXA"} in facts["facts"]


def test_an_alert_that_cleared_is_resolved_by_the_alert_clearing() -> None:
    incident = make_incident(status=IncidentStatus.RESOLVED, resolved_at=T0 + timedelta(seconds=42))
    assert "Resolved by the alert clearing after 42s." in texts(resolved_card(incident))
