"""What an incident email says: both parts carry the same facts, analysis, timeline and link;
alert, model and user text can only ever read as text in the HTML; the subject is one line."""

from __future__ import annotations

import html
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

from analysis.models import Analysis, RemediationStep
from incidents.models import Incident, IncidentStatus, Severity, TimelineEvent, TimelineKind
from notify.email import SUBJECT_LIMIT, TIMELINE_LIMIT, EmailContent, build_message, compose
from tests import samples
from tests.conftest import T0
from tests.samples import PERMALINK

HOSTILE = '<!channel> <script>alert(1)</script> <a href="http://evil">x</a>'
# What the HTML may contain: the layout, and nothing an alert could have brought.
LAYOUT_TAGS = {
    "html", "head", "meta", "title", "body", "h2", "h3", "p", "br", "table", "tr", "th", "td",
    "ol", "li", "pre", "code", "a",
}  # fmt: skip


def make_incident(**changes: Any) -> Incident:
    defaults = {"severity": Severity.CRITICAL, "status": IncidentStatus.ACKNOWLEDGED}
    return samples.make_incident(**{**defaults, **changes})


def make_analysis(**changes: Any) -> Analysis:
    return samples.make_analysis(**{"severity": Severity.CRITICAL, **changes})


def make_timeline(count: int = 2, **changes: Any) -> list[TimelineEvent]:
    kinds = [TimelineKind.OPENED, TimelineKind.ACKNOWLEDGED]
    events = [
        TimelineEvent(
            incident_id="INC-7K2M9",
            at=T0 + timedelta(minutes=number),
            actor="system" if number == 0 else "U024BE7LH",
            kind=kinds[min(number, 1)],
            detail="" if number == 0 else f"taken by the on-call engineer ({number})",
        )
        for number in range(count)
    ]
    return [event.model_copy(update=changes) for event in events]


def email(
    incident: Incident | None = None,
    analysis: Analysis | None = None,
    timeline: list[TimelineEvent] | None = None,
    permalink: str | None = PERMALINK,
    note: str | None = "Looping in the DB team.",
    sent_by: str = "ann",
) -> EmailContent:
    return compose(
        incident or make_incident(),
        make_analysis() if analysis is None else analysis,
        make_timeline() if timeline is None else timeline,
        permalink,
        note,
        sent_by,
    )


class _Tags(HTMLParser):
    """Every start tag of a document with its attributes: what a mail client would build."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(document: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(document)
    parser.close()
    return parser.tags


def test_both_parts_carry_the_facts_the_analysis_the_timeline_and_the_link() -> None:
    content = email()
    analysis = make_analysis()
    said = [
        "Note from ann",
        "Looping in the DB team.",
        "INC-7K2M9",
        "acknowledged",
        "CRITICAL",
        "cloudwatch",
        "db-prod-1",
        "2026-11-24 08:00:00 UTC",
        "2026-11-24 08:07:00 UTC",
        "51",
        analysis.root_cause,
        analysis.severity_justification,
        analysis.impact,
        *(step.action for step in analysis.remediation_steps),
        *(step.command for step in analysis.remediation_steps if step.command),
        "opened",
        "system",
        "U024BE7LH",
        "taken by the on-call engineer (1)",
        PERMALINK,
    ]
    for part in (content.text, html.unescape(content.html)):
        missing = [text for text in said if text not in part]
        assert missing == []
    assert content.text.index("1. List the sessions") < content.text.index("2. Restart")
    assert "   $ kubectl rollout restart deploy/orders-api" in content.text
    command = html.escape("psql -c 'select count(*) from pg_stat_activity'")
    assert "<pre style=" in content.html and f"<code>{command}</code></pre>" in content.html
    assert [tag for tag, _ in tags_of(content.html)].count("li") == 3


def test_hostile_text_is_escaped_everywhere_and_the_permalink_is_the_only_link() -> None:
    hostile_step = RemediationStep(action=HOSTILE, command=f"echo '{HOSTILE}'")
    content = email(
        make_incident(title=HOSTILE, source=HOSTILE, resource=HOSTILE),
        make_analysis(
            root_cause=HOSTILE,
            severity_justification=HOSTILE,
            impact=HOSTILE,
            remediation_steps=[hostile_step],
        ),
        make_timeline(actor=HOSTILE, detail=HOSTILE),
        note=HOSTILE,
        sent_by=HOSTILE,
    )

    tags = tags_of(content.html)
    assert {tag for tag, _ in tags} <= LAYOUT_TAGS
    assert [attrs for tag, attrs in tags if tag == "a"] == [{"href": PERMALINK}]
    assert content.html.count("<a ") == 1
    assert "<script>" not in content.html and "<!channel>" not in content.html
    assert 'href="http://evil"' not in content.html
    assert html.escape(HOSTILE) in content.html
    # The text part is text: it says what the alert said, verbatim.
    assert f"Note from {HOSTILE}" in content.text and HOSTILE in content.text.splitlines()


def test_only_an_https_permalink_becomes_a_link() -> None:
    for unsafe in (
        "http://example.slack.com/archives/C0123/p1",
        "javascript:alert(1)",
        'https://example.slack.com/" onclick="alert(1)',
        "//example.slack.com/archives/C0123",
        "",
        None,
    ):
        content = email(permalink=unsafe)
        assert "<a " not in content.html and "Slack thread" not in content.text, unsafe


def test_the_subject_is_one_line_within_the_limit() -> None:
    content = email(make_incident(title="Disk\nfull\r\n  on\tdb-1\x00 "))
    assert content.subject == "[CRITICAL] INC-7K2M9: Disk full on db-1"

    long = email(make_incident(title="word " * 100)).subject
    assert len(long) == SUBJECT_LIMIT and long.endswith("…") and "\n" not in long
    message = build_message(email(make_incident(title="a\nBcc: x@evil")), "b@x.io", ["c@x.io"])
    assert message["Subject"] == "[CRITICAL] INC-7K2M9: a Bcc: x@evil" and message["Bcc"] is None


def test_without_an_analysis_the_email_says_so() -> None:
    content = compose(make_incident(), None, [], None, None, "ann")
    for part in (content.text, content.html):
        assert "No analysis is available for this incident yet." in part
        assert "Root cause" not in part and "Remediation" not in part
        assert "Timeline" not in part and "Note from" not in part
    assert "<ol" not in content.html and "<a " not in content.html


def test_a_long_timeline_shows_its_latest_events_and_says_how_many_it_left_out() -> None:
    content = email(timeline=make_timeline(TIMELINE_LIMIT + 5))
    for part in (content.text, content.html):
        assert "(5 earlier events not shown)" in part
        assert f"({TIMELINE_LIMIT + 4})" in part and "(4)" not in part


def test_the_message_is_multipart_alternative_text_first_in_utf8() -> None:
    content = email(make_incident(title="Latency ↑ on café-api"))
    message = build_message(
        content, "Incident Bot <bot@alerts.example.com>", ["ann@example.com", "bo@example.com"]
    )

    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    assert {part.get_content_charset() for part in parts} == {"utf-8"}
    assert {str(part["Content-Transfer-Encoding"]) for part in parts} == {"quoted-printable"}
    assert [part.get_content() for part in parts] == [content.text, content.html]
    assert message["From"] == "Incident Bot <bot@alerts.example.com>"
    assert message["To"] == "ann@example.com, bo@example.com"
    assert message["Subject"] == content.subject and message["Date"] is not None
    assert str(message["Message-ID"]).endswith("@alerts.example.com>")
    own = build_message(content, "bot@example.com", ["a@example.com"], "mail.example.org")
    assert str(own["Message-ID"]).endswith("@mail.example.org>")
    # 7-bit on the wire, whatever the alert said: SES and servers without 8BITMIME want it.
    assert max(message.as_bytes()) < 128
