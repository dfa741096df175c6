"""When no class can be named: say so, and still hand the engineer the places to look, named
(the alarm, its metric, the log group, the alert's graph, recent changes).
"""

from __future__ import annotations

from analysis.offline.commands import (
    alarm_history_step,
    dim,
    link_step,
    logs_command,
    make_step,
    metric_command,
    recent_changes_step,
    steps_of,
)
from analysis.offline.facts import Facts
from analysis.offline.model import Playbook


def playbook(f: Facts) -> Playbook:
    """Nothing matched: say so, and still hand the engineer the places to look, named."""
    metric = f.metric
    metric_step = (
        make_step(
            f"Graph `{metric.namespace}/{metric.name}` for the hour around the alert to see "
            "whether it is a spike, a trend or a step.",
            metric_command(
                f,
                metric.namespace,
                metric.name,
                " ".join(dim(k, v) for k, v in metric.dimensions.items()),
                "Average Maximum",
            ),
        )
        if metric
        else None
    )
    steps = steps_of(
        alarm_history_step(f),
        metric_step,
        make_step(
            f"Read the log group `{f.log_group}` around {f.occurred_at:%H:%M} UTC for the first "
            "error.",
            logs_command(f, f.log_group, "?ERROR ?Error ?error ?Exception ?FATAL"),
        )
        if f.log_group
        else None,
        link_step(f),
        make_step(
            f"Check {f.service} directly: is it up, are its error rate and latency normal, "
            "did its dependencies change?"
        ),
        recent_changes_step(f),
        make_step(
            f"Check for an AWS service event in {f.region or 'the region'}.",
            "AWS Health Dashboard → Your account health → Open and recent issues",
        ),
    )
    named = [
        f"alarm `{f.alarm_name}`" if f.alarm_name else "",
        f"metric `{metric.namespace}/{metric.name}`" if metric else "",
        f"log group `{f.log_group}`" if f.log_group and not f.alarm_name else "",
        "the graph it links to" if f.link else "",
    ]
    pointers = ", ".join(n for n in named if n)
    start = f"what it names ({pointers}) and" if pointers else "the alert itself and"
    return Playbook(
        root_cause=(
            f"No known failure pattern matches “{f.title}”, so the offline rules cannot name a "
            f"cause for {f.service}. Start from {start} any recent change; a Claude analysis "
            "(set ANTHROPIC_API_KEY) reads the context in more depth."
        ),
        hypothesis="",
        impact=(
            f"Unknown from the alert alone: whatever depends on {f.service} may be affected. "
            "Confirm whether users see errors or slowness before deciding how far it reaches."
        ),
        stakes="no rule matched, so the severity rests on the sender's rating alone",
        outage=False,
        steps=steps,
        check_first=(
            "Whether users see errors or slowness right now",
            f"What changed in the hour before {f.since}",
            "Whether the alert is new or has fired before without impact",
        ),
    )
