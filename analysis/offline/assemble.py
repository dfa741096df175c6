"""Assembling the diagnosis: the ranked shortlist of hypotheses, the text of the winner, its
alternatives, confidence and severity.

The winner's text comes from its class module when the class has one, otherwise from its
signature; every runner-up carries the check that would tell it apart, so the reader knows
what to run if the first hypothesis does not hold.
"""

from __future__ import annotations

import re
from dataclasses import replace

from analysis.context import AnalysisContext
from analysis.models import Alternative, Diagnosis
from analysis.offline import generic, kinds
from analysis.offline.classes import unknown
from analysis.offline.facts import Facts, read_facts
from analysis.offline.model import AMBIGUITY_RATIO, MIN_SCORE, UNKNOWN_CONFIDENCE, Playbook
from analysis.offline.rulebase import CLASSES, SIGNATURES, UNKNOWN
from analysis.offline.scoring import Candidate, candidates, confidence_of, snippet
from incidents.models import Alert, Incident, Severity

# Runners-up beyond the first are listed only when they are real leads, not single words.
MAX_ALTERNATIVES = 2

_OUTAGE = re.compile(
    r"\boutage\b|\b(?:is|are|went|gone|has been|have been) down\b|\bdown for\b|"
    r"\ball (?:requests|users|customers|traffic)\b|\bevery request\b|"
    r"\b(?:customer|user)[\s-]facing\b|\bcomplete(?:ly)? (?:down|unavailable)\b|"
    r"\b100 ?% (?:errors?|failures?)\b",
    re.IGNORECASE,
)
_RAISE = {Severity.MEDIUM: Severity.HIGH, Severity.HIGH: Severity.CRITICAL}


def diagnose(incident: Incident, alert: Alert, context: AnalysisContext) -> tuple[Diagnosis, str]:
    """Diagnose `alert` (of `incident`): the Diagnosis, and the name of the failure class it
    matched (`unknown` when none did). Pure and fast: no I/O, no clock."""
    facts = read_facts(incident, alert, context)
    shortlist = candidates(CLASSES, SIGNATURES, facts)
    if not shortlist or shortlist[0].evidence.score < MIN_SCORE:
        return _unknown_diagnosis(facts, shortlist[0] if shortlist else None), UNKNOWN
    best = shortlist[0]
    runners = [*shortlist[1:2], *(c for c in shortlist[2:] if c.evidence.score >= MIN_SCORE)]
    runners = runners[:MAX_ALTERNATIVES]
    diagnosis = _assemble(
        facts,
        render(best, facts),
        [_alternative(facts, best, runner) for runner in runners],
        confidence_of(best, runners[0] if runners else None),
        matched=True,
    )
    return diagnosis, best.rule.name


def render(candidate: Candidate, facts: Facts) -> Playbook:
    """The text of one hypothesis: its class module's, or its signature's."""
    playbook = candidate.rule.playbook
    if playbook is None:
        return generic.render(candidate, facts)
    rendered = generic.with_signature(playbook(facts, candidate.evidence), candidate, facts)
    return generic.with_first_check(rendered, candidate, facts)


def _unknown_diagnosis(facts: Facts, lead: Candidate | None) -> Diagnosis:
    """The weak lead, if a class saw one, is offered as the alternative it is; the first step
    still fits the kind of alert (see `kinds.py`)."""
    alternatives = []
    if lead is not None:
        alternatives.append(
            Alternative(
                hypothesis=render(lead, facts).hypothesis,
                why_less_likely=(
                    f"Only a faint hint points at {lead.rule.label} ({lead.evidence.lead}); one "
                    "word is not enough to call it a cause." + generic.tell_apart(lead, facts)
                ),
            )
        )
    playbook = unknown.playbook(facts)
    first = kinds.first_step(facts)
    steps = (first, *(s for s in playbook.steps if s.command != first.command))
    return _assemble(
        facts,
        replace(playbook, steps=steps),
        alternatives,
        UNKNOWN_CONFIDENCE,
        matched=False,
    )


def _assemble(
    facts: Facts,
    playbook: Playbook,
    alternatives: list[Alternative],
    confidence: float,
    matched: bool,
) -> Diagnosis:
    """The Diagnosis of a playbook. A past incident that looked the same, and how it ended, is
    the first thing worth checking; the model's limits (8 steps, 5 checks) cap the lists."""
    severity, justification = _severity(facts, playbook, matched)
    occurrence = (
        f"It has fired {facts.occurrences} times since {facts.since}"
        + (", and it is flapping." if facts.flapping else ".")
        if facts.occurrences > 1
        else f"One occurrence so far, at {facts.occurred_at:%H:%M} UTC."
    )
    return Diagnosis(
        root_cause=playbook.root_cause,
        alternatives=alternatives,
        severity=severity,
        severity_justification=justification,
        impact=f"{playbook.impact} {occurrence}",
        remediation_steps=list(playbook.steps[:8]),
        check_first=[*facts.related, *playbook.check_first][:5],
        confidence=confidence,
    )


def _alternative(facts: Facts, best: Candidate, runner: Candidate) -> Alternative:
    """A runner-up, why it ranks lower, and (from its signature) how to tell it apart."""
    rule, evidence = best.rule, best.evidence
    other, other_evidence = runner.rule, runner.evidence
    same_line = other_evidence.hits[0].line == evidence.hits[0].line
    if rule.specific and not other.specific and same_line:
        why = (
            f"The same line also reports {other.label}, but {other.symptom_note}; the "
            f"{rule.label} it reports is the cause, so this is more likely a consequence than "
            "the root cause."
        )
    elif rule.specific and not other.specific:
        why = (
            f"There is evidence of {other.label} too ({other_evidence.lead}), but "
            f"{other.symptom_note}; {evidence.lead} names the cause, so this is more likely a "
            "consequence than the root cause."
        )
    else:
        why = (
            f"Its evidence ({other_evidence.lead}) is weaker than the evidence for "
            f"{rule.label} ({evidence.lead})."
        )
        if runner.rank[0] == best.rank[0] and other_evidence.score >= (
            AMBIGUITY_RATIO * evidence.score
        ):
            why += " The two are close: if the first checks come back clean, work this one next."
    return Alternative(
        hypothesis=render(runner, facts).hypothesis,
        why_less_likely=why + generic.tell_apart(runner, facts),
    )


def _severity(facts: Facts, playbook: Playbook, matched: bool) -> tuple[Severity, str]:
    """Keep the sender's severity (or the incident's, if an earlier alert raised it), and say
    why it fits. Raise it one level only when the failure stops user requests by itself and
    the alert says users are cut off (an outage, "all requests", "is down"); a keyword such as
    FATAL is a log level, not a statement about users, and never raises it. LOW stays LOW: it
    marks missing data or a sender's deliberate choice, and nothing is ever lowered."""
    severity = facts.severity
    origin = f"{severity.value}, {facts.severity_origin}"
    if not facts.firing:
        return severity, (
            f"{origin}. The alert has since cleared, so this is for the review rather than a "
            f"page: {playbook.stakes}."
        )
    outage = _OUTAGE.search(facts.text)
    if playbook.outage and outage and severity in _RAISE:
        raised = _RAISE[severity]
        return raised, (
            f"Raised one level from {severity.value} ({facts.severity_origin}) to "
            f"{raised.value}: {playbook.stakes}, and the alert says users are cut off "
            f"(`{snippet(facts.text, outage)}`)."
        )
    if severity is Severity.CRITICAL:
        tail = "Kept at CRITICAL: the sender judged it an emergency, and nothing here says less."
    elif severity is Severity.LOW:
        tail = (
            "Kept at LOW: a LOW alert marks missing data or its sender's deliberate choice, "
            "and the offline rules do not second-guess that."
        )
    elif not matched:
        tail = "Kept as sent."
    elif playbook.outage:
        tail = (
            f"Not raised to {_RAISE[severity].value}: nothing in the alert says the whole "
            "service is down."
        )
    else:
        tail = "Not raised: on its own this does not stop user requests."
    return severity, f"{origin}: {playbook.stakes}. {tail}"
