"""What an analysis says, and what it cost.

`Diagnosis` is exactly what the analyzer fills in: its JSON schema is the tool Claude is forced
to call, and the offline analyzer fills the same model. `Analysis` adds what the process knows
and the model does not: which analyzer and model, the prompt version, tokens, cost, cache.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from incidents.models import Severity

TEXT_LIMIT = 2000


class RemediationStep(BaseModel):
    action: str = Field(max_length=TEXT_LIMIT, description="What to do, as an imperative sentence.")
    command: str | None = Field(
        default=None,
        max_length=TEXT_LIMIT,
        description="The exact CLI command or AWS console path, when one applies.",
    )


class Alternative(BaseModel):
    hypothesis: str = Field(max_length=TEXT_LIMIT)
    why_less_likely: str = Field(max_length=TEXT_LIMIT)


class Evidence(BaseModel):
    claim: str = Field(max_length=500, description="One claim the root cause rests on.")
    calls: list[int] = Field(
        default_factory=list,
        max_length=8,
        description="The numbers of the tool calls whose results support the claim (the N "
        "of a result's [call #N]).",
    )


class Diagnosis(BaseModel):
    """An incident analysis for the engineer on call."""

    # This docstring and the field descriptions are the tool schema Claude fills: prompt text.

    root_cause: str = Field(
        max_length=TEXT_LIMIT,
        description="The most likely root cause, specific to this alert, in 1-3 sentences.",
    )
    alternatives: list[Alternative] = Field(
        default_factory=list,
        max_length=4,
        description="Other causes considered, each with why it ranks below the root cause.",
    )
    severity: Severity = Field(description="CRITICAL, HIGH, MEDIUM or LOW.")
    severity_justification: str = Field(
        max_length=TEXT_LIMIT, description="Why this severity, in terms of user impact."
    )
    impact: str = Field(
        max_length=TEXT_LIMIT, description="Who and what is affected, and the blast radius."
    )
    remediation_steps: list[RemediationStep] = Field(
        min_length=1,
        max_length=8,
        description="Ordered, concrete steps; commands or console paths where they apply.",
    )
    check_first: list[str] = Field(
        default_factory=list,
        max_length=5,
        description="What the on-call engineer should look at in the first minute.",
    )
    confidence: float = Field(
        ge=0,
        le=1,
        description="0-1: how well the evidence supports the root cause. Be honest.",
    )
    evidence: list[Evidence] = Field(
        default_factory=list,
        max_length=6,
        description="When you called tools: each claim of the root cause with the tool calls "
        "that support it. Empty when no tool was called.",
    )


class AnalyzerKind(StrEnum):
    CLAUDE = "claude"
    OFFLINE = "offline"


class RelatedIncident(BaseModel):
    incident_id: str
    title: str
    status: str
    outcome: str


class PastLesson(BaseModel):
    """What the team confirmed about an earlier incident of the same or a similar problem:
    given to the analysis as a hypothesis, and shown on the message."""

    incident_id: str
    title: str
    opened_at: datetime
    same_alert: bool
    cause: str | None = None
    fix: str | None = None
    confirmed_by: str


class ToolCall(BaseModel):
    """One tool call of an investigation, as "show the work" renders it: arguments and
    result already redacted, the result cut to one line. `number` is what the analysis's
    evidence cites (`#3`)."""

    number: int = 0
    step: int
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    result: str
    is_error: bool = False
    seconds: float = 0.0


class InvestigationTrace(BaseModel):
    """What the investigation loop did: kept on the analysis so it can be shown and audited."""

    steps: int = 0
    calls: list[ToolCall] = Field(default_factory=list)
    stopped: str = Field(
        default="concluded",
        description="Why the loop ended: concluded, step limit, or budget.",
    )
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0


class Analysis(Diagnosis):
    analyzer: AnalyzerKind
    model: str | None = None
    prompt_version: str
    fingerprint: str
    related_incidents: list[RelatedIncident] = Field(default_factory=list)
    lessons: list[PastLesson] = Field(default_factory=list)
    context_notes: list[str] = Field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    cached: bool = False
    created_at: datetime
    investigation: InvestigationTrace | None = None


class ThreadMessage(BaseModel):
    """One message of an incident's thread, as a follow-up question sees it."""

    author: str = Field(description="'engineer' or 'bot'")
    text: str


class FollowUp(BaseModel):
    text: str
    model: str
    cost_usd: float
