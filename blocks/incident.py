"""The incident message: what the channel sees, updated in place as the incident moves.

One message per incident carries what the on-call engineer needs in the first minute: how bad,
what, where, since when, who owns it, the analysis, and the buttons to act. It must stay within
Slack's limits whatever the alert or the model wrote, so the analysis is shown in sized parts
and whatever is cut is returned as `overflow`, for the publisher to continue in the thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from analysis.lessons import lesson_line
from analysis.models import Analysis, AnalyzerKind
from blocks.ids import ActionId, ActionValue, BlockId
from blocks.kit import (
    EMPTY,
    Block,
    Message,
    actions,
    button,
    confirmation,
    context,
    divider,
    fields,
    header,
    section,
)
from blocks.limits import HEADER_TEXT_MAX, SECTION_TEXT_MAX
from blocks.text import (
    ELLIPSIS,
    code,
    cut,
    escape,
    link,
    mention_or_text,
    split_for_sections,
    truncate,
)
from incidents.lifecycle import short_duration
from incidents.models import Incident, IncidentStatus, Severity

SEVERITY_MARKER = {
    Severity.CRITICAL: ":red_circle:",
    Severity.HIGH: ":large_orange_circle:",
    Severity.MEDIUM: ":large_yellow_circle:",
    Severity.LOW: ":large_blue_circle:",
}
RESOLVED_MARKER = ":white_check_mark:"

# Sizes that keep the message readable; the limits module holds what Slack enforces.
FALLBACK_TITLE_MAX = 200
FACT_VALUE_MAX = 300
ALERT_EXCERPT_MAX = 1000
NOTE_MAX = 300
RUNBOOK_NAME_MAX = 150
TEMPLATE_SHOWN_MAX = 200
SHOWN_NOTES = 3
SHOWN_RELATED = 3
PROMPT_VERSION_SHOWN = 12
# How much of each analysis part the message shows; the rest continues in the thread.
ROOT_CAUSE_SHOWN = 1500
IMPACT_SHOWN = 1000
SEVERITY_SHOWN = 600
STEPS_SHOWN = SECTION_TEXT_MAX
CHECK_FIRST_SHOWN = 800
ALTERNATIVES_SHOWN = 800


@dataclass(frozen=True)
class IncidentMessage(Message):
    """The message, plus the analysis text it had no room for: mrkdwn parts of at most
    SECTION_TEXT_MAX characters each, in reading order, for the thread."""

    overflow: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Part:
    """One section of the analysis, shown up to `budget` characters with its title."""

    title: str
    body: str
    budget: int
    note: str = ""


def render_incident(
    incident: Incident,
    analysis: Analysis | None,
    *,
    jira_enabled: bool,
    email_enabled: bool,
    jira_link: tuple[str, str] | None = None,
    silenced_until: datetime | None = None,
    analyzing: bool = False,
    alert_message: str | None = None,
    runbook: tuple[str, str] | None = None,
) -> IncidentMessage:
    """The incident message. `jira_link` is (issue key, URL) once a ticket exists;
    `alert_message` is the latest alert's text, shown as an excerpt; `runbook` is the
    (name, URL) of the runbook that matches the alert."""
    blocks = [
        incident_header(incident),
        incident_badges(incident, jira_link=jira_link, silenced_until=silenced_until),
        incident_facts(incident),
    ]
    if incident.template:
        blocks.append(context([grouped_by(incident.template)]))
    confirmed = confirmed_line(incident)
    if confirmed is not None:
        blocks.append(context([confirmed]))
    if runbook is not None:
        name, url = runbook
        blocks.append(context([f":book: Runbook: {link(url, truncate(name, RUNBOOK_NAME_MAX))}"]))
    if alert_message and alert_message.strip():
        blocks.append(section("*Alert*\n" + truncate(code(alert_message), ALERT_EXCERPT_MAX)))
    overflow: list[str] = []
    if analysis is not None:
        blocks.append(divider())
        for part in _analysis_parts(analysis):
            shown, rest = _fit_part(part)
            blocks.append(section(shown))
            overflow += rest
        blocks.append(context([analysis_credit(analysis)]))
        extras = _analysis_extras(incident, analysis)
        if extras:
            blocks.append(context(["\n".join(extras)]))
    if analyzing:
        busy = "Re-analyzing…" if analysis is not None else "Analyzing…"
        blocks.append(context([f":hourglass_flowing_sand: {busy}"]))
    elif analysis is None:
        blocks.append(context(["No analysis yet: *Re-analyze* asks for one."]))
    if overflow:
        blocks.append(context([":thread: The rest of the analysis is in the thread."]))
    blocks.append(
        _actions(
            incident,
            jira_enabled=jira_enabled and jira_link is None,
            email_enabled=email_enabled,
            analyzing=analyzing,
        )
    )
    return IncidentMessage(text=fallback_text(incident), blocks=blocks, overflow=overflow)


def grouped_by(template: str) -> str:
    """Why these alerts are one incident: their template's first line, variables as `<*>`."""
    first = template.strip().split("\n", 1)[0]
    return f":jigsaw: Grouped by template {code(truncate(first, TEMPLATE_SHOWN_MAX))}"


def fallback_text(incident: Incident) -> str:
    """The notification line, e.g. `:red_circle: CRITICAL INC-7 Database down`."""
    title = truncate(escape(incident.title), FALLBACK_TITLE_MAX) or EMPTY
    if incident.status is IncidentStatus.RESOLVED:
        return (
            f"{RESOLVED_MARKER} RESOLVED {escape(incident.id)} {title} "
            f"(after {short_duration(incident_duration(incident))})"
        )
    marker = SEVERITY_MARKER[incident.severity]
    return f"{marker} {incident.severity.value} {escape(incident.id)} {title}"


def incident_header(incident: Incident) -> Block:
    """Severity marker and title; a resolved incident says so first, keeping its severity."""
    if incident.status is IncidentStatus.RESOLVED:
        prefix = f"{RESOLVED_MARKER} Resolved · {incident.severity.value}: "
    else:
        prefix = f"{SEVERITY_MARKER[incident.severity]} {incident.severity.value}: "
    return header(prefix + truncate(escape(incident.title), HEADER_TEXT_MAX - len(prefix)))


def incident_badges(
    incident: Incident,
    *,
    jira_link: tuple[str, str] | None = None,
    silenced_until: datetime | None = None,
) -> Block:
    """The id, and what is unusual about the incident: flapping, reopened, silenced, ticketed."""
    badges = [f"*{escape(incident.id)}*"]
    if incident.flapping:
        badges.append(":repeat: *Flapping*")
    if incident.reopen_count:
        badges.append(f":leftwards_arrow_with_hook: Reopened {incident.reopen_count}×")
    if silenced_until is not None:
        badges.append(f":zzz: Silenced until {format_time(silenced_until)}")
    if jira_link is not None:
        key, url = jira_link
        badges.append(f":ticket: {link(url, key)}")
    return context([" · ".join(badges)])


def incident_facts(incident: Incident) -> Block:
    """Source, resource, first and last seen, occurrences, status and owner, as fields."""
    occurrences = str(incident.occurrences)
    if incident.firing_members:
        occurrences += f" ({len(incident.firing_members)} still firing)"
    owner = mention_or_text(incident.acknowledged_by) if incident.acknowledged_by else None
    return fields(
        [
            f"*Source*\n{_fact(incident.source)}",
            f"*Resource*\n{_fact(incident.resource)}",
            f"*First seen*\n{format_time(incident.opened_at)}",
            f"*Last seen*\n{format_time(incident.last_seen_at)}",
            f"*Occurrences*\n{occurrences}",
            f"*Status*\n{status_text(incident)}",
            f"*Owner*\n{owner or '_Unassigned_'}",
        ]
    )


def status_text(incident: Incident) -> str:
    """`Open`, `Acknowledged after 4m`, `Resolved after 12m by @ana`, with a marker."""
    if incident.status is IncidentStatus.OPEN:
        return ":rotating_light: Open"
    if incident.status is IncidentStatus.ACKNOWLEDGED:
        if incident.acknowledged_at is None:
            return ":eyes: Acknowledged"
        waited = short_duration(incident.acknowledged_at - incident.opened_at)
        return f":eyes: Acknowledged after {waited}"
    text = f"{RESOLVED_MARKER} Resolved after {short_duration(incident_duration(incident))}"
    if incident.resolved_by is None:
        return text
    if incident.resolved_by.startswith("alert:"):
        return f"{text} (the alert cleared)"
    return f"{text} by {mention_or_text(incident.resolved_by)}"


def incident_duration(incident: Incident) -> timedelta:
    """From opening to resolution, or to the last alert while it is still active."""
    return (incident.resolved_at or incident.last_seen_at) - incident.opened_at


def format_time(moment: datetime) -> str:
    """`2026-11-24 08:00 UTC`: one zone for everyone in the channel; naive times are UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def analysis_credit(analysis: Analysis) -> str:
    """Who wrote the analysis and what it cost; an offline analysis says plainly it is one."""
    if analysis.analyzer is AnalyzerKind.OFFLINE:
        return (
            ":gear: *Offline analysis*: built-in rules, no AI model was asked. "
            "A starting point, not a diagnosis."
        )
    credit = [":robot_face: Claude"]
    if analysis.model:
        credit.append(code(analysis.model))
    credit.append("cached" if analysis.cached else f"${analysis.cost_usd:.4f}")
    if analysis.prompt_version:
        credit.append(f"prompt {code(analysis.prompt_version[:PROMPT_VERSION_SHOWN])}")
    return " · ".join(credit)


def _fact(value: str | None) -> str:
    """An alert-given value for a field: escaped, and short enough to keep the fields a grid."""
    return truncate(escape(value), FACT_VALUE_MAX) if value and value.strip() else EMPTY


def _analysis_parts(analysis: Analysis) -> list[_Part]:
    """The analysis in reading order; every text in it is the model's, so all is escaped."""
    parts = [
        _Part(
            "Root cause",
            escape(analysis.root_cause),
            ROOT_CAUSE_SHOWN,
            note=f" · confidence {analysis.confidence:.0%}",
        ),
        _Part("Impact", escape(analysis.impact), IMPACT_SHOWN),
        _Part("Severity", _severity_line(analysis), SEVERITY_SHOWN),
        _Part("First steps", _steps(analysis), STEPS_SHOWN),
    ]
    if analysis.check_first:
        checks = "\n".join(f"• {escape(item)}" for item in analysis.check_first)
        parts.append(_Part("Check first", checks, CHECK_FIRST_SHOWN))
    if analysis.alternatives:
        others = "\n".join(
            f"• {escape(other.hypothesis)} (less likely: {escape(other.why_less_likely)})"
            for other in analysis.alternatives
        )
        parts.append(_Part("Other causes considered", others, ALTERNATIVES_SHOWN))
    return parts


def _fit_part(part: _Part) -> tuple[str, list[str]]:
    """The part as shown, cut to its budget with "…", and the rest as thread sections."""
    text = f"*{part.title}*{part.note}\n{part.body.strip() or EMPTY}"
    if len(text) <= part.budget:
        return text, []
    shown, rest = cut(text, part.budget - len(ELLIPSIS))
    return shown + ELLIPSIS, split_for_sections(
        f"*{part.title} (continued)*\n{rest}", SECTION_TEXT_MAX
    )


def _steps(analysis: Analysis) -> str:
    """Numbered steps, each command as code under its action. A blank line between steps
    makes each step one paragraph, the boundary a cut prefers."""
    steps = []
    for number, step in enumerate(analysis.remediation_steps, start=1):
        command = code(step.command or "")
        steps.append(f"*{number}.* {escape(step.action)}" + (f"\n{command}" if command else ""))
    return "\n\n".join(steps)


def _severity_line(analysis: Analysis) -> str:
    """The level, then why; without repeating the level when the justification opens with it."""
    justification = escape(analysis.severity_justification)
    level = analysis.severity.value
    return justification if justification.startswith(level) else f"{level}: {justification}"


def _analysis_extras(incident: Incident, analysis: Analysis) -> list[str]:
    """What the team confirmed last time, similar past incidents and notes on missing
    context, a few lines at most."""
    lines = [
        ":bulb: " + _capitalized(lesson_line(
            lesson, incident.last_seen_at, quote=_quoted, person=mention_or_text
        ))
        for lesson in analysis.lessons
        if lesson.incident_id != incident.id  # its own shows as "Confirmed by"
    ]  # fmt: skip
    lines += [
        f":link: Similar: *{escape(related.incident_id)}* "
        f"{truncate(escape(related.title), NOTE_MAX // 2)} "
        f"({escape(related.status)}: {truncate(escape(related.outcome), NOTE_MAX // 2)})"
        for related in analysis.related_incidents[:SHOWN_RELATED]
    ]
    lines += [
        f":information_source: {truncate(escape(note), NOTE_MAX)}"
        for note in analysis.context_notes[:SHOWN_NOTES]
    ]
    return lines


def confirmed_line(incident: Incident) -> str | None:
    """`:white_check_mark: Confirmed by @ann: cause …; fix …`, once the team said what it was."""
    confirmed = incident.confirmed
    if confirmed is None:
        return None
    said = [
        f"cause {_quoted(confirmed.cause)}" if confirmed.cause else "",
        f"fix {_quoted(confirmed.fix)}" if confirmed.fix else "",
    ]
    return f":white_check_mark: Confirmed by {mention_or_text(confirmed.by)}: " + "; ".join(
        part for part in said if part
    )


def _quoted(text: str) -> str:
    """A person's words in a context line: escaped, cut, in quotes."""
    return f"“{truncate(escape(text), NOTE_MAX)}”"


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _actions(
    incident: Incident, *, jira_enabled: bool, email_enabled: bool, analyzing: bool
) -> Block:
    """The buttons that make sense now: no Acknowledge once owned, no Acknowledge or Resolve
    once resolved, no Re-analyze while one runs, Jira and Email only when configured."""
    value = ActionValue(incident_id=incident.id)
    buttons = []
    if incident.status is IncidentStatus.OPEN:
        buttons.append(button("Acknowledge", ActionId.ACKNOWLEDGE, value, style="primary"))
    if incident.is_active:
        # A misclick here would close an incident that is still burning: ask first.
        buttons.append(
            button(
                "Resolve",
                ActionId.RESOLVE,
                value,
                confirm=confirmation(
                    f"Resolve {escape(incident.id)}?",
                    "It reopens if the alert fires again soon.",
                    "Resolve",
                    "Cancel",
                ),
            )
        )
    if jira_enabled:
        buttons.append(button("Create Jira ticket", ActionId.CREATE_JIRA, value))
    if email_enabled:
        buttons.append(button("Email", ActionId.EMAIL, value))
    if not analyzing:
        buttons.append(button("Re-analyze", ActionId.REANALYZE, value))
    if incident.status is IncidentStatus.RESOLVED:
        buttons.append(button("Draft post-mortem", ActionId.POSTMORTEM, value))
    buttons.append(button("Silence 1h", ActionId.SILENCE_1H, value))
    buttons.append(button("Silence 24h", ActionId.SILENCE_24H, value))
    return actions(BlockId.INCIDENT_ACTIONS.value, buttons)
