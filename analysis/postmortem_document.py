"""The post-mortem document both writers produce: its model, its size limits, and how its text
is cut to them. The limits bound what a model may write and what a Slack file or message can
show; cutting marks the cut (`…`) so that a reader never takes a clipped line for the whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from analysis.models import Analysis, AnalyzerKind, ThreadMessage
from incidents.models import Incident, Occurrence, TimelineEvent
from incidents.times import as_utc

TITLE_LIMIT = 200


TEXT_LIMIT = 2000


ROOT_CAUSE_LIMIT = 3000


ITEM_LIMIT = 500


TIMELINE_MAX = 60


POINTS_MAX = 10


ACTION_ITEMS_MAX = 12


_ELLIPSIS = "…"


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


class TimelineEntry(BaseModel):
    at: UtcDatetime = Field(description="When it happened, ISO 8601 in UTC, as given.")
    event: str = Field(max_length=ITEM_LIMIT, description="What happened, in one sentence.")


class Narrative(BaseModel):
    """The sections every post-mortem has, however it was written."""

    # The docstrings and field descriptions below are the tool schema Claude fills: prompt text.

    title: str = Field(
        max_length=TITLE_LIMIT, description="A short, factual title naming what failed."
    )
    summary: str = Field(
        max_length=TEXT_LIMIT,
        description="What happened, how long it lasted and how it ended, in 2-4 sentences.",
    )
    impact: str = Field(
        max_length=TEXT_LIMIT,
        description="Who and what was affected and for how long; say when it is not known.",
    )
    timeline: list[TimelineEntry] = Field(
        max_length=TIMELINE_MAX,
        description="The key moments, oldest first, only from the given timeline and thread.",
    )
    root_cause: str = Field(
        max_length=ROOT_CAUSE_LIMIT,
        description="The cause the evidence supports, in systems terms, never a person; "
        "say whether it is confirmed or a hypothesis.",
    )
    went_well: list[str] = Field(
        max_length=POINTS_MAX,
        description="What helped the response, one fact each.",
    )
    went_badly: list[str] = Field(
        max_length=POINTS_MAX,
        description="What slowed or hurt the response, one fact each, without blame.",
    )


class PostMortemDraft(Narrative):
    """A blameless post-mortem draft for the team's review."""

    action_items: list[Annotated[str, Field(max_length=ITEM_LIMIT)]] = Field(
        max_length=ACTION_ITEMS_MAX,
        description="Concrete follow-up actions, one imperative sentence each, "
        "without owners or dates.",
    )


class ActionItem(BaseModel):
    item: str
    owner: str = ""
    """Always blank in a draft: owners are chosen at the review, not by whoever drafted it."""


class PostMortem(Narrative):
    """A post-mortem draft and where it came from, so that nobody mistakes it for a finding."""

    action_items: list[ActionItem]
    written_by: AnalyzerKind
    model: str | None = None
    cost_usd: float = 0.0
    note: str
    """Who drafted it from what: the offline note says it read the timeline alone."""


class ThreadPost(ThreadMessage):
    """A thread message with the time it was posted (Slack's `ts`), so that Claude can place
    it on the timeline; a plain `ThreadMessage` is still read, only not placed."""

    at: UtcDatetime | None = None


@dataclass(frozen=True)
class PostMortemInput:
    """Everything a post-mortem may draw on; the offline writer reads only the incident, its
    timeline and its stored analysis."""

    incident: Incident
    analysis: Analysis | None
    timeline: Sequence[TimelineEvent]
    thread: Sequence[ThreadMessage] = ()
    occurrences: Sequence[Occurrence] = ()
    """The incident's recent alerts, newest first, as `Store.occurrences` returns them."""


def one_line(text: str) -> str:
    return " ".join(text.split())


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - len(_ELLIPSIS)].rstrip() + _ELLIPSIS


def utc_time(moment: datetime) -> str:
    return f"{as_utc(moment):%Y-%m-%d %H:%M} UTC"


def count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def times(number: int) -> str:
    return "once" if number == 1 else f"{number} times"


def actor_label(actor: str) -> str:
    if actor.startswith("alert:"):
        return f"the {actor.removeprefix('alert:')} alert"
    return "the bot" if actor == "bot" else actor


def analysis_label(analysis: Analysis) -> str:
    if analysis.analyzer is AnalyzerKind.CLAUDE:
        return f"Claude analysis ({analysis.model})" if analysis.model else "Claude analysis"
    return "offline analysis (built-in rules)"
