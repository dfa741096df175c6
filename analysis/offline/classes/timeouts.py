"""Timeouts. A Lambda function's timeout is read from its logs and configuration; any other caller's
timeout is chased to the dependency it waited on, reached from where the caller runs.
"""

from __future__ import annotations

import re

from analysis.models import RemediationStep
from analysis.offline.commands import (
    alarm_history_step,
    cap,
    dim,
    find_name,
    link_step,
    logs_command,
    make_step,
    metric_command,
    region_flag,
    sh,
    steps_of,
)
from analysis.offline.facts import (
    TIMEOUT_AFTER,
    Facts,
)
from analysis.offline.model import Evidence, Playbook

_TIMEOUT_TARGET = re.compile(
    r"host=['\"]([\w.-]+)['\"]|E(?:SOCKET)?TIMEDOUT\s+([\w.:-]+)|upstream: \"?https?://([\w.:-]+)"
    r"|(?:connect(?:ing)?|calling|request) to ([\w.-]+(?::\d+)?)",
    re.IGNORECASE,
)


def _reach_command(target: str) -> str:
    """HTTPS for a bare name (or ports 80/443), a plain TCP connect for any other port."""
    host, _, port = target.rpartition(":")
    if port.isdigit() and port not in ("80", "443"):
        return f"nc -vz -w 5 {sh(host)} {port}"
    name = host if port.isdigit() else target
    return f"curl -sS -o /dev/null -m 10 -w '%{{http_code}} %{{time_total}}s\\n' https://{name}/"


def _lambda(
    f: Facts, ev: Evidence, waiting: str, function_name: str
) -> tuple[str, tuple[RemediationStep, ...]]:
    """A Lambda function timing out: what the invocation waited on."""
    group = f.log_group or f"/aws/lambda/{function_name}"
    root = (
        f"Lambda function `{function_name}` is running into its configured timeout "
        f"({ev.lead}): invocations wait{waiting} on something slower than the timeout "
        "allows. The usual culprit is a downstream call (database, HTTP API, another AWS "
        "service) without a shorter timeout of its own; a VPC cold start or too little "
        "memory, and so CPU, can add to it."
    )
    steps = steps_of(
        make_step(
            "Read the timed-out invocations and the lines just before each: the last line "
            "before the timeout shows the call that never returned.",
            logs_command(f, group, '"Task timed out"'),
        ),
        make_step(
            "Check the configured timeout and memory: Lambda gives CPU in proportion to "
            "memory, so a starved function is also a slow one.",
            f"aws lambda get-function-configuration --function-name {sh(function_name)} "
            "--query '{Timeout:Timeout,MemorySize:MemorySize,VpcSubnets:VpcConfig.SubnetIds}'"
            f"{region_flag(f)}",
        ),
        make_step(
            "Graph Duration against the timeout: a flat line at the timeout means calls "
            "hang; a rising trend means a dependency is slowing down.",
            metric_command(f, "AWS/Lambda", "Duration", dim("FunctionName", function_name)),
        ),
        make_step(
            "If tracing is on, find the slow segment in the trace map.",
            "CloudWatch console → X-Ray traces → Trace map",
        ),
        make_step(
            "Give every outbound call a timeout shorter than the function's, with retries "
            "and backoff, so one slow dependency fails fast instead of burning the "
            "invocation."
        ),
        make_step(
            "Raise the timeout or memory only once you know the work legitimately takes "
            "longer; otherwise it only hides the stall."
        ),
    )
    return root, steps


def _dependency(
    f: Facts, ev: Evidence, after: str | None, target: str | None, waiting: str
) -> tuple[str, tuple[RemediationStep, ...]]:
    """A caller timing out on a dependency: reach it from where the caller runs."""
    after_text = f" after {after}" if after else ""
    root = (
        f"{cap(f.service)} is timing out{after_text}{waiting} ({ev.lead}): a call takes "
        "longer than its caller will wait. A timeout is usually a symptom: a slow or "
        "saturated dependency, a network path that drops packets (security group, NACL, "
        "NAT), or lock contention."
    )
    steps = steps_of(
        link_step(f),
        make_step(
            f"Read the errors around {f.occurred_at:%H:%M} UTC and find which call timed out.",
            logs_command(f, f.log_group, "?timeout ?timed ?Timeout ?ETIMEDOUT")
            if f.log_group
            else None,
        ),
        make_step(
            f"Check that `{target}` answers from where the caller runs, and how fast.",
            _reach_command(target),
        )
        if target
        else make_step(
            "Identify the slow dependency: compare the latency of every downstream call in "
            "the same minutes (traces, or the dependency's own latency metric)."
        ),
        make_step(
            f"Graph TargetResponseTime on `{f.load_balancer}` to see whether the targets "
            "themselves are slow.",
            metric_command(
                f,
                "AWS/ApplicationELB",
                "TargetResponseTime",
                dim("LoadBalancer", f.load_balancer),
            ),
        )
        if f.load_balancer
        else None,
        make_step(
            "Check the dependency's saturation (CPU, connections, locks) and any recent "
            "change to it or to the network path (security groups, NACLs, NAT gateway)."
        ),
        make_step(
            "Set client timeouts shorter than the caller's own deadline and retry with "
            "backoff and jitter, so slowness fails fast instead of piling up."
        ),
    )
    return root, steps


def playbook(f: Facts, ev: Evidence) -> Playbook:
    after = find_name(TIMEOUT_AFTER, f.evidence, 30)
    target = find_name(_TIMEOUT_TARGET, f.evidence)
    waiting = f" waiting on `{target}`" if target else ""
    if f.function_name:
        root, steps = _lambda(f, ev, waiting, f.function_name)
    else:
        root, steps = _dependency(f, ev, after, target, waiting)
    return Playbook(
        root_cause=root,
        hypothesis=(
            f"A plain timeout{waiting}: a dependency answers more slowly than "
            f"{'the ' + after + ' ' if after else ''}its caller allows."
        ),
        impact=(
            f"Requests to {f.service} that hit the timeout fail after making the caller wait "
            "the full time; retries multiply the load on whatever is slow, and threads or "
            "connections held while waiting can starve everything else the service does."
        ),
        stakes="requests that time out fail after making users wait the full timeout",
        outage=True,
        steps=steps_of(*steps, alarm_history_step(f)),
        check_first=(
            f"Which downstream call the timing-out requests were waiting on{waiting}",
            "Whether latency rose gradually (saturation) or jumped at once (a change, an "
            "outage downstream)",
            f"Deploys or configuration changes just before {f.since}",
        ),
    )
