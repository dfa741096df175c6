"""Command templating: AWS CLI, CloudWatch and shell commands that paste as they are.

Values are shell-quoted and time windows come from the alert, so a command never needs
editing before it runs; a value the alert lacks is read from a named shell variable.
"""

from __future__ import annotations

import json
import re
import shlex
from datetime import datetime

from analysis.models import RemediationStep
from analysis.offline.facts import Facts, clean_name
from analysis.offline.model import NAME_CHARS


def sh(value: str) -> str:
    """Shell-quote a value so a command pastes safely whatever the alert put in it."""
    return shlex.quote(value)


def iso(moment: datetime) -> str:
    """The timestamp form the AWS CLI's --start-time and --end-time accept."""
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def epoch_ms(moment: datetime) -> int:
    """CloudWatch Logs takes its time window in epoch milliseconds."""
    return int(moment.timestamp() * 1000)


def region_flag(facts: Facts) -> str:
    """` --region X` when the alert names its region, else nothing (the profile's default)."""
    return f" --region {facts.region}" if facts.region else ""


def dim(name: str, value: str) -> str:
    """One quoted CloudWatch dimension, as `--dimensions` takes it."""
    return sh(f"Name={name},Value={value}")


def metric_command(
    facts: Facts, namespace: str, metric: str, dimension: str, statistic: str = "Maximum"
) -> str:
    """`dimension` is already quoted `Name=...,Value=...` pairs (see `dim`), one that expands
    a shell variable when the alert does not name the resource, or empty for none."""
    dimensions = f"--dimensions {dimension} " if dimension else ""
    return (
        f"aws cloudwatch get-metric-statistics --namespace {sh(namespace)} --metric-name "
        f"{sh(metric)} {dimensions}--start-time {iso(facts.start)} --end-time {iso(facts.end)} "
        f"--period 60 --statistics {statistic}{region_flag(facts)}"
    )


def logs_command(facts: Facts, group: str, pattern: str) -> str:
    """Filter a log group over the alert's window for a pattern."""
    return (
        f"aws logs filter-log-events --log-group-name {sh(group)} "
        f"--start-time {epoch_ms(facts.start)} --end-time {epoch_ms(facts.end)} "
        f"--filter-pattern {sh(pattern)}{region_flag(facts)}"
    )


def insights_command(facts: Facts, group: str, query: str) -> str:
    """Start a Logs Insights query over the alert's window (for aggregates a filter cannot give)."""
    return (
        f"aws logs start-query --log-group-name {sh(group)} "
        f"--start-time {int(facts.start.timestamp())} --end-time {int(facts.end.timestamp())} "
        f"--query-string {sh(query)}{region_flag(facts)}"
    )


def ssm_command(facts: Facts, instance: str, commands: list[str]) -> str:
    """Run shell commands on an instance over SSM, so no SSH access is needed."""
    parameters = json.dumps({"commands": commands})
    return (
        f"aws ssm send-command --instance-ids {sh(instance)} --document-name AWS-RunShellScript "
        f"--parameters {sh(parameters)}{region_flag(facts)}"
    )


def alarm_history_step(facts: Facts) -> RemediationStep | None:
    """Whether the alarm flaps or has been climbing for hours changes how urgent it is."""
    if not facts.alarm_name:
        return None
    return RemediationStep(
        action=(
            f"Read the state history of alarm `{facts.alarm_name}`: whether it flaps or has "
            "been climbing for hours changes how urgent this is."
        ),
        command=(
            f"aws cloudwatch describe-alarm-history --alarm-name {sh(facts.alarm_name)} "
            f"--history-item-type StateUpdate --start-date {iso(facts.day_before)} "
            f"--max-records 20{region_flag(facts)}"
        ),
    )


def recent_changes_step(facts: Facts) -> RemediationStep:
    """Most incidents start with a change: list the account's write calls before the alert."""
    return RemediationStep(
        action=(
            "List what changed in the account in the hour before the alert (deploys, "
            "configuration and IAM changes): most incidents start with a change."
        ),
        command=(
            f"aws cloudtrail lookup-events --start-time {iso(facts.start)} "
            f"--end-time {iso(facts.occurred_at)} --lookup-attributes "
            "AttributeKey=ReadOnly,AttributeValue=false --max-results 50 "
            f"--query 'Events[].[EventTime,EventName,Username]' --output table{region_flag(facts)}"
        ),
    )


def link_step(facts: Facts) -> RemediationStep | None:
    """The alert's own graph shows the expression and when it started."""
    if not facts.link:
        return None
    return RemediationStep(
        action="Open the alert's source graph to see the expression and when it started.",
        command=facts.link,
    )


def steps_of(*steps: RemediationStep | None) -> tuple[RemediationStep, ...]:
    """The steps that apply: a playbook writes `None` for a step the alert gives no basis for."""
    return tuple(step for step in steps if step is not None)


def make_step(action: str, command: str | None = None) -> RemediationStep:
    """One remediation step; a shorthand that keeps the playbooks readable."""
    return RemediationStep(action=action, command=command)


def cap(text: str) -> str:
    """Capitalise the first letter only (names in backticks keep their case)."""
    return text[:1].upper() + text[1:]


def find_name(pattern: re.Pattern[str], text: str, limit: int = NAME_CHARS) -> str | None:
    """The first non-empty group of the first match, as a clean name."""
    match = pattern.search(text)
    if not match:
        return None
    return clean_name(next((g for g in match.groups() if g), None), limit)


def ecs_steps(f: Facts, metric: str) -> tuple[RemediationStep, ...]:
    """An ECS service's own view of memory or CPU: the service metric and why tasks stopped."""
    if not f.ecs_service:
        return ()
    cluster = sh(f.ecs_cluster or "default")
    service = sh(f.ecs_service)
    dimensions = " ".join(
        [dim("ServiceName", f.ecs_service)]
        + ([dim("ClusterName", f.ecs_cluster)] if f.ecs_cluster else [])
    )
    stopped = (
        f"aws ecs list-tasks --cluster {cluster} --service-name {service} --desired-status "
        f"STOPPED --query 'taskArns[:10]' --output text{region_flag(f)}"
    )
    return (
        make_step(
            f"Graph {metric} of ECS service `{f.ecs_service}` (a share of what its tasks "
            "reserve): a steady climb is a leak or growing load, a step is a deploy.",
            metric_command(f, "AWS/ECS", metric, dimensions),
        ),
        make_step(
            "Read why recent tasks stopped (OutOfMemoryError and failed health checks show there).",
            f"aws ecs describe-tasks --cluster {cluster} --tasks $({stopped}) --query "
            f"'tasks[].[stoppedReason,containers[0].reason]'{region_flag(f)}",
        ),
        make_step(
            "If the load is real, add tasks (set NEW_COUNT) while the cause is found.",
            f"aws ecs update-service --cluster {cluster} --service {service} --desired-count "
            f'"$NEW_COUNT"{region_flag(f)}',
        ),
    )
