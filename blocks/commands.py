"""Replies to `/incident` and the error messages every listener shows.

They are ephemeral: only the person who asked sees them, so they can be as detailed as that
person needs (a full timeline) without cluttering the channel. Like the incident message they
escape every text that came from an alert, a model or the person typing the command.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from analysis.models import Analysis
from blocks.incident import (
    SEVERITY_MARKER,
    analysis_credit,
    confirmed_line,
    fallback_text,
    format_time,
    incident_badges,
    incident_facts,
    incident_header,
    status_text,
)
from blocks.investigation import investigation_text
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
from incidents.store import AlertCount

LIST_SHOWN = 30
LIST_TITLE_MAX = 120
TIMELINE_SHOWN = 40
EVENT_DETAIL_MAX = 300
DETAIL_ROOT_CAUSE_MAX = 800
ERROR_MAX = 1000
FALLBACK_TEXT_MAX = 300
# A fingerprint is a digest: its first characters tell fingerprints apart, as a git hash's do.
FINGERPRINT_SHOWN = 12
SOURCE_SHOWN = 60
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
    ("postmortem <id>", "draft its blameless post-mortem, posted in its thread as Markdown"),
    ("silence <id> <duration>", "mute its alerts for a while, e.g. `30m`, `4h`, `1d`"),
    (
        "stats [period]",
        "opened and resolved, MTTA, MTTR, alerts per incident, noisiest alerts, analysis "
        "cache and Claude cost, what is open; `24h` (default), `7d`, `30d`",
    ),
    ("help", "this list"),
)


@dataclass(frozen=True, kw_only=True)
class IncidentStats:
    """What `/incident stats` and the daily digest report for a period; the caller computes
    it from the store (bot/stats.py, and `PeriodFigures` for what each count counts).

    `period` is shown as given (e.g. "last 7 days"); `until` is the period's end, from which
    open incidents' ages are measured. A mean time or rate is None when nothing in the period
    measured it, which reads differently from zero. `open_count` and `open_incidents` are the
    incidents open now (the most severe, then oldest, first), whatever the period.
    """

    period: str
    until: datetime
    opened: Mapping[Severity, int]
    resolved: Mapping[Severity, int]
    mtta: timedelta | None
    mttr: timedelta | None
    alerts: int
    alerted_incidents: int
    noisiest_fingerprints: Sequence[AlertCount]
    noisiest_sources: Sequence[AlertCount]
    analyses: int
    cache_hit_rate: float | None
    claude_calls: int
    claude_cost_usd: float
    open_count: int
    open_incidents: Sequence[Incident]

    @property
    def alerts_per_incident(self) -> float | None:
        """The noise reduction: how many alerts each incident grouped, on average."""
        return self.alerts / self.alerted_incidents if self.alerted_incidents else None


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
    """One incident: its facts, the gist of its analysis with how it was investigated, its
    latest timeline events, and what was sent where (Jira, email, PagerDuty, Teams) with how
    it went."""
    blocks = [incident_header(incident), incident_badges(incident), incident_facts(incident)]
    confirmed = confirmed_line(incident)
    if confirmed is not None:
        blocks.append(context([confirmed]))
    if analysis is not None:
        gist = f"*Root cause* · confidence {analysis.confidence:.0%}\n{escape(analysis.root_cause)}"
        blocks.append(section(truncate(gist, DETAIL_ROOT_CAUSE_MAX)))
        blocks.append(context([analysis_credit(analysis)]))
        trace = investigation_text(analysis)
        if trace is not None:
            blocks += [section(part) for part in split_for_sections(trace, SECTION_TEXT_MAX)]
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
    """The period's figures: opened and resolved by severity, MTTA, MTTR, alerts per incident,
    the analysis cache and Claude, the noisiest fingerprints and sources, what is still open."""
    period = escape(stats.period)
    opened = sum(stats.opened.values())
    text = f"Incidents, {period}: {opened} opened, {stats.open_count} open"
    return Message(
        text=truncate(text, FALLBACK_TEXT_MAX),
        blocks=[header(f":bar_chart: Incidents, {period}"), *_figure_blocks(stats)],
    )


def digest_message(stats: IncidentStats, zone: ZoneInfo) -> Message:
    """The daily digest, posted to the channel: the figures of `stats`'s period under a header
    naming the day in `zone` (DIGEST_TZ) at the period's end, so that the team reads its own
    date, and a pointer to more. Times inside stay UTC, like every message in the channel."""
    day = stats.until.astimezone(zone).strftime("%a %d %b %Y")
    title = f"Daily incident digest · {day} ({zone.key})"
    opened, resolved = sum(stats.opened.values()), sum(stats.resolved.values())
    text = f"{title}: {opened} opened, {resolved} resolved, {stats.open_count} still open"
    return Message(
        text=truncate(escape(text), FALLBACK_TEXT_MAX),
        blocks=[
            header(f":newspaper: {title}"),
            context([f"{escape(stats.period).capitalize()} to {format_time(stats.until)}"]),
            *_figure_blocks(stats),
            context([f"{code('/incident stats 7d')} for a longer view."]),
        ],
    )


def _figure_blocks(stats: IncidentStats) -> list[Block]:
    """The figures both replies share. Fingerprints, sources and titles come from alerts, so
    each is escaped (as code, or as text) and cut before our markup goes around it."""
    rate = (
        EMPTY
        if stats.cache_hit_rate is None
        else f"{stats.cache_hit_rate:.0%} of {stats.analyses} analyses"
    )
    per_incident = (
        EMPTY
        if stats.alerts_per_incident is None
        else f"{stats.alerts_per_incident:.1f} ({stats.alerts} alerts, "
        f"{stats.alerted_incidents} incidents)"
    )
    calls = f"{stats.claude_calls} call{'s' if stats.claude_calls != 1 else ''}"
    blocks: list[Block] = [
        fields(
            [
                f"*Opened*\n{_by_severity(stats.opened)}",
                f"*Resolved*\n{_by_severity(stats.resolved)}",
                f"*Mean time to acknowledge*\n{_duration(stats.mtta)}",
                f"*Mean time to resolve*\n{_duration(stats.mttr)}",
                f"*Alerts per incident*\n{per_incident}",
                f"*Still open*\n{stats.open_count}",
                f"*Analysis cache hit rate*\n{rate}",
                f"*Claude*\n{calls} · ${stats.claude_cost_usd:.4f}",
            ]
        )
    ]
    if stats.noisiest_fingerprints:
        lines = [
            f"{n}. *{count.alerts}* · {truncate(escape(count.title), LIST_TITLE_MAX) or EMPTY} "
            f"{code(count.key[:FINGERPRINT_SHOWN])}"
            for n, count in enumerate(stats.noisiest_fingerprints, start=1)
        ]
        blocks.append(section("*Noisiest fingerprints* (alerts)\n" + "\n".join(lines)))
    if stats.noisiest_sources:
        sources = " · ".join(
            f"{code(truncate(count.key, SOURCE_SHOWN))} {count.alerts}"
            for count in stats.noisiest_sources
        )
        blocks.append(section(f"*Noisiest sources* (alerts)\n{sources}"))
    if stats.open_incidents:
        lines = [_open_line(incident, stats.until) for incident in stats.open_incidents]
        if stats.open_count > len(lines):
            lines.append(f"…and {stats.open_count - len(lines)} more: {code('/incident list')}")
        still_open = f"*Still open ({stats.open_count})*\n" + "\n".join(lines)
        blocks += [section(part) for part in split_for_sections(still_open, SECTION_TEXT_MAX)]
    return blocks


def _by_severity(counts: Mapping[Severity, int]) -> str:
    """`7 · :red_circle: 1 · …`: the total, then every severity, worst first."""
    parts = [str(sum(counts.values()))]
    parts += [
        f"{SEVERITY_MARKER[severity]} {counts.get(severity, 0)}"
        for severity in sorted(Severity, key=lambda severity: severity.rank, reverse=True)
    ]
    return " · ".join(parts)


def _open_line(incident: Incident, now: datetime) -> str:
    return (
        f"{SEVERITY_MARKER[incident.severity]} *{escape(incident.id)}* "
        f"{truncate(escape(incident.title), LIST_TITLE_MAX) or EMPTY} · "
        f"{status_text(incident)} · open {short_duration(now - incident.opened_at)}"
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
