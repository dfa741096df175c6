"""The `incident://{id}` resource and the `postmortem` prompt, as Markdown.

Both are rendered from an `IncidentDetail`, the same redacted and bounded view `get_incident`
returns, so that nothing reaches an assistant through a resource or a prompt that the tool
would have held back.
"""

from __future__ import annotations

from datetime import datetime

from bot.mcp_server.schemas import AnalysisView, IncidentDetail


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "-"


def _cell(text: str) -> str:
    """Text inside a table cell: one line, and no `|` to end the cell early."""
    return " ".join(text.split()).replace("|", "\\|")


def incident_markdown(detail: IncidentDetail) -> str:
    """The incident as a page: facts, analysis, timeline and notifications."""
    incident = detail.incident
    lines = [
        f"# {incident.id}: {_cell(incident.title)}",
        "",
        f"- **Severity:** {incident.severity.value}",
        f"- **Status:** {incident.status.value}" + (" (flapping)" if incident.flapping else ""),
        f"- **Source:** {_cell(incident.source)}",
        f"- **Resource:** {_cell(detail.resource or '-')}",
        f"- **Occurrences:** {incident.occurrences}",
        f"- **Opened:** {_when(incident.opened_at)}",
        f"- **Last seen:** {_when(incident.last_seen_at)}",
        f"- **Acknowledged:** {_when(detail.acknowledged_at)} by {incident.owner or '-'}",
        f"- **Resolved:** {_when(detail.resolved_at)} by {detail.resolved_by or '-'}",
    ]
    if detail.reopen_count:
        lines.append(f"- **Reopened:** {detail.reopen_count} time(s)")
    if detail.silenced_until:
        lines.append(f"- **Silenced until:** {_when(detail.silenced_until)}")
    if detail.template:
        lines.append(f"- **Grouped by template:** `{_cell(detail.template)}`")
    if detail.slack is not None:
        lines.append(f"- **Slack:** {detail.slack.permalink or detail.slack.channel}")
    lines += ["", *_analysis(detail.analysis), "", "## Timeline", ""]
    if detail.timeline_truncated:
        lines.append("_Earlier events are not shown._")
    lines += [
        f"- {_when(event.at)} **{event.kind.value}** by {_cell(event.actor)}: {_cell(event.detail)}"
        for event in detail.timeline
    ] or ["_No events recorded._"]
    if detail.deliveries:
        lines += [
            "",
            "## Notifications",
            "",
            "| target | action | status | by |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {d.target} | {d.action} | {d.status.value} | {_cell(d.requested_by)} |"
            for d in detail.deliveries
        ]
    return "\n".join(lines) + "\n"


def _analysis(analysis: AnalysisView | None) -> list[str]:
    if analysis is None:
        return ["## Analysis", "", "_No analysis yet._"]
    by = f"Claude ({analysis.model})" if analysis.analyzer == "claude" else "the offline analyzer"
    lines = [
        "## Analysis",
        "",
        f"By {by}, confidence {analysis.confidence:.0%}.",
        "",
        f"**Root cause:** {analysis.root_cause}",
        "",
        f"**Impact:** {analysis.impact}",
        "",
        f"**Severity {analysis.severity.value}:** {analysis.severity_justification}",
        "",
        "**Remediation:**",
        "",
    ]
    for number, step in enumerate(analysis.remediation_steps, start=1):
        lines.append(f"{number}. {step.action}")
        if step.command:
            command = _cell(step.command).replace("`", "'")
            lines.append(f"   `{command}`")
    return lines


POSTMORTEM_INSTRUCTIONS = """\
Draft a blameless post-mortem of incident {id} from the record below, in Markdown, with these
sections: Summary; Impact; Timeline (UTC, from the record's timeline); Root cause (say how sure
the record is, and what would confirm it); Resolution; What went well; What went wrong; Action
items (owner left blank, one line each). Use only what the record says or what follows from
it, and mark any guess as a guess. Name roles, not people, when something went wrong.

The record, as the incident bot keeps it (secrets in it were redacted as [REDACTED:<kind>]):

"""


def postmortem_prompt(detail: IncidentDetail) -> str:
    """The request for a post-mortem draft, with the incident's record in it."""
    return POSTMORTEM_INSTRUCTIONS.format(id=detail.incident.id) + incident_markdown(detail)
