"""Scoring: how strongly the text supports a class or a signature, and how to quote it.

A class is scored by its strongest hit plus half of the others, so one line that names the
failure outweighs a pile of vague words; quotes are one line cut around the match so no text
echoes more than a short piece of the alert.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analysis.offline.facts import LOG_PREFIX, Facts, clean_name
from analysis.offline.model import (
    AMBIGUITY_PENALTY,
    AMBIGUITY_RATIO,
    CONFIDENCE_PER_POINT,
    EXACT_BONUS,
    MAX_CONFIDENCE,
    MAX_SCORE,
    METRIC_WEIGHT,
    MIN_CONFIDENCE,
    QUOTE_CHARS,
    QUOTE_LEAD,
    STRONG,
    Evidence,
    Hit,
    Signal,
)
from analysis.offline.signatures import Signature

if TYPE_CHECKING:
    from analysis.offline.rulebase import FailureClass


def evidence_for(
    signals: tuple[Signal, ...], metrics: frozenset[str], facts: Facts
) -> Evidence | None:
    """Each signal counts once, where it is found first. The metric goes first among equals:
    for an alarm, the metric it watches says more than words in its name."""
    hits: list[Hit] = []
    metric = next((m for m in facts.metrics if m.name.lower() in metrics), None)
    if metric:
        alarm = f"alarm `{facts.alarm_name}` on " if facts.alarm_name else "the alarm on "
        quote = f"{alarm}`{metric.name}`"
        hits.append(Hit(METRIC_WEIGHT, True, False, quote, quote))
    for signal in signals:
        for source in facts.sources:
            match = signal.pattern.search(source.search)
            if match:
                in_alert = source.factor == 1.0
                quote = source.quote or snippet(source.search, match)
                hits.append(
                    Hit(
                        signal.weight * source.factor,
                        signal.weight >= STRONG,
                        signal.weight >= STRONG and in_alert,
                        f"`{quote}`{source.where}",
                        line_of(source.search, match) + source.where,
                    )
                )
                break
    if not hits:
        return None
    hits.sort(key=lambda hit: hit.weight, reverse=True)
    score = hits[0].weight + 0.5 * sum(hit.weight for hit in hits[1:])
    return Evidence(min(score, MAX_SCORE), tuple(hits))


def _line_bounds(text: str, match: re.Match[str]) -> tuple[int, int]:
    end = text.find("\n", match.end())
    return text.rfind("\n", 0, match.start()) + 1, len(text) if end < 0 else end


def line_of(text: str, match: re.Match[str]) -> str:
    """The whole line a match is on: two classes quoting one line differently still found
    the same line."""
    start, end = _line_bounds(text, match)
    return text[start:end].strip()


def snippet(text: str, match: re.Match[str]) -> str:
    """The line of the match without its log prefix (time, request id, level), cut to
    QUOTE_CHARS from a little before the match: enough to recognise, never a dump."""
    start, end = _line_bounds(text, match)
    prefix = LOG_PREFIX.match(text, start, end)
    if prefix and prefix.end() <= match.start():
        start = prefix.end()
    cut_start = max(start, match.start() - QUOTE_LEAD) if end - start > QUOTE_CHARS else start
    cut_end = min(end, cut_start + QUOTE_CHARS)
    # Cut between words, never inside one (nor inside the match).
    if cut_start > start and not text[cut_start - 1].isspace():
        space = text.find(" ", cut_start, match.start())
        cut_start = space + 1 if space >= 0 else cut_start
    if cut_end < end and not text[cut_end].isspace():
        space = text.rfind(" ", match.end(), cut_end)
        cut_end = space if space >= 0 else cut_end
    line = text[cut_start:cut_end].strip()
    line = ("…" if cut_start > start else "") + line + ("…" if cut_end < end else "")
    return " ".join(line.split()).replace("`", "'")


def groups_of(signature: Signature, facts: Facts) -> dict[str, str]:
    """The named groups of the signature's first matching pattern: the values its commands
    may template (a table name, a pid, a subnet), cleaned like every other name."""
    for signal in signature.signals:
        match = signal.pattern.search(facts.evidence)
        if match:
            return {k: v for k, v in match.groupdict().items() if v and clean_name(v) == v}
    return {}


@dataclass(frozen=True)
class Candidate:
    """One hypothesis: a class, its evidence, and the signature that produced the evidence
    when the class's own signals found less (or nothing)."""

    rule: FailureClass
    evidence: Evidence
    signature: Signature | None = None
    groups: tuple[tuple[str, str], ...] = ()

    @property
    def rank(self) -> tuple[int, float]:
        """Specific classes whose failure is named outright come first; then the score."""
        return (
            1 if self.rule.specific and self.evidence.named_outright else 0,
            self.evidence.score,
        )

    @property
    def exact(self) -> bool:
        """A vendor's error text, verbatim in the alert itself: the strongest evidence a rule
        can have, and the only one that earns the exact-signature bonus."""
        return self.signature is not None and any(hit.exact for hit in self.evidence.hits)


def candidates(
    classes: tuple[FailureClass, ...], signatures: tuple[Signature, ...], facts: Facts
) -> list[Candidate]:
    """One candidate per class, strongest first: the class's own signals or its best
    signature, whichever scores higher (the class's own on a tie)."""
    found: dict[str, Candidate] = {}
    for rule in classes:
        evidence = evidence_for(rule.signals, rule.metrics, facts)
        if evidence is not None:
            found[rule.name] = Candidate(rule, evidence)
    by_name = {rule.name: rule for rule in classes}
    for signature in signatures:
        evidence = evidence_for(signature.signals, frozenset(), facts)
        if evidence is None:
            continue
        held = found.get(signature.failure_class)
        if held is None or evidence.score > held.evidence.score:
            groups = tuple(sorted(groups_of(signature, facts).items()))
            rule = by_name[signature.failure_class]
            found[rule.name] = Candidate(rule, evidence, signature, groups)
    order = {rule.name: index for index, rule in enumerate(classes)}
    return sorted(found.values(), key=lambda c: (c.rank, -order[c.rule.name]), reverse=True)


def confidence_of(best: Candidate, runner: Candidate | None) -> float:
    """The class's base plus a little per point of score, a bonus for an exact vendor error
    text, a penalty when the runner-up is as plausible; always inside the honest band."""
    evidence = best.evidence
    confidence = best.rule.base_confidence + CONFIDENCE_PER_POINT * evidence.score
    if best.exact:
        confidence += EXACT_BONUS
    if runner is not None:
        if runner.rank[0] == best.rank[0] and runner.rank[1] >= AMBIGUITY_RATIO * best.rank[1]:
            confidence -= AMBIGUITY_PENALTY
    return round(min(MAX_CONFIDENCE, max(MIN_CONFIDENCE, confidence)), 2)
