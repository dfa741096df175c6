"""The post-mortem without a model: what the timeline proves, said plainly.

Deterministic, for when Claude is not configured or could not draft one: time to acknowledge
and to resolve, reopens, flapping, severity raises, and action items that follow from them.
It never names an owner: owners are chosen at the review.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from analysis.models import Analysis, AnalyzerKind
from analysis.postmortem_document import (
    ITEM_LIMIT,
    POINTS_MAX,
    ROOT_CAUSE_LIMIT,
    TEXT_LIMIT,
    TIMELINE_MAX,
    TITLE_LIMIT,
    ActionItem,
    PostMortem,
    PostMortemInput,
    TimelineEntry,
    actor_label,
    analysis_label,
    clip,
    count,
    one_line,
    times,
    utc_time,
)
from incidents.lifecycle import short_duration
from incidents.models import Incident, IncidentStatus, Severity, TimelineEvent, TimelineKind
from incidents.times import as_utc

# How quickly an acknowledgement counts as quick when the caller names no target: the
# escalation defaults (ESCALATE_AFTER_*) for CRITICAL and HIGH, a looser bar for the others.
DEFAULT_ACK_TARGETS: dict[Severity, timedelta] = {
    Severity.CRITICAL: timedelta(minutes=5),
    Severity.HIGH: timedelta(minutes=15),
    Severity.MEDIUM: timedelta(minutes=30),
    Severity.LOW: timedelta(hours=1),
}


OFFLINE_NOTE = (
    "Drafted offline from the incident's timeline alone: no AI model was asked and the Slack "
    "thread was not read. Check every section, and add what the people involved know."
)


@dataclass(frozen=True)
class _Facts:
    """What the timeline proves about the response, with the incident record filling gaps
    (an incident recorded before timelines existed has none)."""

    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None
    reopens: int
    flapping: bool
    unacknowledged_cycles: int
    severity_raises: list[TimelineEvent]

    @property
    def time_to_acknowledge(self) -> timedelta | None:
        return None if self.acknowledged_at is None else self.acknowledged_at - self.opened_at

    @property
    def time_to_resolve(self) -> timedelta | None:
        return None if self.resolved_at is None else self.resolved_at - self.opened_at

    @property
    def cleared_by_alert(self) -> bool:
        return self.resolved_by is not None and self.resolved_by.startswith("alert:")


def _facts(incident: Incident, events: Sequence[TimelineEvent]) -> _Facts:
    ordered = sorted(events, key=lambda event: event.at)
    opened = next((e.at for e in ordered if e.kind is TimelineKind.OPENED), incident.opened_at)
    acknowledged = next(
        (e.at for e in ordered if e.kind is TimelineKind.ACKNOWLEDGED), incident.acknowledged_at
    )
    resolution: TimelineEvent | None = None
    unacknowledged = 0
    acked_this_cycle = False
    for event in ordered:
        if event.kind in (TimelineKind.OPENED, TimelineKind.REOPENED):
            resolution, acked_this_cycle = None, False
        elif event.kind is TimelineKind.ACKNOWLEDGED:
            acked_this_cycle = True
        elif event.kind is TimelineKind.RESOLVED:
            resolution = event
            unacknowledged += 0 if acked_this_cycle else 1
    resolved_at, resolved_by = None, None
    if resolution is not None:
        resolved_at, resolved_by = resolution.at, resolution.actor
    elif incident.status is IncidentStatus.RESOLVED:
        resolved_at, resolved_by = incident.resolved_at, incident.resolved_by
    return _Facts(
        opened_at=as_utc(opened),
        acknowledged_at=as_utc(acknowledged) if acknowledged else None,
        resolved_at=as_utc(resolved_at) if resolved_at else None,
        resolved_by=resolved_by,
        reopens=sum(1 for e in ordered if e.kind is TimelineKind.REOPENED),
        flapping=incident.flapping or any(e.kind is TimelineKind.FLAPPING for e in ordered),
        unacknowledged_cycles=unacknowledged,
        severity_raises=[e for e in ordered if e.kind is TimelineKind.SEVERITY_RAISED],
    )


def offline_postmortem(
    inputs: PostMortemInput, *, ack_target: timedelta | None = None, reason: str | None = None
) -> PostMortem:
    """A post-mortem from the timeline alone, deterministic, for when Claude is not configured
    or could not draft one (`reason`, which the note then gives).

    `ack_target` is how fast an acknowledgement counts as quick (the bot passes the incident
    severity's escalation delay); None takes `DEFAULT_ACK_TARGETS`."""
    incident = inputs.incident
    facts = _facts(incident, inputs.timeline)
    target = ack_target or DEFAULT_ACK_TARGETS[incident.severity]
    note = OFFLINE_NOTE
    if reason:
        note = f"Claude could not draft this post-mortem ({reason}). {OFFLINE_NOTE}"
    return PostMortem(
        title=clip(f"Post-mortem: {one_line(incident.title)}", TITLE_LIMIT),
        summary=clip(_offline_summary(incident, facts), TEXT_LIMIT),
        impact=clip(_offline_impact(incident, inputs.analysis), TEXT_LIMIT),
        timeline=_offline_timeline(incident, inputs.timeline),
        root_cause=clip(_offline_root_cause(inputs.analysis), ROOT_CAUSE_LIMIT),
        went_well=_went_well(incident, facts, target, inputs.analysis),
        went_badly=_went_badly(incident, facts, target),
        action_items=[ActionItem(item=item) for item in _action_items(facts, target)],
        written_by=AnalyzerKind.OFFLINE,
        note=note,
    )


def _offline_summary(incident: Incident, facts: _Facts) -> str:
    where = f" on {one_line(incident.resource)}" if incident.resource else ""
    parts = [
        f"{one_line(incident.title)} ({incident.severity.value} incident from "
        f"{incident.source}{where}) opened at {utc_time(facts.opened_at)}."
    ]
    if facts.time_to_acknowledge is not None:
        parts.append(f"It was acknowledged after {short_duration(facts.time_to_acknowledge)}.")
    else:
        parts.append("No acknowledgement was recorded.")
    if facts.time_to_resolve is not None:
        how = ", when the alert cleared" if facts.cleared_by_alert else ""
        parts.append(f"It was resolved after {short_duration(facts.time_to_resolve)}{how}.")
    else:
        parts.append(
            f"It is not resolved; the last alert arrived at {utc_time(incident.last_seen_at)}."
        )
    if facts.reopens:
        flapped = " and was marked as flapping" if facts.flapping else ""
        parts.append(f"It reopened {times(facts.reopens)}{flapped}.")
    parts.append(f"{count(incident.occurrences, 'alert')} recorded in all.")
    return " ".join(parts)


def _offline_impact(incident: Incident, analysis: Analysis | None) -> str:
    where = f" on {one_line(incident.resource)}" if incident.resource else ""
    text = (
        "The timeline does not measure user impact. The alert fired "
        f"{times(incident.occurrences)}{where} between {utc_time(incident.opened_at)} and "
        f"{utc_time(incident.last_seen_at)}."
    )
    if analysis is not None:
        text += f" The {analysis_label(analysis)} estimated: {one_line(analysis.impact)}"
    return text + " Add what users saw, how many were affected and for how long."


def _offline_root_cause(analysis: Analysis | None) -> str:
    if analysis is None:
        return (
            "Not determined: no analysis was stored, and the timeline records what happened, "
            "not why. To be filled in at the review."
        )
    return (
        f"Not confirmed. The {analysis_label(analysis)} proposed, with confidence "
        f"{analysis.confidence:.0%}: {one_line(analysis.root_cause)}"
    )


_EVENT_LABELS: dict[TimelineKind, str] = {
    TimelineKind.OPENED: "Opened",
    TimelineKind.ACKNOWLEDGED: "Acknowledged",
    TimelineKind.RESOLVED: "Resolved",
    TimelineKind.REOPENED: "Reopened",
    TimelineKind.FLAPPING: "Marked as flapping",
    TimelineKind.SEVERITY_RAISED: "Severity raised",
    TimelineKind.SILENCED: "Silenced",
}


def _offline_timeline(incident: Incident, events: Sequence[TimelineEvent]) -> list[TimelineEntry]:
    """Every recorded event, plus the last alert: the timeline's own record of when the
    problem was last seen. A long one keeps its start and its end."""
    entries = [
        TimelineEntry(
            at=event.at,
            event=clip(
                f"{_EVENT_LABELS.get(event.kind, event.kind.value)} by {actor_label(event.actor)}"
                + (f": {one_line(event.detail)}" if event.detail else ""),
                ITEM_LIMIT,
            ),
        )
        for event in events
    ]
    if incident.last_seen_at > incident.opened_at:
        entries.append(
            TimelineEntry(
                at=incident.last_seen_at,
                event=f"Last alert received ({count(incident.occurrences, 'alert')} in all)",
            )
        )
    entries.sort(key=lambda entry: entry.at)
    if len(entries) <= TIMELINE_MAX:
        return entries
    head = (TIMELINE_MAX - 1) // 2
    tail = TIMELINE_MAX - 1 - head
    gap = TimelineEntry(
        at=entries[head].at,
        event=f"… {len(entries) - head - tail} more events in the incident's timeline",
    )
    return [*entries[:head], gap, *entries[-tail:]]


def _went_well(
    incident: Incident, facts: _Facts, target: timedelta, analysis: Analysis | None
) -> list[str]:
    points: list[str] = []
    waited = facts.time_to_acknowledge
    if waited is not None and waited <= target:
        points.append(
            f"Acknowledged {short_duration(waited)} after it opened, within the "
            f"{short_duration(target)} target for {incident.severity.value}."
        )
    if facts.resolved_at is not None and not facts.reopens:
        points.append("It did not reopen: the resolution held.")
    if analysis is not None:
        points.append(f"The {analysis_label(analysis)} was ready for the responders.")
    return points or ["Nothing in the timeline stands out; add what helped the response."]


def _went_badly(incident: Incident, facts: _Facts, target: timedelta) -> list[str]:
    points: list[str] = []
    waited = facts.time_to_acknowledge
    if waited is not None and waited > target:
        points.append(
            f"Acknowledged {short_duration(waited)} after it opened, past the "
            f"{short_duration(target)} target for {incident.severity.value}."
        )
    if waited is None:
        points.append("No acknowledgement was recorded: nobody was seen to take it on.")
    elif facts.unacknowledged_cycles:
        points.append(
            f"{count(facts.unacknowledged_cycles, 'opening')} resolved without an acknowledgement."
        )
    if facts.reopens:
        points.append(
            f"It reopened {times(facts.reopens)} after being resolved: the fix did not hold, "
            "or the alarm cleared before the problem did."
        )
    if facts.flapping:
        points.append("It flapped, which makes each new alert easier to ignore.")
    for raised in facts.severity_raises:
        points.append(f"Severity rose while it was open ({one_line(raised.detail)}).")
    if facts.resolved_at is None:
        points.append("It was still unresolved when this draft was written.")
    points = [clip(point, ITEM_LIMIT) for point in points[:POINTS_MAX]]
    return points or ["Nothing in the timeline points to a problem with the response."]


def _action_items(facts: _Facts, target: timedelta) -> list[str]:
    items = ["Confirm the root cause with evidence and record it in this document."]
    if facts.flapping or facts.reopens:
        items.append(
            "Review the alarm threshold, evaluation periods and datapoints to alarm, so that "
            "it fires once per problem and clears only when the problem is gone."
        )
    if facts.reopens:
        items.append("Find out why the first resolution did not hold, and fix that.")
    waited = facts.time_to_acknowledge
    if waited is None or waited > target or facts.unacknowledged_cycles:
        items.append(
            "Check that alerts of this severity reach the on-call engineer: channel routing, "
            "escalation delay and the on-call mention."
        )
    if facts.severity_raises:
        items.append("Review whether this alert should open at a higher severity.")
    if facts.cleared_by_alert:
        items.append("Find out what made the alert clear on its own, and whether it will recur.")
    items.append("Write or update the runbook for this alert with what was learned.")
    return items
