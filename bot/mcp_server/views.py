"""From the store's records to what leaves the bot over MCP: redacted, and bounded in size.

An assistant's context is somebody else's process, and its transcript may be kept, shared or
sent to a model: so every text that came from an alert (or from an analysis or a timeline that
quotes one) goes through the redaction that guards the Claude path (`analysis.redaction`)
before it is put in a result, and every text and list is cut to a fixed bound, so that one
incident with a 1 MB log line, or ten thousand timeline events, cannot flood a client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from analysis.lessons import lesson_line
from analysis.models import Analysis
from analysis.redaction_json import redact_many
from blocks.investigation import call_arguments
from bot.mcp_server.schemas import (
    AlertView,
    AnalysisView,
    ConfirmedView,
    DeliveryEntry,
    EvidenceView,
    IncidentDetail,
    IncidentSummary,
    InvestigationView,
    RemediationView,
    SlackMessage,
    TimelineEntry,
    ToolCallView,
)
from incidents.models import Delivery, Incident, MessageRef, Occurrence, TimelineEvent

TEXT_MAX = 2000
"""Characters of any one text: a root cause, an alert's message, a timeline detail."""
TITLE_MAX = 300
LABELS_MAX = 20
"""Labels shown per alert; more are dropped (their count is kept as `…more_labels`)."""
TIMELINE_MAX = 50
CALLS_MAX = 50
DELIVERIES_MAX = 20
_CUT = "… [cut]"


def clip(text: str, limit: int = TEXT_MAX) -> str:
    """`text`, or its first `limit` characters with a mark saying it was cut."""
    return text if len(text) <= limit else text[: limit - len(_CUT)] + _CUT


@dataclass(frozen=True)
class Redactor:
    """`redact_many` with the bot's `REDACT_IPS` setting: one call for all of a result's
    texts, which costs much less than one call each."""

    redact_ips: bool = False

    def texts(self, texts: Sequence[str]) -> list[str]:
        return redact_many(list(texts), redact_ips=self.redact_ips)


def summaries(incidents: Sequence[Incident], redactor: Redactor) -> list[IncidentSummary]:
    """Titles and sources come from alerts, so they are redacted like the alerts, all in one
    call."""
    texts = redactor.texts([text for i in incidents for text in (i.title, i.source)])
    return [
        _summary(incident, texts[2 * n], texts[2 * n + 1]) for n, incident in enumerate(incidents)
    ]


def summary(incident: Incident, redactor: Redactor) -> IncidentSummary:
    return summaries([incident], redactor)[0]


def _summary(incident: Incident, title: str, source: str) -> IncidentSummary:
    return IncidentSummary(
        id=incident.id,
        title=clip(title, TITLE_MAX),
        severity=incident.severity,
        status=incident.status,
        occurrences=incident.occurrences,
        opened_at=incident.opened_at,
        last_seen_at=incident.last_seen_at,
        owner=incident.acknowledged_by,
        source=clip(source, TITLE_MAX),
        flapping=incident.flapping,
    )


def analysis_view(analysis: Analysis, redactor: Redactor) -> AnalysisView:
    """An offline analysis quotes the alert as it came, so its texts are redacted as well."""
    steps = analysis.remediation_steps
    texts = [
        analysis.root_cause,
        analysis.severity_justification,
        analysis.impact,
        *(step.action for step in steps),
        *(step.command or "" for step in steps),
        *analysis.check_first,
    ]
    clean = iter(redactor.texts(texts))
    root_cause, justification, impact = next(clean), next(clean), next(clean)
    actions = [next(clean) for _ in steps]
    commands = [next(clean) for _ in steps]
    return AnalysisView(
        analyzer=analysis.analyzer.value,
        model=analysis.model,
        root_cause=clip(root_cause),
        severity=analysis.severity,
        severity_justification=clip(justification),
        impact=clip(impact),
        remediation_steps=[
            RemediationView(action=clip(action), command=clip(command) if command else None)
            for action, command in zip(actions, commands, strict=True)
        ],
        check_first=[clip(item) for item in clean],
        confidence=analysis.confidence,
        **the_work(analysis, redactor),
        cached=analysis.cached,
        cost_usd=analysis.cost_usd,
        created_at=analysis.created_at,
    )


def the_work(analysis: Analysis, redactor: Redactor) -> dict[str, Any]:
    """The evidence, the investigation and the lessons of an analysis, redacted again (the
    loop redacted the trace with the settings of its day) and bounded."""
    trace = analysis.investigation
    calls = trace.calls[:CALLS_MAX] if trace else []
    lessons = [lesson_line(lesson, analysis.created_at) for lesson in analysis.lessons]
    texts = iter(
        redactor.texts(
            [
                *(item.claim for item in analysis.evidence),
                *(call_arguments(call.arguments) for call in calls),
                *(call.result for call in calls),
                *lessons,
            ]
        )
    )
    evidence = [EvidenceView(claim=clip(next(texts)), calls=e.calls) for e in analysis.evidence]
    arguments = [clip(next(texts), TITLE_MAX) for _ in calls]
    results = [clip(next(texts), TITLE_MAX) for _ in calls]
    investigation = (
        InvestigationView(
            steps=trace.steps,
            stopped=trace.stopped,
            calls=[
                ToolCallView(
                    number=c.number,
                    step=c.step,
                    tool=c.tool,
                    arguments=a,
                    result=r,
                    is_error=c.is_error,
                )
                for c, a, r in zip(calls, arguments, results, strict=True)
            ],  # fmt: skip
            cost_usd=trace.cost_usd,
            seconds=trace.seconds,
        )
        if trace
        else None
    )
    return {
        "evidence": evidence,
        "investigation": investigation,
        "lessons": [clip(next(texts)) for _ in lessons],
    }


def confirmed_view(incident: Incident, redactor: Redactor) -> ConfirmedView | None:
    confirmed = incident.confirmed
    if confirmed is None:
        return None
    cause, fix = redactor.texts([confirmed.cause or "", confirmed.fix or ""])
    return ConfirmedView(cause=cause or None, fix=fix or None, by=confirmed.by, at=confirmed.at)


@dataclass(frozen=True)
class IncidentRecords:
    """Everything the store holds of one incident, read before it is shaped."""

    incident: Incident
    analysis: Analysis | None
    timeline: Sequence[TimelineEvent]
    deliveries: Sequence[Delivery]
    message: MessageRef | None
    permalink: str | None
    silenced_until: datetime | None


def incident_detail(records: IncidentRecords, redactor: Redactor) -> IncidentDetail:
    incident = records.incident
    events = sorted(records.timeline, key=lambda event: event.at)
    shown = events[-TIMELINE_MAX:]
    details = redactor.texts([event.detail for event in shown])
    sent = list(records.deliveries)[-DELIVERIES_MAX:]
    errors = redactor.texts([delivery.last_error or "" for delivery in sent])
    resource, template = redactor.texts([incident.resource or "", incident.template or ""])
    ref = records.message
    return IncidentDetail(
        incident=summary(incident, redactor),
        fingerprint=incident.fingerprint,
        resource=clip(resource, TITLE_MAX) or None,
        template=clip(template) or None,
        acknowledged_at=incident.acknowledged_at,
        resolved_at=incident.resolved_at,
        resolved_by=incident.resolved_by,
        reopen_count=incident.reopen_count,
        silenced_until=records.silenced_until,
        confirmed=confirmed_view(incident, redactor),
        analysis=analysis_view(records.analysis, redactor) if records.analysis else None,
        timeline=[
            TimelineEntry(at=e.at, actor=e.actor, kind=e.kind, detail=clip(d))
            for e, d in zip(shown, details, strict=True)
        ],
        timeline_truncated=len(events) > len(shown),
        deliveries=[_delivery(d, error) for d, error in zip(sent, errors, strict=True)],
        slack=SlackMessage(channel=ref.channel, ts=ref.ts, permalink=records.permalink)
        if ref
        else None,
    )


def _delivery(delivery: Delivery, error: str) -> DeliveryEntry:
    return DeliveryEntry(
        target=delivery.target,
        action=delivery.action,
        status=delivery.status,
        attempts=delivery.attempts,
        requested_by=delivery.requested_by,
        requested_at=delivery.requested_at,
        result=clip(delivery.result, TITLE_MAX) if delivery.result else None,
        last_error=clip(error) or None,
    )


def alert_views(occurrences: Sequence[Occurrence], redactor: Redactor) -> list[AlertView]:
    """The alerts' texts and label values, redacted together in one call."""
    texts: list[str] = []
    for occurrence in occurrences:
        alert = occurrence.alert
        texts += [alert.source, alert.title, alert.message, alert.resource or ""]
        texts += [f"{key}={value}" for key, value in list(alert.labels.items())[:LABELS_MAX]]
    clean = iter(redactor.texts(texts))
    views = []
    for occurrence in occurrences:
        alert = occurrence.alert
        source, title, message, resource = next(clean), next(clean), next(clean), next(clean)
        labels: dict[str, str] = {}
        for _ in range(min(len(alert.labels), LABELS_MAX)):
            key, _, value = next(clean).partition("=")
            labels[key] = value
        if len(alert.labels) > LABELS_MAX:
            labels["…more_labels"] = str(len(alert.labels) - LABELS_MAX)
        views.append(
            AlertView(
                incident_id=occurrence.incident_id,
                source=clip(source, TITLE_MAX),
                title=clip(title, TITLE_MAX),
                message=clip(message),
                severity=alert.severity,
                status=alert.status.value,
                resource=clip(resource, TITLE_MAX) or None,
                occurred_at=alert.occurred_at,
                received_at=alert.received_at,
                labels={clip(k, 100): clip(v, 500) for k, v in labels.items()},
            )
        )
    return views
