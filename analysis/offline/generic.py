"""Text for a class that is data only: everything comes from the winning signature (cause,
discriminating check, remediation) and the class definition (impact, stakes).

The discriminating check always comes first: a signature is a hypothesis until the check that
tells it from its look-alikes has run.
"""

from __future__ import annotations

from dataclasses import replace

from analysis.models import RemediationStep
from analysis.offline.commands import alarm_history_step, cap, link_step, recent_changes_step
from analysis.offline.facts import Facts
from analysis.offline.model import Playbook
from analysis.offline.scoring import Candidate
from analysis.offline.signatures import Signature
from analysis.offline.template import render_step, values


def check_step(signature: Signature, facts: Facts, candidate: Candidate) -> RemediationStep:
    """The signature's discriminating check, phrased as the first thing to run."""
    step = render_step(signature.check, values(facts, candidate.groups))
    return RemediationStep(action=f"Tell it apart first: {step.action}", command=step.command)


def tell_apart(candidate: Candidate, facts: Facts) -> str:
    """The check that would confirm or rule out a hypothesis on the shortlist, as a sentence
    to append: its signature's discriminating check, else its class's first check."""
    if candidate.signature is not None:
        step = check_step(candidate.signature, facts, candidate)
        action = step.action.removeprefix("Tell it apart first: ")
    elif candidate.rule.spec.first_check is not None:
        step = render_step(candidate.rule.spec.first_check, values(facts, candidate.groups))
        action = step.action
    else:
        return ""
    return f" To tell it apart: {action.rstrip('.')} (`{step.command}`)."


def render(candidate: Candidate, facts: Facts) -> Playbook:
    """The playbook of a data-only class from its winning signature."""
    signature = candidate.signature
    if signature is None:
        raise ValueError(f"{candidate.rule.name} has neither a module nor a signature")
    spec = candidate.rule.spec
    known = values(facts, candidate.groups)
    first = check_step(signature, facts, candidate)
    return Playbook(
        root_cause=(
            f"{cap(spec.label)} at {facts.service}: {signature.cause} The alert says "
            f"{candidate.evidence.lead}."
        ),
        hypothesis=f"{cap(spec.label)}: {signature.cause}",
        impact=spec.impact.replace("{service}", facts.service),
        stakes=spec.stakes,
        outage=spec.outage,
        steps=tuple(
            step
            for step in (
                first,
                *(render_step(step, known) for step in signature.remediation),
                alarm_history_step(facts),
                link_step(facts),
                recent_changes_step(facts),
            )
            if step is not None
        ),
        check_first=(
            first.action.removeprefix("Tell it apart first: "),
            f"Whether anything changed in the hour before {facts.since}",
            "Whether other services show the same error (a shared cause) or only this one",
        ),
    )


def with_signature(playbook: Playbook, candidate: Candidate, facts: Facts) -> Playbook:
    """A coded class's playbook when a signature, not the class's own signals, found it: the
    signature knows this exact text, so its check goes first and its cause is named."""
    signature = candidate.signature
    if signature is None:
        return playbook
    return replace(
        playbook,
        root_cause=f"{playbook.root_cause} The text matches a known error: {signature.cause}",
        steps=(check_step(signature, facts, candidate), *playbook.steps),
    )


def with_first_check(playbook: Playbook, candidate: Candidate, facts: Facts) -> Playbook:
    """A playbook whose first step has no command (the alert named nothing to run it on)
    gets its class's own first check in front, so the reader always has something to run."""
    check = candidate.rule.spec.first_check
    if check is None or (playbook.steps and playbook.steps[0].command):
        return playbook
    first = render_step(check, values(facts, candidate.groups))
    return replace(playbook, steps=(first, *playbook.steps))
