"""The kind of alert (a log line, a CPU alarm, a 5xx alarm, latency, queue depth, ...) and
the first step that fits it.

When no class can be named, the first step must still be one an on-call engineer would take
for that kind of alert, with a command: the first error line for a log alert, the top
processes for CPU, the split between load balancer and targets for 5xx. A generic "look at
recent changes" first is what an abstaining rule base used to say to everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from analysis.models import RemediationStep
from analysis.offline.commands import (
    dim,
    logs_command,
    make_step,
    metric_command,
    sh,
    ssm_command,
)
from analysis.offline.facts import Facts

# Checked in order against the alarm's metric name, then the title and message.
_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        ("queue", r"queue|backlog|\blag\b|oldest|iteratorage|offsetlag|visible"),
        ("http_5xx", r"5xx|\b50[0-4]\b|error[\s_-]?rate|server errors?"),
        ("latency", r"latency|duration|response[\s_-]?time|\bp9\d\b|slow"),
        ("cpu", r"\bcpu|load average"),
        ("memory", r"memory|\bmem_|\bheap\b|\bswap"),
        ("disk", r"disk|storage|inode|volume"),
        ("health", r"health|unhealthy|status[\s_-]?check|\bdown\b|uptime|probe|unreachable"),
        ("network", r"network|packet|bytes|bandwidth"),
        ("errors", r"errors?\b|exception|fail"),
    )
)


def kind_of(facts: Facts) -> str:
    """The alert's kind: from its metric when it is an alarm, else from its words; `log` for
    a log line that matches none of them."""
    texts = [facts.metric.name] if facts.metric else []
    texts += [facts.title, facts.text]
    for text in texts:
        for kind, pattern in _KINDS:
            if pattern.search(text):
                return kind
    return "log" if facts.log_group or "\n" in facts.text.strip() else "generic"


def _where(facts: Facts) -> str:
    return f" on {facts.service}" if facts.subject else ""


def _on_host(facts: Facts, action: str, shell: str, kube: str) -> RemediationStep:
    """A command run where the problem is: over SSM on a named instance, with kubectl for a
    pod, otherwise on the host itself."""
    if facts.instance_id:
        return make_step(action, ssm_command(facts, facts.instance_id, [shell]))
    if facts.pod or facts.namespace:
        namespace = f" -n {sh(facts.namespace)}" if facts.namespace else " -A"
        return make_step(action, kube.replace(" -A", namespace))
    return make_step(action, shell)


def _cpu(f: Facts) -> RemediationStep:
    return _on_host(
        f,
        f"See which processes hold the CPU{_where(f)}: one hot process is a loop or a hot "
        "path, many busy ones are load.",
        "top -b -n 1 -o %CPU | head -20",
        "kubectl top pod -A --sort-by=cpu | head -20",
    )


def _memory(f: Facts) -> RemediationStep:
    return _on_host(
        f,
        f"See which processes hold the memory{_where(f)}, and whether the kernel has already "
        "killed one (a leak grows steadily; a kill is an outage).",
        "ps aux --sort=-rss | head -15; dmesg -T | grep -i 'killed process' | tail -5",
        "kubectl top pod -A --sort-by=memory | head -20",
    )


def _disk(f: Facts) -> RemediationStep:
    return _on_host(
        f,
        f"Check space and inodes{_where(f)}: `df -i` at 100% with free blocks is inode "
        "exhaustion, which deleting one big file does not fix.",
        "df -h; df -i",
        "kubectl describe nodes | grep -A5 -i pressure",
    )


def _http_5xx(f: Facts) -> RemediationStep:
    if f.load_balancer:
        return make_step(
            f"Split the errors of load balancer `{f.load_balancer}` by origin before reading "
            "application logs: ELB 5xx mean no healthy target answered, target 5xx mean the "
            "application did.",
            metric_command(
                f, "AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count",
                dim("LoadBalancer", f.load_balancer), "Sum",
            ),
        )  # fmt: skip
    return make_step(
        "Check target health before the application's logs: with no healthy target, the "
        "load balancer or proxy answers 5xx itself (set TARGET_GROUP_ARN).",
        'aws elbv2 describe-target-health --target-group-arn "$TARGET_GROUP_ARN" --query '
        "'TargetHealthDescriptions[].[Target.Id,TargetHealth.State,TargetHealth.Reason]'",
    )


def _latency(f: Facts) -> RemediationStep:
    if f.load_balancer:
        return make_step(
            f"Graph the p99 target response time of `{f.load_balancer}`: a rise that matches "
            "one target or one dependency's latency names where the time goes.",
            metric_command(
                f, "AWS/ApplicationELB", "TargetResponseTime",
                dim("LoadBalancer", f.load_balancer), "Maximum",
            ),
        )  # fmt: skip
    return make_step(
        "Time one request end to end (set URL to the slow endpoint): a slow connect is the "
        "network or DNS, a slow answer is the service or what it waits on.",
        'time curl -sS -o /dev/null "$URL"',
    )


def _queue(f: Facts) -> RemediationStep:
    if f.queue_name:
        return make_step(
            f"Read the depth and age of SQS queue `{f.queue_name}`, and whether its consumers "
            "are still receiving: no receives means consumers are down, slow receives mean "
            "they cannot keep up.",
            f"aws sqs get-queue-attributes --queue-url $(aws sqs get-queue-url --queue-name "
            f"{sh(f.queue_name)} --query QueueUrl --output text) --attribute-names "
            "ApproximateNumberOfMessages ApproximateAgeOfOldestMessage",
        )
    return make_step(
        "Compare the consumers' lag per partition (set BROKER and GROUP): lag on every "
        "partition means slow or stopped consumers, on one partition a poison message or a "
        "hot key.",
        'kafka-consumer-groups.sh --bootstrap-server "$BROKER" --describe --group "$GROUP"',
    )


def _health(f: Facts) -> RemediationStep:
    return _on_host(
        f,
        f"Ask the failing health check directly{_where(f)} (set URL to its endpoint): a "
        "refused connection is a dead process, a slow or 5xx answer is a sick one.",
        'curl -sS -m 10 -o /dev/null -D - "$URL" | head -1',
        "kubectl get pods -A -o wide | grep -v Running",
    )


def _log(f: Facts) -> RemediationStep:
    if f.log_group:
        return make_step(
            f"Read the first error lines in `{f.log_group}` around {f.occurred_at:%H:%M} UTC: "
            "the first error, not the loudest, is usually the cause.",
            logs_command(f, f.log_group, "?ERROR ?Error ?Exception ?FATAL ?panic"),
        )
    return make_step(
        f"Read the service's first error lines around {f.occurred_at:%H:%M} UTC: the first "
        "error, not the loudest, is usually the cause.",
        f"journalctl --since '{f.start:%Y-%m-%d %H:%M}' --until '{f.end:%Y-%m-%d %H:%M}' "
        "-p err --no-pager | head -50",
    )


def _metric(f: Facts) -> RemediationStep:
    if f.metric is None:
        return _log(f)
    metric = f.metric
    return make_step(
        f"Graph `{metric.namespace}/{metric.name}` for the hour around the alert to see "
        "whether it is a spike, a trend or a step.",
        metric_command(
            f, metric.namespace, metric.name,
            " ".join(dim(k, v) for k, v in metric.dimensions.items()), "Average Maximum",
        ),
    )  # fmt: skip


_FIRST_STEP: dict[str, Callable[[Facts], RemediationStep]] = {
    "cpu": _cpu,
    "memory": _memory,
    "disk": _disk,
    "http_5xx": _http_5xx,
    "latency": _latency,
    "queue": _queue,
    "health": _health,
    "network": _metric,
    "errors": _log,
    "log": _log,
    "generic": _metric,
}


def first_step(facts: Facts) -> RemediationStep:
    """The first step for this kind of alert, with its command."""
    return _FIRST_STEP[kind_of(facts)](facts)
