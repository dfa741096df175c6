"""The shapes the analyzer reasons with: weighted patterns, hits, evidence and the rendered
text of one class (a `Playbook`), plus the numbers that tune scoring and quoting.

They live apart from the code that fills them so the signature library, the scorer and the
class modules can share them without importing each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from analysis.models import RemediationStep

# Scoring. A metric match is as strong as a line that names the failure outright: the alarm
# measures exactly that condition.
STRONG = 3.0
METRIC_WEIGHT = STRONG
CONTEXT_FACTOR = 0.5
MAX_SCORE = 8.0
# Below this a class is a lead, not a diagnosis: one vague word does not name a failure.
MIN_SCORE = 1.5
# Confidence: the class's base plus this much per point of score, within the honest band.
CONFIDENCE_PER_POINT = 0.05
MIN_CONFIDENCE = 0.2
MAX_CONFIDENCE = 0.55
UNKNOWN_CONFIDENCE = 0.1
# A runner-up this close (same tier) makes the call a coin toss, and the confidence says so.
AMBIGUITY_RATIO = 0.75
AMBIGUITY_PENALTY = 0.05
# A vendor's exact error text in the alert itself is worth more than any pile of hints.
EXACT_BONUS = 0.1

# How much alert text may be echoed: quotes are one line, cut around the match.
QUOTE_CHARS = 100
QUOTE_LEAD = 25
TITLE_CHARS = 80
NAME_CHARS = 100
LINK_CHARS = 200
MATCH_TEXT_CHARS = 8000

# What the evidence window around the alert spans in the commands.
LOOKBACK = timedelta(hours=1)
LOOKAHEAD = timedelta(minutes=15)
HISTORY = timedelta(days=1)


@dataclass(frozen=True)
class Signal:
    """A pattern and what a match says about its class (see the module docstring's weights)."""

    pattern: re.Pattern[str]
    weight: float


@dataclass(frozen=True)
class Metric:
    """One CloudWatch metric an alarm watches, as the parsers render it:
    `AWS/EC2/CPUUtilization[InstanceId=i-0abc]`."""

    namespace: str
    name: str
    dimensions: dict[str, str]


@dataclass(frozen=True)
class Hit:
    """One piece of evidence: its weight where it was found, whether its signal names the
    failure outright (wherever it was found), whether it did so in the alert itself (`exact`),
    how to quote it, and the whole line it is on
    (two classes quoting one line differently still found the same line)."""

    weight: float
    strong: bool
    exact: bool
    quote: str
    line: str


@dataclass(frozen=True)
class Evidence:
    """What a class found: its score, and its hits strongest first, already phrased for text."""

    score: float
    hits: tuple[Hit, ...]

    @property
    def lead(self) -> str:
        return self.hits[0].quote

    @property
    def named_outright(self) -> bool:
        return any(hit.strong for hit in self.hits)


@dataclass(frozen=True)
class Playbook:
    """The rendered text of one class for one alert.

    `hypothesis` is the one-line version used when the class is only the runner-up; `stakes`
    says why the failure matters to users (the severity justification quotes it); `outage`
    marks failures that stop user requests by themselves, the only ones whose severity may be
    raised (see `_severity`).
    """

    root_cause: str
    hypothesis: str
    impact: str
    stakes: str
    outage: bool
    steps: tuple[RemediationStep, ...]
    check_first: tuple[str, ...]
