"""What a recorded alert sets off, beside its message: an analysis, a metric graph, a page or a
mail. The rules are one table, `EFFECTS`, so that they can be read and tested without Slack;
`OutcomeWork` carries them out off the ingest path.

Order matters and is kept here: an analysis starts as soon as its incident is durable, before
anything is published, so that a publishing failure can delay a message but never cost an
analysis; a graph and the notes of pages and mails write in the message's thread, so they
follow the message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Protocol

from incidents.lifecycle import OutcomeKind, RecordOutcome
from incidents.models import Alert, Incident

if TYPE_CHECKING:
    from analysis.engine import AnalysisEngine
    from analysis.models import Analysis
    from bot.graphs import MetricGraphs
    from notify.dispatch import Notifier

logger = logging.getLogger(__name__)


class Notice(StrEnum):
    """Which notification an outcome sends through the outbound channels."""

    OPENED = "opened"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Effects:
    """What one kind of outcome sets off."""

    analyze: bool = False
    """An analysis of the incident (a cached one when the problem was analysed recently)."""
    graph: bool = False
    """The alarm's metric graph in the thread, unless the incident is flapping (its thread
    would fill with the same picture) or the alert names no metric."""
    notice: Notice | None = None
    """A page or mail through the channels (PagerDuty, Jira, email, Teams) that want it."""


EFFECTS: Final[Mapping[OutcomeKind, Effects]] = {
    OutcomeKind.OPENED: Effects(analyze=True, graph=True, notice=Notice.OPENED),
    OutcomeKind.REOPENED: Effects(analyze=True, graph=True, notice=Notice.OPENED),
    OutcomeKind.RESOLVED: Effects(notice=Notice.RESOLVED),
}
"""Every other outcome (a repeat, an acknowledged or silenced incident's alert, a duplicate)
updates the message and sets off nothing else."""


def effects_of(outcome: RecordOutcome) -> Effects:
    return EFFECTS.get(outcome.kind, Effects())


class Publisher(Protocol):
    """What the work needs of the Slack or console publisher."""

    async def publish(self, outcome: RecordOutcome) -> None: ...
    async def publish_analysis(self, incident: Incident, analysis: Analysis) -> None: ...
    async def publish_analysis_failure(self, incident: Incident) -> None: ...


class OutcomeWork:
    """Carries out `EFFECTS` as background tasks: the receiver has long answered 202 and the
    incident is recorded whatever happens here, so a failure is logged and shown, never
    raised. Analyses and notifications are awaited at a stop (within its deadline); graphs
    are only pictures, so a stop cancels them."""

    def __init__(
        self,
        engine: AnalysisEngine,
        publisher: Publisher,
        notifier: Notifier,
        graphs: MetricGraphs | None,
        concurrency: int,
    ) -> None:
        self.engine = engine
        self.publisher = publisher
        self.notifier = notifier
        self.graphs = graphs
        self._slots = asyncio.Semaphore(concurrency)
        self.awaited: set[asyncio.Task[Any]] = set()
        self.pictures: set[asyncio.Task[Any]] = set()

    def start(self, outcome: RecordOutcome) -> None:
        """Called as soon as the outcome is durable, before its message."""
        if outcome.incident is not None and effects_of(outcome).analyze:
            self._spawn(self._analyze(outcome.incident, outcome.alert), self.awaited)

    async def react(self, outcome: RecordOutcome) -> None:
        """The message, then what writes in its thread."""
        await self.publisher.publish(outcome)
        incident = outcome.incident
        if incident is None:
            return
        effects = effects_of(outcome)
        if (
            effects.graph
            and self.graphs is not None
            and not incident.flapping
            and self.graphs.applies(outcome.alert)
        ):
            self._spawn(self.graphs.post(incident, outcome.alert), self.pictures)
        if effects.notice is not None:
            self._spawn(self._notify(effects.notice, incident), self.awaited)

    async def finish(self) -> None:
        """Wait for the analyses and notifications under way, and for those they start."""
        while self.awaited:
            await asyncio.gather(*list(self.awaited), return_exceptions=True)

    async def cancel(self) -> None:
        for task in [*self.awaited, *self.pictures]:
            task.cancel()
        await asyncio.gather(*self.awaited, *self.pictures, return_exceptions=True)

    def cancel_pictures(self) -> None:
        for task in self.pictures:
            task.cancel()

    def _spawn(self, work: Coroutine[Any, Any, Any], tasks: set[asyncio.Task[Any]]) -> None:
        task = asyncio.create_task(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _analyze(self, incident: Incident, alert: Alert) -> None:
        try:
            async with self._slots:
                analysis = await self.engine.analyze(incident, alert)
        except Exception:  # the task's last stop: nothing above it would report the failure
            logger.exception("analysis of %s failed", incident.id)
            await self.publisher.publish_analysis_failure(incident)
            return
        await self.publisher.publish_analysis(incident, analysis)
        await self.notifier.analysed(incident, analysis)

    async def _notify(self, notice: Notice, incident: Incident) -> None:
        """Pages and mails run beside the ingest path, so that a slow PagerDuty never holds
        an SQS slot or a receiver request; what fails is retried by the outbox."""
        try:
            if notice is Notice.RESOLVED:
                await self.notifier.resolved(incident, incident.resolved_by or "")
            else:
                await self.notifier.opened(incident)
        except Exception:  # the task's last stop: nothing above it would report the failure
            logger.exception("notifications for %s failed", incident.id)
