"""The changes the lifecycle makes to an incident, each planned as one conditional write:
pure functions of the incident as read, the alert or person behind the change, and now.

`IncidentService` (lifecycle.py) decides which change an alert or a click makes, and writes
it; what each change sets and which timeline events it adds are here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from incidents.models import (
    CONFIRMED_TEXT_MAX,
    Alert,
    ConfirmedCause,
    Incident,
    IncidentStatus,
    TimelineEvent,
    TimelineKind,
)
from incidents.store import IncidentWrite

MAX_TRACKED_MEMBERS = 500
CONFIRMED_DETAIL_MAX = 500


def opening(alert: Alert, head: Incident | None, now: datetime, incident_id: str) -> IncidentWrite:
    """A new incident for the alert; its head claim is conditioned on `head` being still the
    fingerprint's newest incident."""
    incident = Incident(
        id=incident_id,
        fingerprint=alert.fingerprint,
        title=alert.title,
        source=alert.source,
        resource=alert.resource,
        template=alert.template,
        severity=alert.severity,
        opened_at=now,
        last_seen_at=now,
        firing_members=[alert.member] if alert.member else [],
        version=1,
    )
    event = TimelineEvent(
        incident_id=incident.id,
        at=now,
        actor=f"alert:{alert.source}",
        kind=TimelineKind.OPENED,
        detail=f"{alert.severity.value}: {alert.title}",
    )
    return IncidentWrite(
        incident=incident,
        expected_version=None,
        events=(event,),
        claims_head=True,
        previous_head=head.id if head else None,
    )


def repeat(alert: Alert, head: Incident, now: datetime) -> IncidentWrite:
    """One more alert of an active incident: counted, and its severity raised if worse."""
    events: list[TimelineEvent] = []
    severity = head.severity
    if alert.severity.rank > head.severity.rank:
        severity = alert.severity
        events.append(
            TimelineEvent(
                incident_id=head.id,
                at=now,
                actor=f"alert:{alert.source}",
                kind=TimelineKind.SEVERITY_RAISED,
                detail=f"{head.severity.value} -> {severity.value}",
            )
        )
    incident = head.model_copy(
        update={
            "occurrences": head.occurrences + 1,
            "last_seen_at": max(head.last_seen_at, now),
            "severity": severity,
            "firing_members": _with_member(head.firing_members, alert.member),
            "version": head.version + 1,
        }
    )
    return IncidentWrite(incident=incident, expected_version=head.version, events=events)


def reopening(
    alert: Alert, head: Incident, now: datetime, *, flap_threshold: int, flap_window: timedelta
) -> IncidentWrite:
    """A recurrence of a resolved incident: open again, flapping once it reopened
    `flap_threshold` times within `flap_window`."""
    recent = [t for t in head.recent_reopens if now - t <= flap_window]
    recent.append(now)
    recent = recent[-flap_threshold:]
    flapping = head.flapping or len(recent) >= flap_threshold
    events = [
        TimelineEvent(
            incident_id=head.id,
            at=now,
            actor=f"alert:{alert.source}",
            kind=TimelineKind.REOPENED,
            detail=f"recurred {short_duration(now - head.resolved_at)} after resolution"
            if head.resolved_at
            else "recurred",
        )
    ]
    if flapping and not head.flapping:
        events.append(
            TimelineEvent(
                incident_id=head.id,
                at=now,
                actor="bot",
                kind=TimelineKind.FLAPPING,
                detail=f"reopened {len(recent)} times within {short_duration(flap_window)}",
            )
        )
    incident = head.model_copy(
        update={
            "status": IncidentStatus.OPEN,
            "occurrences": head.occurrences + 1,
            "last_seen_at": now,
            "severity": max(head.severity, alert.severity, key=lambda s: s.rank),
            "acknowledged_at": None,
            "acknowledged_by": None,
            "resolved_at": None,
            "resolved_by": None,
            "reopen_count": head.reopen_count + 1,
            "recent_reopens": recent,
            "flapping": flapping,
            "firing_members": [alert.member] if alert.member else [],
            "version": head.version + 1,
        }
    )
    return IncidentWrite(incident=incident, expected_version=head.version, events=events)


def resolution(head: Incident, actor: str, now: datetime, note: str | None = None) -> IncidentWrite:
    """The incident resolved by `actor` (a person, or the alert's own resolution); `note`,
    what the person said of it, is kept in the timeline after the duration."""
    incident = head.model_copy(
        update={
            "status": IncidentStatus.RESOLVED,
            "resolved_at": now,
            "resolved_by": actor,
            "firing_members": [],
            "version": head.version + 1,
        }
    )
    event = TimelineEvent(
        incident_id=head.id,
        at=now,
        actor=actor,
        kind=TimelineKind.RESOLVED,
        detail=f"resolved after {short_duration(now - head.opened_at)}"
        + (f": {note}" if note else ""),
    )
    return IncidentWrite(incident=incident, expected_version=head.version, events=(event,))


def confirmation(
    head: Incident,
    actor: str,
    now: datetime,
    cause: str | None,
    fix: str | None,
    *,
    replace: bool = False,
) -> IncidentWrite:
    """The cause and the fix the team confirmed, each replacing an earlier one when given
    (a `fix:` reply after a `cause:` reply keeps the cause); with `replace` (the modal, which
    shows both and may have had one erased), exactly as given. The last to confirm is named."""
    cause = _confirmed_text(cause)
    fix = _confirmed_text(fix)
    if cause is None and fix is None:
        raise ValueError("a confirmation needs a cause, a fix, or both")
    earlier = None if replace else head.confirmed
    confirmed = ConfirmedCause(
        cause=cause if cause is not None else earlier.cause if earlier else None,
        fix=fix if fix is not None else earlier.fix if earlier else None,
        by=actor,
        at=now,
    )
    said = [f"cause: {cause}" if cause else "", f"fix: {fix}" if fix else ""]
    event = TimelineEvent(
        incident_id=head.id,
        at=now,
        actor=actor,
        kind=TimelineKind.CONFIRMED,
        detail="; ".join(part for part in said if part)[:CONFIRMED_DETAIL_MAX],
    )
    incident = head.model_copy(update={"confirmed": confirmed, "version": head.version + 1})
    return IncidentWrite(incident=incident, expected_version=head.version, events=(event,))


def _confirmed_text(text: str | None) -> str | None:
    """Trimmed and bounded, None when blank: a person's words, kept as they wrote them."""
    text = " ".join((text or "").split())
    return text[:CONFIRMED_TEXT_MAX] or None


def member_resolution(head: Incident, still_firing: list[str]) -> IncidentWrite:
    """One member of a group resolved while others still fire: the incident stays open."""
    incident = head.model_copy(update={"firing_members": still_firing, "version": head.version + 1})
    return IncidentWrite(incident=incident, expected_version=head.version)


def short_duration(delta: timedelta) -> str:
    """`1h 5m`, `42s`: how people say durations in a timeline."""
    seconds = max(0, int(delta.total_seconds()))
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = [
        f"{days}d" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
    ]
    text = " ".join(p for p in parts if p)
    return text or f"{seconds}s"


def _with_member(members: list[str], member: str | None) -> list[str]:
    """The firing set with `member` added; bounded, so a huge group cannot grow the item past
    what DynamoDB stores (an untracked member simply does not hold the incident open)."""
    if member is None or member in members or len(members) >= MAX_TRACKED_MEMBERS:
        return members
    return [*members, member]


def with_event(incident: Incident, event: TimelineEvent) -> IncidentWrite:
    """A write that only appends an event; the version still moves, so the message resyncs."""
    return IncidentWrite(
        incident=incident.model_copy(update={"version": incident.version + 1}),
        expected_version=incident.version,
        events=(event,),
    )
