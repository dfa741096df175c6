"""What each MCP tool returns: its output schema, published in `tools/list`.

The SDK turns a tool's return annotation into its `outputSchema` and validates every result
against it before it leaves, so these models are the contract a client can code against.
They carry copies of the store's records, never the records themselves: what an assistant
sees is chosen field by field, already redacted and cut to size by `views.py`.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from incidents.models import DeliveryStatus, IncidentStatus, Severity, TimelineKind


class IncidentSummary(BaseModel):
    """One incident as a list shows it."""

    id: str
    title: str
    severity: Severity
    status: IncidentStatus
    occurrences: int = Field(description="Alerts counted, repeats included.")
    opened_at: datetime
    last_seen_at: datetime
    owner: str | None = Field(description="Who acknowledged it; None while nobody has.")
    source: str
    flapping: bool


class IncidentList(BaseModel):
    incidents: list[IncidentSummary] = Field(description="Newest first.")
    truncated: bool = Field(description="More incidents matched than were returned.")


class RemediationView(BaseModel):
    action: str
    command: str | None = None


class EvidenceView(BaseModel):
    claim: str
    calls: list[int] = Field(description="The investigation's calls (`number`) that show it.")


class ToolCallView(BaseModel):
    number: int
    step: int
    tool: str
    arguments: str = Field(description="As typed: `name=value ...`, redacted.")
    result: str = Field(description="The result's first line, redacted.")
    is_error: bool


class InvestigationView(BaseModel):
    """How Claude investigated before it concluded (CRITICAL and HIGH incidents)."""

    steps: int
    stopped: str = Field(description="concluded, step limit, or budget.")
    calls: list[ToolCallView]
    cost_usd: float
    seconds: float


class AnalysisView(BaseModel):
    """The newest analysis of an incident: the hypothesis, and who made it at what cost."""

    analyzer: str = Field(description="'claude' or 'offline'.")
    model: str | None
    root_cause: str
    severity: Severity
    severity_justification: str
    impact: str
    remediation_steps: list[RemediationView]
    check_first: list[str]
    confidence: float
    evidence: list[EvidenceView] = Field(description="Each claim with the calls behind it.")
    investigation: InvestigationView | None = Field(description="None for a single call.")
    lessons: list[str] = Field(
        description="What the team confirmed about earlier incidents, as the analysis was "
        "given it (a hypothesis, not a conclusion)."
    )
    cached: bool
    cost_usd: float
    created_at: datetime


class TimelineEntry(BaseModel):
    at: datetime
    actor: str
    kind: TimelineKind
    detail: str


class DeliveryEntry(BaseModel):
    """One notification (PagerDuty, Jira, email, Teams, a reminder) and how it went."""

    target: str
    action: str
    status: DeliveryStatus
    attempts: int
    requested_by: str
    requested_at: datetime
    result: str | None
    last_error: str | None


class SlackMessage(BaseModel):
    channel: str
    ts: str
    permalink: str | None = Field(description="None when Slack is not reachable from here.")


class ConfirmedView(BaseModel):
    """What the team confirmed caused the incident and fixed it."""

    cause: str | None
    fix: str | None
    by: str
    at: datetime


class IncidentDetail(BaseModel):
    """An incident with everything the bot knows of it."""

    incident: IncidentSummary
    fingerprint: str
    resource: str | None
    template: str | None
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None
    reopen_count: int
    silenced_until: datetime | None
    confirmed: ConfirmedView | None = Field(description="None until the team says.")
    analysis: AnalysisView | None
    timeline: list[TimelineEntry] = Field(description="Oldest first; the newest are kept.")
    timeline_truncated: bool
    deliveries: list[DeliveryEntry]
    slack: SlackMessage | None = Field(description="None while the incident has no message.")


class AlertView(BaseModel):
    """One received alert, redacted."""

    incident_id: str | None
    source: str
    title: str
    message: str
    severity: Severity
    status: str
    resource: str | None
    occurred_at: datetime
    received_at: datetime
    labels: dict[str, str]


class AlertList(BaseModel):
    alerts: list[AlertView] = Field(description="Newest first.")
    truncated: bool = Field(description="More alerts matched, or the scan stopped at its bound.")


class Count(BaseModel):
    key: str
    title: str
    alerts: int


class StatsView(BaseModel):
    """The figures of `/incident stats` and the daily digest, for one period."""

    period: str
    since: datetime
    until: datetime
    opened: dict[str, int] = Field(description="Incidents opened, per severity.")
    resolved: dict[str, int] = Field(description="Incidents resolved, per severity.")
    mtta_seconds: float | None = Field(description="Mean time to acknowledge.")
    mttr_seconds: float | None = Field(description="Mean time to resolve.")
    alerts: int
    alerts_per_incident: float | None = Field(description="The noise reduction.")
    noisiest_problems: list[Count]
    noisiest_sources: list[Count]
    analyses: int
    cache_hit_rate: float | None
    claude_calls: int
    claude_cost_usd: float
    open_now: int


class AnalyzeResult(BaseModel):
    """What recording a pasted alert did, and the analysis of its incident."""

    outcome: str = Field(description="opened, repeated, reopened, ... as for any alert.")
    incident: IncidentSummary
    analysis: AnalysisView
    other_incidents: list[str] = Field(description="Further incidents the payload touched.")


class WriteResult(BaseModel):
    """The incident after an acknowledge, resolve or silence made through MCP."""

    incident: IncidentSummary
    done: str = Field(description="What happened, in words.")
    silenced_until: datetime | None = None
