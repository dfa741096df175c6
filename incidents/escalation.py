"""When an unacknowledged incident is due a reminder: a pure function of the incident and now.

Nothing about reminders is kept in memory: which round is due is computed from the stored
incident (its severity, status, and when it last opened), and each round is recorded as a
delivery keyed by the opening and the round. A restart, or a second replica, therefore works
out the same answer and finds the same round already recorded, so a round is sent once, and
a process that was down for three intervals sends the current round, not three at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from incidents.models import Incident, IncidentStatus, Severity


@dataclass(frozen=True)
class EscalationPolicy:
    """`delays[severity]` is how long an incident may wait unacknowledged before each
    reminder (None: that severity never escalates); `repeats` bounds the reminders."""

    delays: Mapping[Severity, timedelta | None]
    repeats: int = 3

    def due_round(self, incident: Incident, now: datetime) -> int:
        """The reminder round due at `now`: 0 before the first delay has passed (or when the
        incident is owned, resolved, or of a severity that does not escalate), then 1, 2, …
        one more per delay, never more than `repeats`."""
        delay = self.delays.get(incident.severity)
        if delay is None or delay <= timedelta(0) or incident.status is not IncidentStatus.OPEN:
            return 0
        waited = now - waiting_since(incident)
        return min(self.repeats, max(0, int(waited / delay)))

    @property
    def enabled(self) -> bool:
        return any(delay for delay in self.delays.values())


def waiting_since(incident: Incident) -> datetime:
    """When the incident last became unowned: its opening, or its latest reopening (which
    clears the acknowledgement, so the wait starts over)."""
    if incident.reopen_count and incident.recent_reopens:
        return incident.recent_reopens[-1]
    return incident.opened_at


def escalation_nonce(incident: Incident, round_number: int) -> str:
    """Which opening and which round a reminder belongs to: the key that makes it once."""
    return f"{incident.reopen_count}-{round_number}"
