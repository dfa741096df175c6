"""Email an incident: one message whose plain-text and HTML parts say the same thing (the
sender's note, the incident's facts, the analysis, the timeline, the Slack link), one MIME
message that both transports (`notify.email_transport`: SMTP submission or SES) send as it is.

Alert, model and user text reaches the HTML only through `html.escape`: an alert titled
`<a href=...>` reads as exactly that, and the only link is the Slack permalink, and only an
https one.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from urllib.parse import urlsplit

from analysis.models import Analysis
from incidents.models import Incident, TimelineEvent

SUBJECT_LIMIT = 200
TIMELINE_LIMIT = 50
# C0 and C1 controls other than tab and newline: invisible in a mail client at best.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")

_STYLE_BODY = (
    "margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;font-size:14px;"
    "line-height:1.45;color:#1d1c1d;background:#ffffff"
)
_STYLE_H2 = "margin:0 0 12px;font-size:18px"
_STYLE_H3 = "margin:20px 0 6px;font-size:15px;border-bottom:1px solid #dddddd"
_STYLE_P = "margin:0 0 8px"
_STYLE_CELL = "padding:2px 14px 2px 0;text-align:left;vertical-align:top"
_STYLE_PRE = (
    "margin:6px 0 10px;padding:8px;background:#f4f4f4;border-radius:4px;"
    "font-family:Menlo,Consolas,monospace;font-size:13px;white-space:pre-wrap;"
    "word-break:break-all"
)


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class _Document:
    """What the email says, as clean text, before either part renders it."""

    heading: str
    note: tuple[str, str] | None
    facts: list[tuple[str, str]]
    findings: list[tuple[str, str]]
    steps: list[tuple[str, str | None]]
    events: list[tuple[str, str, str, str]]
    hidden_events: int
    link: str | None


def compose(
    incident: Incident,
    analysis: Analysis | None,
    timeline: Sequence[TimelineEvent],
    permalink: str | None,
    note: str | None,
    sent_by: str,
) -> EmailContent:
    """The subject and both parts, rendered from one `_Document` so that the two parts can
    never say different things. `sent_by` is how the note's author is shown (a Slack name)."""
    document = _document(incident, analysis, timeline, permalink, note, sent_by)
    subject = _cut(document.heading, SUBJECT_LIMIT)
    return EmailContent(
        subject=subject, text=_render_text(document), html=_render_html(document, subject)
    )


def build_message(
    content: EmailContent,
    sender: str,
    recipients: Sequence[str],
    message_id_domain: str | None = None,
) -> EmailMessage:
    """multipart/alternative with the plain text first: a client shows the last part it can
    render, so HTML wins where it can and the text is the fallback.

    Both parts are quoted-printable: SMTP servers without 8BITMIME, and SES, want 7-bit
    bodies, and quoted-printable keeps every line under SMTP's 998-character limit. The
    Message-ID's domain is the sender's unless given: `make_msgid` would otherwise look up
    this host's FQDN, which can stall on a container's DNS."""
    if not recipients:
        raise ValueError("an email needs at least one recipient")
    domain = message_id_domain or parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = content.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(content.text, charset="utf-8", cte="quoted-printable")
    message.add_alternative(content.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message


def _document(
    incident: Incident,
    analysis: Analysis | None,
    timeline: Sequence[TimelineEvent],
    permalink: str | None,
    note: str | None,
    sent_by: str,
) -> _Document:
    said = _clean(note or "").strip()
    findings: list[tuple[str, str]]
    steps: list[tuple[str, str | None]] = []
    if analysis is None:
        findings = [("Analysis", "No analysis is available for this incident yet.")]
    else:
        findings = [("Root cause", _clean(analysis.root_cause).strip())]
        if analysis.severity_justification.strip():
            justification = _clean(analysis.severity_justification).strip()
            findings.append((f"Why {analysis.severity}", justification))
        findings.append(("Impact", _clean(analysis.impact).strip()))
        steps = [
            (_clean(step.action).strip(), _clean(step.command or "").strip() or None)
            for step in analysis.remediation_steps
        ]
    shown = timeline[-TIMELINE_LIMIT:]
    return _Document(
        heading=_flat(_clean(f"[{incident.severity}] {incident.id}: {incident.title}")),
        note=(_flat(_clean(sent_by)) or "someone", said) if said else None,
        facts=[
            ("Id", _flat(_clean(incident.id))),
            ("Status", incident.status.value),
            ("Severity", incident.severity.value),
            ("Source", _flat(_clean(incident.source))),
            ("Resource", _flat(_clean(incident.resource or "")) or "-"),
            ("First seen", _when(incident.opened_at)),
            ("Last seen", _when(incident.last_seen_at)),
            ("Occurrences", str(incident.occurrences)),
        ],
        findings=findings,
        steps=steps,
        events=[
            (_when(e.at), e.kind.value, _flat(_clean(e.actor)), _flat(_clean(e.detail)))
            for e in shown
        ],
        hidden_events=len(timeline) - len(shown),
        link=_https(permalink),
    )


def _render_text(document: _Document) -> str:
    lines = [document.heading, ""]

    def heading(title: str) -> None:
        lines.extend([title, "-" * len(title)])

    if document.note:
        who, said = document.note
        heading(f"Note from {who}")
        lines.extend([said, ""])
    heading("Incident")
    width = max(len(label) for label, _ in document.facts) + 2
    lines.extend(f"{label + ':':<{width}}{value}" for label, value in document.facts)
    lines.append("")
    for title, paragraph in document.findings:
        heading(title)
        lines.extend([paragraph, ""])
    if document.steps:
        heading("Remediation")
        for number, (action, command) in enumerate(document.steps, start=1):
            lines.append(f"{number}. {_indent(action, '   ')}")
            if command:
                lines.append(f"   $ {_indent(command, '     ')}")
        lines.append("")
    if document.events:
        heading("Timeline")
        if document.hidden_events:
            lines.append(f"({document.hidden_events} earlier events not shown)")
        for at, kind, actor, detail in document.events:
            lines.append(f"{at}  {kind} by {actor}" + (f": {detail}" if detail else ""))
        lines.append("")
    if document.link:
        lines.append(f"Slack thread: {document.link}")
    return "\n".join(lines).rstrip() + "\n"


def _render_html(document: _Document, subject: str) -> str:
    out = [
        '<!DOCTYPE html><html><head><meta charset="utf-8">',
        f"<title>{_h(subject)}</title></head>",
        f'<body style="{_STYLE_BODY}">',
        f'<h2 style="{_STYLE_H2}">{_h(document.heading)}</h2>',
    ]

    def heading(title: str) -> None:
        out.append(f'<h3 style="{_STYLE_H3}">{_h(title)}</h3>')

    if document.note:
        who, said = document.note
        heading(f"Note from {who}")
        out.append(f'<p style="{_STYLE_P}">{_h(said)}</p>')
    heading("Incident")
    out.append('<table style="border-collapse:collapse">')
    out.extend(
        f'<tr><th style="{_STYLE_CELL}">{_h(label)}</th>'
        f'<td style="{_STYLE_CELL}">{_h(value)}</td></tr>'
        for label, value in document.facts
    )
    out.append("</table>")
    for title, paragraph in document.findings:
        heading(title)
        out.append(f'<p style="{_STYLE_P}">{_h(paragraph)}</p>')
    if document.steps:
        heading("Remediation")
        out.append('<ol style="margin:0;padding-left:22px">')
        for action, command in document.steps:
            code = f'<pre style="{_STYLE_PRE}"><code>{_h(command, br=False)}</code></pre>'
            out.append(f"<li>{_h(action)}{code if command else ''}</li>")
        out.append("</ol>")
    if document.events:
        heading("Timeline")
        if document.hidden_events:
            out.append(
                f'<p style="{_STYLE_P}">({document.hidden_events} earlier events not shown)</p>'
            )
        out.append('<table style="border-collapse:collapse">')
        out.extend(
            f'<tr><td style="{_STYLE_CELL};white-space:nowrap">{_h(at)}</td>'
            f'<td style="{_STYLE_CELL}">{_h(kind)}</td>'
            f'<td style="{_STYLE_CELL}">{_h(actor)}</td>'
            f'<td style="{_STYLE_CELL}">{_h(detail)}</td></tr>'
            for at, kind, actor, detail in document.events
        )
        out.append("</table>")
    if document.link:
        out.append(
            f'<p style="margin:20px 0 0"><a href="{_h(document.link, br=False)}">'
            "Open the incident thread in Slack</a></p>"
        )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _h(text: str | None, *, br: bool = True) -> str:
    """Escaped for HTML text and attribute values alike (quotes too); line breaks kept as
    `<br>` outside `<pre>`, where a client that ignores CSS would run lines together."""
    escaped = html.escape(text or "", quote=True)
    return escaped.replace("\n", "<br>\n") if br else escaped


def _https(url: str | None) -> str | None:
    """`url` when it is an https URL with a host and nothing that could break out of an
    attribute or a line; None for anything else (http, javascript:, a bare word)."""
    if not url or any(c.isspace() or not c.isprintable() for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme == "https" and parts.netloc else None


def _when(moment: datetime) -> str:
    utc = moment if moment.tzinfo is None else moment.astimezone(UTC)
    return f"{utc:%Y-%m-%d %H:%M:%S} UTC"


def _clean(text: str) -> str:
    """Line ends as `\\n` and no control characters, so both parts show the same text."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _indent(text: str, prefix: str) -> str:
    """Continuation lines of a multi-line step under its first line."""
    return text.replace("\n", "\n" + prefix)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
