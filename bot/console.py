"""The console publisher: what `incident-bot run` shows when no Slack tokens are set.

It prints the same events the Slack publisher will post: a new incident, repeats (coalesced
to one line per incident per interval), a reopen, a resolution. Alert text is printed as
plain text (rich markup is escaped), so an alert cannot restyle the terminal.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from rich.console import Console
from rich.markup import escape

from analysis.models import Analysis
from blocks.investigation import call_arguments, citations, investigation_summary
from blocks.kit import Message
from bot.throttle import Throttle
from incidents.lifecycle import OutcomeKind, RecordOutcome, short_duration
from incidents.models import Incident, Severity

logger = logging.getLogger(__name__)

_SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
}


class ConsolePublisher:
    def __init__(self, console: Console, update_interval: timedelta) -> None:
        self.console = console
        self._repeats: Throttle[Incident] = Throttle(
            update_interval.total_seconds(), self._print_repeat
        )

    async def publish(self, outcome: RecordOutcome) -> None:
        incident = outcome.incident
        if incident is None:
            logger.info(
                "%s alert %r matched no open incident",
                outcome.kind.value,
                outcome.alert.title,
            )
            return
        if outcome.kind is OutcomeKind.OPENED:
            self._print_headline("NEW", incident)
            self.console.print(
                f"    {escape(outcome.alert.message.splitlines()[0])}"
                if outcome.alert.message
                else "",
                highlight=False,
            )
        elif outcome.kind in (OutcomeKind.REPEATED, OutcomeKind.MEMBER_RESOLVED):
            await self._repeats.offer(incident.id, incident)
        elif outcome.kind is OutcomeKind.REOPENED:
            self._repeats.discard(incident.id)
            flapping = " [magenta](flapping)[/]" if incident.flapping else ""
            self._print_headline("REOPENED", incident, flapping)
        elif outcome.kind is OutcomeKind.RESOLVED:
            self._repeats.discard(incident.id)
            duration = (incident.resolved_at or incident.last_seen_at) - incident.opened_at
            self._print_headline(
                "RESOLVED",
                incident,
                f" after {short_duration(duration)}, {incident.occurrences} occurrence(s)",
            )

    async def publish_analysis(self, incident: Incident, analysis: Analysis) -> None:
        for line in analysis_lines(incident, analysis):
            self.console.print(line, highlight=False)

    async def publish_analysis_failure(self, incident: Incident) -> None:
        self.console.print(
            f"[yellow]ANALYSIS[/] {incident.id} failed; see the log", highlight=False
        )

    async def post_in_thread(self, incident_id: str, message: Message) -> str:
        """A thread reply (an escalation reminder) as one line under the incident's id."""
        text = " ".join(message_lines(message))
        self.console.print(
            f"[bold yellow]NOTE    [/] {incident_id} {escape(text)}", highlight=False
        )
        return "console"

    async def post_to_channel(self, message: Message) -> str:
        """A message of the bot's own (the daily digest), block by block."""
        for line in message_lines(message):
            self.console.print(escape(line), highlight=False)
        return "console"

    async def close(self) -> None:
        await self._repeats.flush()

    def _print_headline(self, label: str, incident: Incident, suffix: str = "") -> None:
        style = _SEVERITY_STYLE[incident.severity]
        where = f" on {escape(incident.resource)}" if incident.resource else ""
        self.console.print(
            f"[{style}]{label:<8}[/] {incident.id} [{style}]{incident.severity.value}[/] "
            f"{escape(incident.title)} [dim]({escape(incident.source)}{where})[/]{suffix}",
            highlight=False,
        )

    async def _print_repeat(self, incident: Incident) -> None:
        firing = f", {len(incident.firing_members)} still firing" if incident.firing_members else ""
        self.console.print(
            f"[dim]REPEAT  [/] {incident.id} {escape(incident.title)}: "
            f"{incident.occurrences} occurrences{firing}, last seen "
            f"{incident.last_seen_at:%H:%M:%S} UTC",
            highlight=False,
        )


def message_lines(message: Message) -> list[str]:
    """The text of a Block Kit message's header, sections, fields and context, in order: the
    console reads what Slack would show, without the markup."""
    lines: list[str] = []
    for block in message.blocks:
        parts = [block.get("text")] + list(block.get("fields") or [])
        parts += list(block.get("elements") or []) if block.get("type") == "context" else []
        lines += [str(part["text"]) for part in parts if isinstance(part, dict) and "text" in part]
    return lines or [message.text]


def analysis_lines(incident: Incident, analysis: Analysis) -> list[str]:
    """The analysis as rich-markup lines; every text from the alert or the model is escaped."""
    where = "cached" if analysis.cached else f"${analysis.cost_usd:.4f}"
    lines = [
        f"[bold]ANALYSIS[/] {incident.id} [dim]({analysis.analyzer.value}"
        f"{' ' + analysis.model if analysis.model else ''}, {where}, "
        f"confidence {analysis.confidence:.0%})[/]",
        f"    [bold]Root cause:[/] {escape(analysis.root_cause)}",
        f"    [bold]Severity:[/] {_severity_line(analysis)}",
        f"    [bold]Impact:[/] {escape(analysis.impact)}",
        "    [bold]First steps:[/]",
    ]
    for number, step in enumerate(analysis.remediation_steps, start=1):
        lines.append(f"      {number}. {escape(step.action)}")
        if step.command:
            lines.append(f"         [cyan]{escape(step.command)}[/]")
    if analysis.check_first:
        lines.append(f"    [bold]Check first:[/] {escape('; '.join(analysis.check_first))}")
    for related in analysis.related_incidents:
        lines.append(
            f"    [dim]Similar: {related.incident_id} {escape(related.title)}: "
            f"{escape(related.outcome)}[/]"
        )
    for note in analysis.context_notes:
        lines.append(f"    [dim]Note: {escape(note)}[/]")
    return lines + investigation_lines(analysis)


def investigation_lines(analysis: Analysis) -> list[str]:
    """ "How I investigated", as the thread shows it: each call, then the evidence."""
    trace = analysis.investigation
    if trace is None:
        return []
    lines = [f"    [bold]How I investigated:[/] {investigation_summary(trace)}"]
    for call in trace.calls:
        failed = "[red]failed:[/] " if call.is_error else ""
        lines.append(
            f"      #{call.number} (step {call.step}) {escape(call.tool)} "
            f"[cyan]{escape(call_arguments(call.arguments))}[/] → {failed}{escape(call.result)}"
        )
    for item in analysis.evidence:
        lines.append(f"    [bold]Evidence:[/] {escape(item.claim)} — {citations(item)}")
    return lines


def _severity_line(analysis: Analysis) -> str:
    """The level, then why; without repeating the level when the justification opens with it."""
    justification = escape(analysis.severity_justification)
    level = analysis.severity.value
    return justification if justification.startswith(level) else f"{level}: {justification}"
