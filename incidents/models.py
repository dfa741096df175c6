"""The domain records every layer shares: an alert as it arrived, and the incident it belongs to.

They live here, below ingest and above analysis, because both sides read them and neither
should own the other's vocabulary.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"

    @property
    def rank(self) -> int:
        """Higher is worse, so that `max(..., key=rank)` picks the most urgent."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Alert(BaseModel):
    """One normalized alert. `raw` is the part of the payload that produced it, kept verbatim.

    `fingerprint` names the problem, and so the incident. `member` names the alert within that
    problem when the sender fires and resolves several at once (one Alertmanager entry of a
    group): the incident then resolves when its last firing member does.
    """

    model_config = ConfigDict(frozen=True)

    source: str
    parser: str
    title: str
    message: str = ""
    severity: Severity
    status: AlertStatus = AlertStatus.FIRING
    resource: str | None = None
    occurred_at: datetime
    received_at: datetime
    labels: dict[str, str] = Field(default_factory=dict)
    fingerprint: str
    template: str | None = None
    """The template the fingerprint keys on, when the alert's text is its identity (a log line,
    plain text): `Receiving block <*> src: <*> dest: <*>`. None for alarms and labelled alerts,
    which have an identity of their own."""
    member: str | None = None
    dedup_key: str | None = None
    raw: Any = None


class IncidentStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


CONFIRMED_TEXT_MAX = 1000


class ConfirmedCause(BaseModel):
    """What the team confirmed caused an incident and what fixed it: the memory that later
    analyses of the same or a similar problem are given, as a hypothesis to check."""

    cause: str | None = Field(default=None, max_length=CONFIRMED_TEXT_MAX)
    fix: str | None = Field(default=None, max_length=CONFIRMED_TEXT_MAX)
    by: str
    at: datetime


class Incident(BaseModel):
    """An incident groups every alert of one fingerprint from its opening to its resolution.

    `version` is the optimistic-concurrency counter: every write names the version it read,
    so that two writers never silently overwrite each other (SQLite today, DynamoDB later).
    """

    id: str
    fingerprint: str
    title: str
    source: str
    resource: str | None = None
    template: str | None = None
    """The template its alerts are grouped by, when their text is their identity (log lines,
    plain text): what the message shows, so that an on-call engineer sees why lines were
    grouped."""
    severity: Severity
    status: IncidentStatus = IncidentStatus.OPEN
    opened_at: datetime
    last_seen_at: datetime
    occurrences: int = 1
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    reopen_count: int = 0
    recent_reopens: list[datetime] = Field(default_factory=list)
    flapping: bool = False
    firing_members: list[str] = Field(default_factory=list)
    confirmed: ConfirmedCause | None = None
    version: int = 0

    @property
    def is_active(self) -> bool:
        return self.status is not IncidentStatus.RESOLVED


class TimelineKind(StrEnum):
    OPENED = "opened"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    FLAPPING = "flapping"
    SEVERITY_RAISED = "severity_raised"
    SILENCED = "silenced"
    CONFIRMED = "confirmed"


class TimelineEvent(BaseModel):
    """A change of an incident's state: who did what, when. Repeats are occurrences, not events."""

    incident_id: str
    at: datetime
    actor: str
    kind: TimelineKind
    detail: str = ""


class Occurrence(BaseModel):
    """One recorded alert. `key` is its idempotency key, so a redelivered alert counts once."""

    key: str
    incident_id: str | None
    alert: Alert


class DeadLetter(BaseModel):
    """A payload that produced no alert, kept whole with the reason, so nothing is ever lost."""

    id: str
    received_at: datetime
    origin: str
    reason: str
    size: int
    payload: bytes


class Silence(BaseModel):
    """A muted fingerprint: its alerts are still recorded and counted, but not posted."""

    fingerprint: str
    until: datetime
    by: str
    at: datetime


class MessageRef(BaseModel):
    """Where an incident's chat message lives, and which incident version it shows.

    Kept beside the incident (keyed by its id) rather than inside it: writing it must not
    bump the incident's version, or every post would race with the alerts it reports."""

    incident_id: str
    channel: str
    ts: str
    synced_version: int


class TicketRef(BaseModel):
    """An incident's ticket: claimed first (no key yet), then filled in once created.

    The claim is what makes two clicks, or two replicas, create one ticket: only the writer
    whose claim went in creates it; a claim left by a process that died is taken over once
    it is older than the store's claim lease."""

    incident_id: str
    claimed_by: str
    claimed_at: datetime
    key: str | None = None
    url: str | None = None


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Delivery(BaseModel):
    """One outbound notification (a Jira ticket or comment, an email, a page, a Teams card),
    kept until it is sent or given up, so that a restart or a replica's death retries it
    rather than loses it, and `/incident show` can say what went where.

    `key` is its idempotency key (`<incident>:<target>:<action>[:<nonce>]`): asking twice for
    the same delivery records it once. `request` is what the sender needs to do it again."""

    key: str
    incident_id: str
    target: str
    action: str
    requested_by: str
    requested_at: datetime
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    next_attempt_at: datetime
    last_error: str | None = None
    result: str | None = None
    request: dict[str, Any] = Field(default_factory=dict)
