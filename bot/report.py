"""What `incident-bot analyze` prints: a readable report, or one JSON object for scripts."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from analysis.models import Analysis
from bot.console import analysis_lines
from incidents.models import Alert, Incident, Occurrence
from incidents.store import CostTotal
from ingest.pipeline import IngestReport

# Wider than any table of whole values: the width a table is measured at off a terminal.
_NO_WINDOW = 1_000_000


def as_json(report: IngestReport, analyses: dict[str, Analysis]) -> dict[str, Any]:
    """`incident` and `analysis` are those of the first alert; `incidents` lists every incident
    touched, each with its analysis."""
    incidents = _incidents(report)
    return {
        "alerts": [
            {
                **alert_json(o.alert),
                "outcome": o.kind.value,
                "incident_id": o.incident.id if o.incident else None,
            }
            for o in report.outcomes
        ],
        "incident": _incident_json(incidents[0]) if incidents else None,
        "incidents": [
            {**_incident_json(i), "analysis": _analysis_json(analyses.get(i.id))} for i in incidents
        ],
        "rejected": [r.reason for r in report.rejections],
        "analysis": _analysis_json(analyses.get(incidents[0].id)) if incidents else None,
    }


def _analysis_json(analysis: Analysis | None) -> dict[str, Any] | None:
    return analysis.model_dump(mode="json") if analysis else None


def _incident_json(incident: Incident) -> dict[str, Any]:
    return incident.model_dump(mode="json", exclude={"recent_reopens", "version"})


def _incidents(report: IngestReport) -> list[Incident]:
    """The latest state of each incident touched, in the order first touched."""
    latest: dict[str, Incident] = {}
    for outcome in report.outcomes:
        if outcome.incident is not None:
            latest[outcome.incident.id] = outcome.incident
    return list(latest.values())


def render(report: IngestReport, analyses: dict[str, Analysis], console: Console) -> None:
    for incident in _incidents(report):
        alerts = [o for o in report.outcomes if o.incident and o.incident.id == incident.id]
        table = Table(show_header=True, header_style="bold", expand=True)
        for column in ("alert", "severity", "status", "source / parser", "fingerprint"):
            table.add_column(column, overflow="fold")
        for outcome in alerts[:20]:
            alert = outcome.alert
            table.add_row(
                escape(alert.title),
                alert.severity.value,
                alert.status.value,
                f"{escape(alert.source)} / {alert.parser}",
                alert.fingerprint,
            )
        if len(alerts) > 20:
            table.add_row(f"… and {len(alerts) - 20} more", "", "", "", "")
        facts = (
            f"[bold]{incident.severity.value}[/] · {incident.status.value} · "
            f"{incident.occurrences} occurrence(s) · "
            f"opened {incident.opened_at:%Y-%m-%d %H:%M:%S} UTC"
            + (f" · resource {escape(incident.resource)}" if incident.resource else "")
        )
        message = alerts[0].alert.message if alerts else ""
        body = Group(
            facts,
            escape(message[:1500]) if message else "",
            table,
            *(
                analysis_lines(incident, analyses[incident.id])
                if incident.id in analyses
                else ["[dim]No analysis.[/]"]
            ),
        )
        console.print(
            Panel(body, title=f"{incident.id} · {escape(incident.title)}", title_align="left")
        )
    for rejection in report.rejections:
        console.print(f"[yellow]kept as dead letter:[/] {escape(rejection.reason)}")


def render_costs(totals: list[CostTotal], console: Console) -> None:
    table = Table("day", "source", "analyses", "Claude calls", "cost (USD)", title="Analysis cost")
    for total in totals:
        table.add_row(
            total.day,
            escape(total.source),
            str(total.analyses),
            str(total.model_calls),
            f"{total.cost_usd:.4f}",
        )
    table.add_row(
        "total",
        "",
        str(sum(t.analyses for t in totals)),
        str(sum(t.model_calls for t in totals)),
        f"{sum(t.cost_usd for t in totals):.4f}",
        style="bold",
    )
    _print_whole(table, console)


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "source": alert.source,
        "parser": alert.parser,
        "title": alert.title,
        "severity": alert.severity.value,
        "status": alert.status.value,
        "resource": alert.resource,
        "occurred_at": alert.occurred_at.isoformat(),
        "received_at": alert.received_at.isoformat(),
        "fingerprint": alert.fingerprint,
        "template": alert.template,
    }


def render_alerts(found: list[Occurrence], title: str, console: Console) -> None:
    table = Table("received", "incident", "alert", "source", "status", title=title)
    for occurrence in found:
        alert = occurrence.alert
        table.add_row(
            f"{alert.received_at:%Y-%m-%d %H:%M:%S}",
            occurrence.incident_id or "-",
            escape(alert.title),
            escape(alert.source),
            alert.status.value,
        )
    _print_whole(table, console)


def _print_whole(table: Table, console: Console) -> None:
    """On a terminal the table fits the window, and a value too long for it ends in "…". A
    pipe or a file has no window: rich assumes 80 columns (or `COLUMNS`) there and would cut
    the very alert names a script greps for, so off a terminal the table is as wide as its
    longest values need."""
    if not console.is_terminal:
        options = console.options.update_width(_NO_WINDOW)
        needed = console.measure(table, options=options).maximum
        if needed > console.width:
            table.width = needed
    console.print(table, crop=console.is_terminal)
