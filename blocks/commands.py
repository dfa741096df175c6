"""Replies to `/incident` and the error messages every listener shows.

They are ephemeral: only the person who asked sees them, so they can be as detailed as that
person needs (a full timeline) without cluttering the channel. Like the incident message they
escape every text that came from an alert, a model or the person typing the command.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from analysis.models import Analysis
from blocks.incident import (
    SEVERITY_MARKER,
    analysis_credit,
    fallback_text,
    format_time,
    incident_badges,
    incident_facts,
    incident_header,
    status_text,
)
from blocks.kit import EMPTY, Block, Message, context, fields, header, section
from blocks.limits import SECTION_TEXT_MAX
from blocks.text import code, escape, mention_or_text, split_for_sections, truncate
from incidents.lifecycle import short_duration
from incidents.models import (
    Delivery,
    DeliveryStatus,
    Incident,
    Severity,
    TimelineEvent,
    TimelineKind,
)

LIST_SHOWN = 30
LIST_TITLE_MAX = 120
TIMELINE_SHOWN = 40
EVENT_DETAIL_MAX = 300
DETAIL_ROOT_CAUSE_MAX = 800
ERROR_MAX = 1000
_TIMELINE_MARKER = {
    TimelineKind.OPENED: ":rotating_light:",
    TimelineKind.ACKNOWLEDGED: ":eyes:",
    TimelineKind.RESOLVED: ":white_check_mark:",
    TimelineKind.REOPENED: ":leftwards_arrow_with_hook:",
    TimelineKind.FLAPPING: ":repeat:",
    TimelineKind.SEVERITY_RAISED: ":arrow_up:",
    TimelineKind.SILENCED: ":zzz:",
}
_HELP = (
    ("analyze <text>", "analyze pasted alert text as a new alert"),
    ("list", "open incidents, newest first"),
    ("show <id>", "one incident with its timeline and what was sent where"),
    ("ack <id>", "acknowledge it: you own it now"),
    ("resolve <id>", "resolve it"),
    ("jira <id>", "create its Jira ticket (one per incident)"),
    ("silence <id> <duration>", "mute its alerts for a while, e.g. `30m`, `4h`, `1d`"),
    ("stats [period]", "counts, MTTA, MTTR, cache hit rate and Claude cost, e.g. `7d`"),
    ("help", "this list"),
)


@dataclass(frozen=True)
class IncidentStats:
    """What `/incident stats` reports for a period; the caller computes it from the store.

    `period` is shown as given (e.g. "last 7 days"); a mean time or rate is None when nothing
    in the period measured it, which reads differently from zero.
    """

    period: str
    by_severity: Mapping[Severity, int]
    open_count: int
    mtta: timedelta | None
    mttr: timedelta | None
    cache_hit_rate: float | None
    claude_cost_usd: float


def incident_list(incidents: Sequence[Incident]) -> Message:
    """The active incidents among `incidents`, newest first, one line each."""
    active = sorted(
        (incident for incident in incidents if incident.is_active),
        key=lambda incident: incident.opened_at,
        reverse=True,
    )
    if not active:
        text = ":white_check_mark: No open incidents."
        return Message(text=text, blocks=[section(text)])
    lines = [_list_line(incident) for incident in active[:LIST_SHOWN]]
    if len(active) > LIST_SHOWN:
        lines.append(f"…and {len(active) - LIST_SHOWN} more.")
    title = f"Open incidents ({len(active)})"
    blocks: list[Block] = [header(title)]
    blocks += [section(part) for part in split_for_sections("\n".join(lines), SECTION_TEXT_MAX)]
    blocks.append(context([f"{code('/incident show <id>')} shows one with its timeline."]))
    return Message(text=title, blocks=blocks)


def incident_detail(
    incident: Incident,
    analysis: Analysis | None,
    timeline: Sequence[TimelineEvent],
    deliveries: Sequence[Delivery] = (),
) -> Message:
    """One incident: its facts, the gist of its analysis, its latest timeline events, and
    what was sent where (Jira, email, PagerDuty, Teams) with how it went."""
    blocks = [incident_header(incident), incident_badges(incident), incident_facts(incident)]
    if analysis is not None:
        gist = f"*Root cause* · confidence {analysis.confidence:.0%}\n{escape(analysis.root_cause)}"
        blocks.append(section(truncate(gist, DETAIL_ROOT_CAUSE_MAX)))
        blocks.append(context([analysis_credit(analysis)]))
    events = sorted(timeline, key=lambda event: event.at)
    lines = [_event_line(event) for event in events[-TIMELINE_SHOWN:]]
    if len(events) > TIMELINE_SHOWN:
        lines.insert(0, f"_{len(events) - TIMELINE_SHOWN} earlier events not shown._")
    history = "*Timeline*\n" + ("\n".join(lines) or "_No events recorded._")
    blocks += [section(part) for part in split_for_sections(history, SECTION_TEXT_MAX)]
    if deliveries:
        sent = "*Sent*\n" + "\n".join(_delivery_line(d) for d in deliveries[-TIMELINE_SHOWN:])
        blocks += [section(part) for part in split_for_sections(sent, SECTION_TEXT_MAX)]
    return Message(text=fallback_text(incident), blocks=blocks)


def _delivery_line(delivery: Delivery) -> str:
    """`10:02 pagerduty trigger by @ann: sent (attempt 1)`, or the last error when not."""
    line = (
        f"{format_time(delivery.requested_at)} {escape(delivery.target)} "
        f"{escape(delivery.action)} by {mention_or_text(delivery.requested_by)}: "
        f"{delivery.status.value}"
    )
    if delivery.status is DeliveryStatus.SENT and delivery.result:
        line += f" {code(delivery.result)}"
    if delivery.status is not DeliveryStatus.SENT and delivery.last_error:
        line += f" ({truncate(escape(delivery.last_error), EVENT_DETAIL_MAX)})"
    return line + f" · {delivery.attempts} attempt{'s' if delivery.attempts != 1 else ''}"


def stats_message(stats: IncidentStats) -> Message:
    """Counts by severity, MTTA, MTTR, cache hit rate and Claude cost for the period."""
    total = sum(stats.by_severity.values())
    by_severity = " · ".join(
        f"{SEVERITY_MARKER[severity]} {stats.by_severity.get(severity, 0)}"
        for severity in sorted(Severity, key=lambda severity: severity.rank, reverse=True)
    )
    rate = EMPTY if stats.cache_hit_rate is None else f"{stats.cache_hit_rate:.0%}"
    period = escape(stats.period)
    return Message(
        text=truncate(f"Incidents, {period}: {total} ({stats.open_count} open)", 300),
        blocks=[
            header(f":bar_chart: Incidents, {period}"),
            fields(
                [
                    f"*Incidents*\n{total} ({stats.open_count} open)",
                    f"*By severity*\n{by_severity}",
                    f"*Mean time to acknowledge*\n{_duration(stats.mtta)}",
                    f"*Mean time to resolve*\n{_duration(stats.mttr)}",
                    f"*Analysis cache hit rate*\n{rate}",
                    f"*Claude cost*\n${stats.claude_cost_usd:.4f}",
                ]
            ),
        ],
    )


def help_message() -> Message:
    """The `/incident` subcommands, one line each."""
    lines = [f"{code('/incident ' + usage)}: {what}" for usage, what in _HELP]
    return Message(
        text="/incident commands",
        blocks=[section("*`/incident` commands*\n" + "\n".join(lines))],
    )


def error_message(message: str, *, correlation_id: str | None = None) -> Message:
    """An ephemeral error. `message` is escaped (it may echo what the person typed); the
    correlation id lets them point at the matching log line without seeing its details."""
    text = f":warning: {truncate(escape(message), ERROR_MAX)}"
    blocks = [section(text)]
    if correlation_id:
        blocks.append(context([f"Reference {code(correlation_id)} for the bot's logs."]))
    return Message(text=text, blocks=blocks)


def _list_line(incident: Incident) -> str:
    return (
        f"{SEVERITY_MARKER[incident.severity]} *{escape(incident.id)}* "
        f"{truncate(escape(incident.title), LIST_TITLE_MAX) or EMPTY} · "
        f"{status_text(incident)} · {incident.occurrences}× since "
        f"{format_time(incident.opened_at)}"
    )


def _event_line(event: TimelineEvent) -> str:
    marker = _TIMELINE_MARKER.get(event.kind, "•")
    line = (
        f"{format_time(event.at)} {marker} {event.kind.value.replace('_', ' ')} "
        f"by {mention_or_text(event.actor)}"
    )
    if event.detail:
        line += f": {truncate(escape(event.detail), EVENT_DETAIL_MAX)}"
    return line


def _duration(delta: timedelta | None) -> str:
    return EMPTY if delta is None else short_duration(delta)
