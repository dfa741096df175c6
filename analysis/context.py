"""The evidence an analyzer gets beside the alert: metric datapoints, alarm history, nearby log
lines, the incident's timeline, similar past incidents.

Each gatherer returns a `ContextSection` or raises; the engine bounds each in time and size,
and turns a failure into a note on the analysis instead of a missing analysis.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from pydantic import BaseModel, Field

from analysis.models import PastLesson, RelatedIncident
from incidents.models import Alert, Incident

SECTION_CHARS = 6000


class ContextSection(BaseModel):
    """One piece of evidence, already rendered as text for the prompt (and kept short)."""

    name: str
    text: str = Field(max_length=SECTION_CHARS)


class AnalysisContext(BaseModel):
    sections: list[ContextSection] = Field(default_factory=list)
    related: list[RelatedIncident] = Field(default_factory=list)
    lessons: list[PastLesson] = Field(default_factory=list)
    notes: list[str] = Field(
        default_factory=list,
        description="What could not be gathered and why: shown on the analysis, never hidden.",
    )

    def section(self, name: str) -> ContextSection | None:
        return next((s for s in self.sections if s.name == name), None)


class Gatherer(Protocol):
    async def gather(self, incident: Incident, alert: Alert) -> AnalysisContext:
        """Never raises for a failing source: that is a note in the returned context."""


@dataclass(frozen=True)
class ContextLimits:
    """How far around the alert each gatherer looks, and how much it may bring back."""

    metric_before: timedelta = timedelta(minutes=60)
    metric_after: timedelta = timedelta(minutes=10)
    metric_points: int = 60
    history_lookback: timedelta = timedelta(hours=24)
    history_items: int = 10
    logs_before: timedelta = timedelta(minutes=2)
    logs_after: timedelta = timedelta(minutes=1)
    log_events: int = 50
    log_pages: int = 5
    timeline_events: int = 40
    related: int = 3
    related_scan: int = 200
    section_chars: int = SECTION_CHARS
