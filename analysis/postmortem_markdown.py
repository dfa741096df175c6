"""The post-mortem as the Markdown file posted in the incident's thread."""

from __future__ import annotations

import re
from collections.abc import Sequence

from analysis.models import AnalyzerKind
from analysis.postmortem_document import PostMortem, one_line, times, utc_time
from incidents.lifecycle import short_duration
from incidents.models import Incident

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def render_markdown(pm: PostMortem, incident: Incident) -> str:
    """The post-mortem as a complete Markdown document, the file posted in the thread.

    Text from the model or the alert goes in as text: one-line contexts (the title, table
    cells, list items) are flattened, and pipes in table cells escaped, so that no text can
    end a row or a heading early."""
    duration = (
        short_duration(incident.resolved_at - incident.opened_at)
        if incident.resolved_at
        else f"ongoing (last alert {utc_time(incident.last_seen_at)})"
    )
    metadata = [
        ("Incident", incident.id),
        ("Severity", incident.severity.value),
        ("Status", incident.status.value),
        ("Source", incident.source),
        ("Resource", incident.resource or "—"),
        ("Opened", utc_time(incident.opened_at)),
        ("Acknowledged", utc_time(incident.acknowledged_at) if incident.acknowledged_at else "—"),
        ("Resolved", utc_time(incident.resolved_at) if incident.resolved_at else "—"),
        ("Duration", duration),
        ("Alerts", str(incident.occurrences)),
        ("Reopened", times(incident.reopen_count)),
    ]
    lines = [
        f"# {one_line(pm.title)}",
        "",
        "> Draft for a blameless review: it describes systems and processes, not people.",
        "",
        "| Field | Value |",
        "|---|---|",
        *(f"| {name} | {_cell(value)} |" for name, value in metadata),
        "",
        "## Summary",
        "",
        pm.summary.strip() or "—",
        "",
        "## Impact",
        "",
        pm.impact.strip() or "—",
        "",
        "## Timeline",
        "",
        "| Time (UTC) | Event |",
        "|---|---|",
        *(
            f"| {entry.at:%Y-%m-%d %H:%M:%S} | {_cell(entry.event)} |"
            for entry in sorted(pm.timeline, key=lambda entry: entry.at)
        ),
        "",
        "## Root cause",
        "",
        pm.root_cause.strip() or "—",
        "",
        "## What went well",
        "",
        *_bullets(pm.went_well),
        "",
        "## What did not",
        "",
        *_bullets(pm.went_badly),
        "",
        "## Action items",
        "",
        "| # | Action | Owner |",
        "|---|---|---|",
        *(
            f"| {number} | {_cell(action.item)} | {_cell(action.owner)} |"
            for number, action in enumerate(pm.action_items, start=1)
        ),
        "",
        "---",
        "",
        f"_{_footer(pm)}_",
        "",
    ]
    return "\n".join(lines)


def postmortem_filename(incident: Incident) -> str:
    """`postmortem-INC-7K2M9.md`: safe as a file name whatever the id holds."""
    return f"postmortem-{_UNSAFE_FILENAME.sub('-', incident.id).strip('-.') or 'incident'}.md"


def _footer(pm: PostMortem) -> str:
    if pm.written_by is AnalyzerKind.CLAUDE:
        return f"{one_line(pm.note)} Cost ${pm.cost_usd:.4f}."
    return one_line(pm.note)


def _bullets(points: Sequence[str]) -> list[str]:
    return [f"- {one_line(point)}" for point in points] or ["- —"]


def _cell(text: str) -> str:
    """Text as one Markdown table cell: on one line, and with its pipes escaped (a bare pipe
    starts a new column)."""
    return one_line(text).replace("|", "\\|")
