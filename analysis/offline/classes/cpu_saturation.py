"""CPU saturation. Where to look depends on what is saturated: an EC2 instance (processes over
SSM, CPU credits), an RDS instance (the queries, not the host) or any other host or service.
"""

from __future__ import annotations

from analysis.models import RemediationStep
from analysis.offline.commands import (
    alarm_history_step,
    dim,
    ecs_steps,
    link_step,
    make_step,
    metric_command,
    region_flag,
    sh,
    ssm_command,
    steps_of,
)
from analysis.offline.facts import Facts
from analysis.offline.model import Evidence, Playbook


def _ec2(f: Facts, ev: Evidence, instance_name: str) -> tuple[str, tuple[RemediationStep, ...]]:
    """An EC2 instance: look inside it over SSM, and at its CPU credits."""
    instance = sh(instance_name)
    root = (
        f"EC2 instance `{instance_name}` is CPU-saturated ({ev.lead}). Something on it is "
        "doing more work than usual (more traffic, a runaway process or a hot loop after a "
        "deploy), or a burstable instance ran out of CPU credits and is held to its "
        "baseline."
    )
    steps = steps_of(
        make_step(
            "See which processes use the CPU.",
            ssm_command(f, instance_name, ["top -b -n 1 -o %CPU | head -20", "uptime"]),
        ),
        make_step(
            "Graph CPUUtilization over the hour: a plateau at 100% is saturation, a step "
            "up points at a change.",
            metric_command(f, "AWS/EC2", "CPUUtilization", dim("InstanceId", instance_name)),
        ),
        make_step(
            "Check the instance type: on a T-class instance, a CPUCreditBalance at zero "
            "caps it at its baseline.",
            f"aws ec2 describe-instances --instance-ids {instance} --query "
            "'Reservations[].Instances[].[InstanceType,CpuOptions,State.Name]'"
            f"{region_flag(f)}",
        ),
        make_step(
            "If it is load, scale out (or up) to buy room; if it is one runaway process, "
            "restart it and capture a profile first."
        ),
    )
    return root, steps


def _rds(f: Facts, ev: Evidence, instance_name: str) -> tuple[str, tuple[RemediationStep, ...]]:
    """An RDS instance: the queries, not the host, use the CPU."""
    root = (
        f"RDS instance `{instance_name}` is CPU-saturated ({ev.lead}): usually a few "
        "expensive queries (a missing index, a changed plan, a new query from a deploy) "
        "rather than overall load."
    )
    steps = steps_of(
        make_step(
            "Find the queries that use the CPU.",
            f"RDS console → Databases → {instance_name} → Monitoring → Performance Insights "
            "(Top SQL)",
        ),
        make_step(
            "On PostgreSQL, list the most expensive statements.",
            "SELECT left(query, 80), calls, round(total_exec_time) AS total_ms FROM "
            "pg_stat_statements ORDER BY total_exec_time DESC LIMIT 10;",
        ),
        make_step(
            "Graph CPUUtilization against DatabaseConnections: both up means load, CPU "
            "alone means expensive queries.",
            metric_command(
                f, "AWS/RDS", "CPUUtilization", dim("DBInstanceIdentifier", instance_name)
            ),
        ),
        make_step("Fix the top query (index, rewrite) before scaling the instance up."),
    )
    return root, steps


def _other_host(f: Facts, ev: Evidence) -> tuple[str, tuple[RemediationStep, ...]]:
    """Any other host or service: find the busy process first."""
    root = (
        f"CPU is saturated on {f.service} ({ev.lead}): more traffic, a runaway process, or "
        "code that became more expensive after a change. Saturation by itself is a "
        "symptom; what matters is which work grew."
    )
    profile = make_step("Scale out to buy room if users are affected; then profile the hot path.")
    steps = (
        steps_of(
            *ecs_steps(f, "CPUUtilization"),
            link_step(f),
            make_step("Once there is room, profile which requests or jobs cost the CPU."),
        )
        if f.ecs_service
        else steps_of(
            make_step(
                f"Graph CPU on `{f.host}` by mode over the last hours to see when it started.",
                f'sum by (mode) (rate(node_cpu_seconds_total{{instance="{f.host}"}}[5m]))',
            )
            if f.host
            else link_step(f)
            or make_step("Find when CPU rose and which hosts or containers are affected."),
            make_step(
                "See which processes or containers use the CPU (top, kubectl top, "
                "container metrics)."
            ),
            make_step("Check whether traffic rose at the same time, or a deploy preceded it."),
            profile,
        )
    )
    return root, steps


def playbook(f: Facts, ev: Evidence) -> Playbook:
    if f.instance_id:
        root, steps = _ec2(f, ev, f.instance_id)
    elif f.db_instance:
        root, steps = _rds(f, ev, f.db_instance)
    else:
        root, steps = _other_host(f, ev)
    return Playbook(
        root_cause=root,
        hypothesis=f"CPU saturation on {f.service}.",
        impact=(
            f"While {f.service} is CPU-bound, every request on it slows down; queues grow and "
            "callers start timing out if it persists."
        ),
        stakes="saturation slows every request and can cascade into timeouts",
        outage=False,
        steps=steps_of(*steps, alarm_history_step(f)),
        check_first=(
            "Is traffic up, or is the same traffic costing more CPU?",
            f"Deploys or scheduled jobs just before {f.since}",
            "Whether latency and errors rose with it",
        ),
    )
