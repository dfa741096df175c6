"""What the team confirmed the last times this problem, or one like it, broke: as the next
analysis reads it and as the incident message shows it.

An earlier cause is a hypothesis for Claude to check against this incident's evidence, never
the conclusion: one alarm fires for more than one reason, and a fix can have held. The
section says so in the words Claude reads, and the prompt repeats it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from analysis import prompting
from analysis.models import PastLesson
from incidents.lifecycle import IncidentService, short_duration
from incidents.models import Incident
from incidents.store import AnalysisStore
from incidents.times import as_utc

LESSONS = 2
"""Confirmed incidents the analysis is given: the first two in `rank_related`'s order, which
puts the same alert's newest first."""

CAUTION = (
    "These are what the team confirmed about earlier incidents. Treat each as a hypothesis: "
    "check it against this incident's evidence before you rely on it, and say in the root "
    "cause whether this incident's evidence supports it."
)


def record_confirmation(
    service: IncidentService,
    store: AnalysisStore,
    incident_id: str,
    actor: str,
    cause: str | None,
    fix: str | None,
    *,
    replace: bool = False,
) -> Incident:
    """What the team confirmed, stored on the incident; and the problem's cached analysis
    forgotten as of the confirmation, since it was made without knowing it and the problem's
    next incident must not reuse it; nor may an analysis of any of the problem's incidents
    begun before it refill the cache (the store refuses it). Synchronous, as the store is:
    Slack and MCP run it in a worker thread."""
    incident = service.confirm(incident_id, actor, cause=cause, fix=fix, replace=replace)
    assert incident.confirmed is not None  # confirm() sets it
    store.forget_cached_analysis(
        incident.fingerprint, prompting.prompt_version(), incident.confirmed.at
    )
    return incident


def lessons_from(ranked: Sequence[tuple[Incident, str]]) -> list[PastLesson]:
    """The first `LESSONS` incidents of `rank_related`'s order (same alert first, newest
    first) that have a confirmed cause or fix."""
    lessons = []
    for past, why in ranked:
        confirmed = past.confirmed
        if confirmed is None:
            continue
        lessons.append(
            PastLesson(
                incident_id=past.id,
                title=past.title,
                opened_at=past.opened_at,
                same_alert=why == "same alert",
                cause=confirmed.cause,
                fix=confirmed.fix,
                confirmed_by=confirmed.by,
            )
        )
        if len(lessons) == LESSONS:
            break
    return lessons


def lesson_line(
    lesson: PastLesson,
    now: datetime,
    *,
    quote: Callable[[str], str] = str,
    person: Callable[[str], str] = str,
) -> str:
    """`last time (INC-7, 3d ago): cause …, fixed by … (confirmed by U7)`; `quote` and
    `person` format the team's words and the confirmer for where the line goes (Slack
    escapes one and mentions the other)."""
    when = f"{short_duration(as_utc(now) - as_utc(lesson.opened_at))} ago"
    which = "last time" if lesson.same_alert else "a similar incident"
    said = [
        f"cause {quote(lesson.cause)}" if lesson.cause else "",
        f"fixed by {quote(lesson.fix)}" if lesson.fix else "",
    ]
    return (
        f"{which} ({lesson.incident_id}, {when}): {', '.join(part for part in said if part)} "
        f"(confirmed by {person(lesson.confirmed_by)})"
    )


def lessons_text(lessons: Sequence[PastLesson], now: datetime) -> str:
    """The `confirmed_causes` section of the evidence."""
    return "\n".join([*(lesson_line(lesson, now) for lesson in lessons), CAUTION])
