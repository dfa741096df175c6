"""Similar past incidents, and how each one ended: the memory the analysis gets.

Similarity is by title words (Jaccard), digits left out so that `web-1` and `web-2` match: an
incident bot sees a recurring problem under many numbered names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from incidents.lifecycle import short_duration
from incidents.models import Incident, IncidentStatus, TimelineEvent, TimelineKind
from incidents.times import as_utc

# Titles whose word sets overlap at least this much (Jaccard) are "the same kind of problem":
# "High CPU on web-1" and "High CPU on web-2" match, "High CPU" and "Disk full" do not.
SIMILAR_TITLE = 0.5


_WORD = re.compile(r"[a-z0-9]+")


def title_words(title: str) -> frozenset[str]:
    """The words of a title without the ones holding digits (ids, counts, times), which vary
    between occurrences of one kind of problem."""
    return frozenset(
        word for word in _WORD.findall(title.lower()) if len(word) > 1 and not has_digit(word)
    )


def similarity(a: str, b: str) -> float:
    """Jaccard overlap of the two titles' `title_words`."""
    left, right = title_words(a), title_words(b)
    if not left or not right:
        return 0.0
    return len(left & right) / len(left | right)


def rank_related(incident: Incident, candidates: Iterable[Incident]) -> list[tuple[Incident, str]]:
    """Earlier incidents of the same fingerprint (newest first), then earlier incidents of the
    same source whose title is similar (most similar first, then newest), each with why it
    was picked."""
    opened = as_utc(incident.opened_at)
    earlier = [c for c in candidates if c.id != incident.id and as_utc(c.opened_at) <= opened]
    earlier.sort(key=lambda c: c.opened_at, reverse=True)
    same = [(c, "same alert") for c in earlier if c.fingerprint == incident.fingerprint]
    scored = [
        (similarity(incident.title, c.title), c)
        for c in earlier
        if c.fingerprint != incident.fingerprint and c.source == incident.source
    ]
    alike = sorted(
        ((score, c) for score, c in scored if score >= SIMILAR_TITLE),
        key=lambda pair: pair[0],
        reverse=True,
    )
    return [*same, *((c, f"similar title {score:.2f}") for score, c in alike)]


def outcome(incident: Incident, events: Sequence[TimelineEvent]) -> str:
    """How an incident ended, or where it stands: `resolved by alert:cloudwatch after 12m`,
    `acknowledged by U123, still open`. The timeline names who acted; the incident's own
    fields stand in when its timeline lacks the event."""
    opened = as_utc(incident.opened_at)
    if incident.status is IncidentStatus.RESOLVED:
        event = last_event(events, TimelineKind.RESOLVED)
        actor = event.actor if event else incident.resolved_by or "unknown"
        at = event.at if event else incident.resolved_at
        text = f"resolved by {actor}" + (
            f" after {short_duration(as_utc(at) - opened)}" if at else ""
        )
    elif incident.status is IncidentStatus.ACKNOWLEDGED:
        event = last_event(events, TimelineKind.ACKNOWLEDGED)
        actor = event.actor if event else incident.acknowledged_by or "unknown"
        text = f"acknowledged by {actor}, still open"
    else:
        text = "unacknowledged, still open"
    extras = [
        f"{incident.occurrences} alerts" if incident.occurrences > 1 else "",
        f"reopened {incident.reopen_count}x" if incident.reopen_count else "",
        "flapping" if incident.flapping else "",
    ]
    shown = ", ".join(e for e in extras if e)
    return f"{text} ({shown})" if shown else text


def last_event(events: Sequence[TimelineEvent], kind: TimelineKind) -> TimelineEvent | None:
    return next((e for e in reversed(events) if e.kind is kind), None)


def has_digit(word: str) -> bool:
    return any(ch.isdigit() for ch in word)
