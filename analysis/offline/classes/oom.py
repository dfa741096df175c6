"""Out of memory. A kill in the text is an outage of the work in flight; a memory alarm alone is
pressure. Lambda, a Kubernetes pod and a host are each killed and resized differently.
"""

from __future__ import annotations

import re

from analysis.models import RemediationStep
from analysis.offline.commands import (
    alarm_history_step,
    dim,
    ecs_steps,
    insights_command,
    link_step,
    logs_command,
    make_step,
    metric_command,
    region_flag,
    sh,
    ssm_command,
    steps_of,
)
from analysis.offline.facts import Facts
from analysis.offline.model import Evidence, Playbook

OOM_KILLED = re.compile(
    r"out of memory|OutOfMemory|\bOOM[\s_-]?kill(?:ed|er)?\b|OOMKilled|cannot allocate memory"
    r"|\bMemoryError\b|heap out of memory|signal: killed|exit code 137|killed process \d+"
    r"|memory (?:limit )?exceeded|GC overhead limit exceeded|\bENOMEM\b",
    re.IGNORECASE,
)


def _lambda(
    f: Facts, ev: Evidence, function_name: str
) -> tuple[str, tuple[RemediationStep, ...], str]:
    """A Lambda function killed for memory: its configured size against what it used."""
    group = f.log_group or f"/aws/lambda/{function_name}"
    root = (
        f"Lambda function `{function_name}` is running out of memory ({ev.lead}): an "
        "invocation needed more than its configured memory and the runtime was killed. "
        "Either the payloads grew, something holds memory across invocations in the "
        "execution environment, or the setting was always tight."
    )
    steps = steps_of(
        make_step(
            "Compare Max Memory Used with the configured size in the REPORT lines (then "
            "read the rows with `aws logs get-query-results` and the returned queryId).",
            insights_command(
                f,
                group,
                'filter @type = "REPORT" | stats max(@maxMemoryUsed / 1000 / 1000) as '
                "max_used_mb, max(@memorySize / 1000 / 1000) as size_mb by bin(5m)",
            ),
        ),
        make_step(
            "Read the killed invocations to see which input triggered them.",
            logs_command(f, group, '?"signal: killed" ?"Runtime.OutOfMemory" ?"out of memory"'),
        ),
        make_step(
            "If the function simply needs more, raise its memory (set NEW_MEMORY_MB to about "
            "twice the Max Memory Used); CPU grows with it.",
            f"aws lambda update-function-configuration --function-name {sh(function_name)} "
            f'--memory-size "$NEW_MEMORY_MB"{region_flag(f)}',
        ),
        make_step(
            "If usage grows invocation after invocation, look for state cached in globals "
            "(module-level lists, caches without bounds) and release it."
        ),
    )
    where = f"Lambda function `{function_name}`"
    return root, steps, where


def _pod(f: Facts, ev: Evidence) -> tuple[str, tuple[RemediationStep, ...], str]:
    """A container OOM-killed at its limit."""
    pod = f.pod or "the pod"
    ns = f"-n {sh(f.namespace)} " if f.namespace else ""
    root = (
        f"The container in {f.subject if f.pod else 'the pod'} was OOM-killed ({ev.lead}): "
        "it crossed its memory limit and the kernel ended it, so it restarts and drops "
        "the work in flight. Either the limit is below what the workload needs, or "
        "memory leaks until it hits the limit."
    )
    steps = steps_of(
        make_step(
            "Confirm the kill and count restarts: Last State should read OOMKilled, exit code 137.",
            f"kubectl {ns}describe pod {sh(pod)}" if f.pod else None,
        ),
        make_step(
            "See what the pods use now against their limits.",
            f"kubectl {ns}top pod --sort-by=memory",
        ),
        make_step(
            "Read the container's limits and requests.",
            f"kubectl {ns}get pod {sh(pod)} -o jsonpath='{{.spec.containers[*].resources}}'"
            if f.pod
            else None,
        ),
        make_step(
            "If usage climbs steadily until the kill, it is a leak: take a heap profile "
            "before the limit is reached. If it is flat but high, raise the limit."
        ),
    )
    where = f.subject or "the pod"
    return root, steps, where


def _host(f: Facts, ev: Evidence) -> tuple[str, tuple[RemediationStep, ...], str]:
    """Memory pressure on a host or service: find what grows."""
    host_checks = [
        "free -m",
        "ps aux --sort=-rss | head -15",
        "dmesg -T | grep -iE 'killed process|out of memory' | tail -20",
    ]
    root = (
        f"Memory on {f.service} is under pressure ({ev.lead}). When it runs out, the "
        "kernel's OOM killer ends the largest process (or the runtime throws out-of-memory "
        "errors), so the thing to find is which process grows and whether it ever stops."
    )
    promql = (
        f'node_memory_MemAvailable_bytes{{instance="{f.host}"}} / '
        f'node_memory_MemTotal_bytes{{instance="{f.host}"}}'
    )
    restart = make_step(
        "Restart the process that grows if it is close to the limit, to buy time; then "
        "take a heap profile of the next instance before it reaches the same point."
    )
    steps = (
        steps_of(*ecs_steps(f, "MemoryUtilization"), link_step(f), restart)
        if f.ecs_service
        else steps_of(
            make_step(
                "See the biggest processes and any OOM kills on the host.",
                ssm_command(f, f.instance_id, host_checks),
            )
            if f.instance_id
            else make_step(
                "On the host, see the biggest processes and any OOM kills.",
                "; ".join(host_checks),
            ),
            make_step(
                f"Graph available memory on `{f.host}` over the last day: a steady climb is a "
                "leak, a step is a change in load or a deploy.",
                promql,
            )
            if f.host
            else make_step(
                "Graph memory for the hour around the alert: a steady climb is a leak, a step "
                "is a change in load or a deploy.",
                metric_command(f, "CWAgent", "mem_used_percent", dim("InstanceId", f.instance_id))
                if f.instance_id
                else None,
            ),
            link_step(f),
            restart,
            make_step(
                "Right-size the host or container only once you know it is load, not a leak."
            ),
        )
    )
    where = f.service
    return root, steps, where


def playbook(f: Facts, ev: Evidence) -> Playbook:
    """A kill (in the text) is an outage of the work in flight; a memory alarm or a "high
    memory" alert is pressure, which only slows things until it becomes a kill."""
    killed = bool(OOM_KILLED.search(f.evidence))
    if f.function_name and killed:
        root, steps, where = _lambda(f, ev, f.function_name)
    elif killed and (f.pod or re.search(r"OOMKilled|exit code 137", f.evidence, re.I)):
        root, steps, where = _pod(f, ev)
    else:
        root, steps, where = _host(f, ev)
    return Playbook(
        root_cause=root,
        hypothesis=f"Memory exhaustion on {where}: the process is killed or fails to allocate.",
        impact=(
            f"Each kill on {where} drops the requests in flight and pays a restart (or a cold "
            "start); while memory is tight, garbage collection and swapping slow everything "
            "else down too."
            if killed
            else f"While memory on {where} is tight, garbage collection and swapping slow its "
            "requests down; if it runs out, the largest process is killed and the requests in "
            "flight are lost."
        ),
        stakes=(
            "each kill drops the work in flight, and it repeats until memory is fixed"
            if killed
            else "memory pressure slows requests now and ends in killed processes if it grows"
        ),
        outage=killed,
        steps=steps_of(*steps, alarm_history_step(f)),
        check_first=(
            "Memory used against the limit: close to it on every run, or climbing over time?",
            "Whether a deploy or a larger input started it",
            f"How often it has happened since {f.since}",
        ),
    )
