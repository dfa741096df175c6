"""What follows a change a person makes to an incident, one way for every way in: a Slack
button or `/incident` (bot/slack_app.py, bot/slack_confirm.py) and an MCP tool
(bot/mcp_server/tools.py) re-render the message, write in its thread and tell the notifier
alike, so that no way in forgets a step another takes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analysis.models import Analysis
from blocks.kit import Message, section
from blocks.text import escape
from blocks.thread import confirmed_note, silenced_note
from bot.outcomes import effects_of
from bot.slack_pacing import Priority
from incidents.lifecycle import RecordOutcome
from incidents.models import Incident, IncidentStatus, Silence
from ingest.pipeline import IngestReport
from notify.dispatch import Notifier, no_permalink

if TYPE_CHECKING:
    from bot.slack_publisher import SlackPublisher


@dataclass
class Followers:
    """What a person's change sets off beyond the store, whether they clicked, typed
    `/incident` or asked through MCP: the Slack message and its thread (when this process
    runs Slack; otherwise the bot's resync picks the change up), and the notifier's outbox."""

    slack: SlackPublisher | None = None
    notifier: Notifier | None = None
    permalink: Callable[[str], Awaitable[str | None]] = no_permalink

    async def transitioned(self, incident: Incident, actor: str) -> None:
        if self.slack is not None:
            await self.slack.sync(incident.id, shown_by_user=True)
        if self.notifier is None:
            return
        if incident.status is IncidentStatus.ACKNOWLEDGED:
            await self.notifier.acknowledged(incident, actor)
        elif incident.status is IncidentStatus.RESOLVED:
            await self.notifier.resolved(incident, actor)

    async def noted(self, incident_id: str, text: str) -> None:
        if self.slack is not None:
            message = Message(text=text, blocks=[section(escape(text))])
            await self.slack.thread_note(incident_id, message, Priority.USER)

    async def confirmed(self, incident: Incident) -> None:
        if self.slack is not None:
            await self.slack.sync(incident.id, shown_by_user=True)
            await self.slack.thread_note(incident.id, confirmed_note(incident), Priority.USER)

    async def silenced(self, incident_id: str, silence: Silence) -> None:
        if self.slack is not None:
            await self.slack.sync(incident_id, shown_by_user=True)
            await self.slack.thread_note(incident_id, silenced_note(silence), Priority.USER)

    async def recorded(self, report: IngestReport) -> None:
        """A pasted alert's outcomes, published before it is analysed (an investigation can
        take minutes), as `/incident analyze` publishes them."""
        if self.slack is not None:
            for outcome in report.outcomes:
                await self.slack.publish(outcome)

    async def analyzed(self, outcome: RecordOutcome, analysis: Analysis) -> None:
        """Its analysis, in the message when the outcome is one a received alert would have
        analysed (`bot.outcomes.EFFECTS`): a repeat's message keeps the analysis it has."""
        if self.slack is not None and outcome.incident is not None and effects_of(outcome).analyze:
            await self.slack.publish_analysis(outcome.incident, analysis)
