"""Post-mortem drafts on request: from Slack (the button on a resolved incident, or
`/incident postmortem <id>`) and from `incident-bot postmortem <id>`.

Claude drafts it when it is configured; when it is not, or cannot answer now, the offline
writer drafts it from the timeline, and the draft says which (and why) in its footer, so a
person always gets a draft to start from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from datetime import timedelta
from typing import Protocol

from analysis.claude import ClaudeError
from analysis.models import Analysis, ThreadMessage
from analysis.postmortem import PostMortemWriter
from analysis.postmortem_document import PostMortem, PostMortemInput
from analysis.postmortem_offline import offline_postmortem
from incidents.models import Incident, Severity
from incidents.offload import Offload
from incidents.store import AnalysisStore, IncidentStore

logger = logging.getLogger(__name__)

RECENT_ALERTS = 5


class IncidentMissingError(LookupError):
    """No incident has that id."""


class PostMortemStore(IncidentStore, AnalysisStore, Protocol):
    """What a draft is made of: the incident, its alerts and timeline, and its analysis."""


class PostMortems:
    def __init__(
        self,
        store: PostMortemStore,
        writer: PostMortemWriter | None,
        *,
        ack_targets: Callable[[Severity], timedelta | None] = lambda severity: None,
        executor: Executor | None = None,
    ) -> None:
        """`ack_targets(severity)` is how fast an acknowledgement counts as quick in the
        offline draft: the escalation delay of that severity, where one is set."""
        self.store = store
        self.writer = writer
        self.ack_targets = ack_targets
        self._offload = Offload(executor)

    async def draft(
        self, incident_id: str, thread: Sequence[ThreadMessage] = ()
    ) -> tuple[Incident, PostMortem]:
        """The incident and its draft; `IncidentMissingError` when there is no such incident."""
        incident = await self._offload(self.store.get_incident, incident_id)
        if incident is None:
            raise IncidentMissingError(incident_id)
        record = await self._offload(self.store.latest_analysis, incident_id)
        inputs = PostMortemInput(
            incident=incident,
            analysis=Analysis.model_validate_json(record.body) if record else None,
            timeline=await self._offload(self.store.timeline, incident_id),
            thread=thread,
            occurrences=await self._offload(self.store.occurrences, incident_id, RECENT_ALERTS),
        )
        target = self.ack_targets(incident.severity)
        if self.writer is None:
            return incident, offline_postmortem(inputs, ack_target=target)
        try:
            return incident, await self.writer.draft(inputs)
        except ClaudeError as exc:
            logger.warning("Claude could not draft the post-mortem of %s: %s", incident_id, exc)
            return incident, offline_postmortem(inputs, ack_target=target, reason=str(exc))
