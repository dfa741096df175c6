"""The evidence sent to Claude: the incident, the alert and its context as one JSON document,
redacted before it is serialised and bounded in size.

Redacting the structure rather than the serialised text keeps the patterns working on the
real values (a private key's newlines are newlines here, not `\\n` escapes).
"""

from __future__ import annotations

import json
from typing import Any

from analysis.context import AnalysisContext
from analysis.models import Analysis, ThreadMessage
from analysis.redaction import redact
from analysis.redaction_json import redact_json
from incidents.models import Alert, Incident, TimelineEvent

RAW_CHARS = 4000
MESSAGE_CHARS = 6000


def render(incident: Incident, alert: Alert, context: AnalysisContext, redact_ips: bool) -> str:
    # Redacted before it is cut: a token cut short may no longer look like a token.
    raw = json.dumps(redact_json(alert.raw, redact_ips=redact_ips), ensure_ascii=False, default=str)
    message = redact(alert.message, redact_ips=redact_ips)
    document: dict[str, Any] = {
        "incident": {
            "id": incident.id,
            "title": incident.title,
            "source": incident.source,
            "resource": incident.resource,
            "severity": incident.severity.value,
            "status": incident.status.value,
            "occurrences": incident.occurrences,
            "opened_at": incident.opened_at.isoformat(),
            "last_seen_at": incident.last_seen_at.isoformat(),
            "reopen_count": incident.reopen_count,
            "flapping": incident.flapping,
        },
        "alert": {
            "source": alert.source,
            "format": alert.parser,
            "title": alert.title,
            "message": message[:MESSAGE_CHARS],
            "severity": alert.severity.value,
            "status": alert.status.value,
            "resource": alert.resource,
            "labels": alert.labels,
            "occurred_at": alert.occurred_at.isoformat(),
            "raw_payload": raw if len(raw) <= RAW_CHARS else raw[:RAW_CHARS] + "…",
        },
        "context": {section.name: section.text for section in context.sections},
        "context_gaps": context.notes,
    }
    return json.dumps(redact_json(document, redact_ips=redact_ips), ensure_ascii=False, indent=1)


def render_followup(
    incident: Incident,
    analysis: Analysis | None,
    timeline: list[TimelineEvent],
    thread: list[ThreadMessage],
    redact_ips: bool,
) -> str:
    """What a follow-up answer may draw on: the incident, its analysis, its timeline and the
    thread so far (the question is its last message), redacted like the analysis evidence."""
    document: dict[str, Any] = {
        "incident": incident.model_dump(mode="json", exclude={"recent_reopens", "version"}),
        "analysis": analysis.model_dump(
            mode="json",
            include={"root_cause", "alternatives", "severity", "impact", "remediation_steps"},
        )
        if analysis
        else None,
        "timeline": [
            f"{event.at:%Y-%m-%d %H:%M:%S} {event.kind.value} by {event.actor}: {event.detail}"
            for event in timeline[-40:]
        ],
        "thread": [
            {"from": message.author, "text": message.text[:MESSAGE_CHARS]}
            for message in thread[-30:]
        ],
    }
    return json.dumps(redact_json(document, redact_ips=redact_ips), ensure_ascii=False, indent=1)
