"""5xx spikes. Which side answers 5xx decides where to look: a load balancer's own 5xx mean no
healthy target, its targets' 5xx the application; API Gateway separates integration errors.
"""

from __future__ import annotations

from analysis.models import RemediationStep
from analysis.offline.commands import (
    alarm_history_step,
    cap,
    dim,
    link_step,
    logs_command,
    make_step,
    metric_command,
    steps_of,
)
from analysis.offline.facts import Facts
from analysis.offline.model import Evidence, Playbook


def _load_balancer(
    f: Facts, ev: Evidence, balancer_name: str
) -> tuple[str, tuple[RemediationStep, ...]]:
    """A load balancer: which side (itself or its targets) answers 5xx says where to look."""
    lb_name = balancer_name.split("/")[1] if "/" in balancer_name else balancer_name
    alb = balancer_name.startswith("app/")
    namespace = "AWS/ApplicationELB" if alb else "AWS/ELB"
    dimension = dim("LoadBalancer" if alb else "LoadBalancerName", balancer_name)
    target_metric, lb_metric = (
        ("HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count")
        if alb
        else ("HTTPCode_Backend_5XX", "HTTPCode_ELB_5XX")
    )
    alarmed = f.metric.name.lower() if f.metric else ""
    if "target" in alarmed or "backend" in alarmed:
        origin = (
            "the targets themselves answer with errors, so the failure is in the "
            f"application behind it, not in the load balancer; {lb_metric} shows whether "
            "the load balancer adds its own"
        )
    elif "elb" in alarmed:
        origin = (
            "the load balancer itself could not get an answer from a target (502: the "
            "target closed the connection, 503: no healthy target, 504: the target timed "
            "out), so look at target health before application errors"
        )
    else:
        origin = (
            f"{target_metric} counts errors the targets answered (an application failure), "
            f"{lb_metric} those the load balancer produced because it got no answer "
            "(502, 503, 504), and which of the two rose says where to look"
        )
    root = f"Load balancer `{lb_name}` is returning 5xx responses ({ev.lead}): {origin}."
    steps = steps_of(
        make_step(
            "See whether the errors come from the targets.",
            metric_command(f, namespace, target_metric, dimension, "Sum"),
        ),
        make_step(
            "…or from the load balancer itself (no healthy targets, timeouts).",
            metric_command(f, namespace, lb_metric, dimension, "Sum"),
        ),
        make_step(
            "Check target health: unhealthy or draining targets point at crashes, failed "
            "health checks or a bad deploy.",
            f"EC2 console → Load Balancers → {lb_name} → Resource map",
        ),
        make_step(
            "Read the application logs of the targets for the same minutes: the first "
            "error after a quiet period is usually the cause."
        ),
        make_step("If a deploy preceded the spike, roll it back first and investigate after."),
    )
    return root, steps


def _api_gateway(f: Facts, ev: Evidence, api: str) -> tuple[str, tuple[RemediationStep, ...]]:
    """An API Gateway API: integration errors against the API's own."""
    root = (
        f"API `{api}` is returning 5xx responses ({ev.lead}). API Gateway counts "
        "integration failures as 5XXError: Lambda errors or throttles, integrations that "
        "exceed the 29-second limit, and malformed integration responses."
    )
    steps = steps_of(
        make_step(
            "Graph 5XXError with IntegrationLatency: latency near 29 s means integration timeouts.",
            metric_command(f, "AWS/ApiGateway", "5XXError", dim("ApiName", api), "Sum"),
        ),
        make_step(
            "Read the execution and access logs for the failing requests.",
            f"API Gateway console → APIs → {api} → Stages → Logs and tracing",
        ),
        make_step(
            "Check the errors and throttles of the Lambda function or service behind the "
            "failing routes."
        ),
        make_step("If a deploy preceded the spike, roll it back first and investigate after."),
    )
    return root, steps


def _other(f: Facts, ev: Evidence) -> tuple[str, tuple[RemediationStep, ...]]:
    """Any other service: the first new error in its logs."""
    root = (
        f"{cap(f.service)} is answering with server errors ({ev.lead}). A 5xx spike says "
        "that requests fail inside the service or behind it, not why: the cause is in the "
        "application's own errors, a failing dependency, or a recent change."
    )
    steps = steps_of(
        link_step(f),
        make_step(
            f"Read the application's errors around {f.occurred_at:%H:%M} UTC and find the "
            "first new error type.",
            logs_command(f, f.log_group, '?ERROR ?Exception ?" 500 " ?" 502 " ?" 503 "')
            if f.log_group
            else None,
        ),
        make_step(
            "Split the errors by status and route: 502/504 point at upstream failures, 500 "
            "at the application, 503 at capacity or health checks."
        ),
        make_step(
            "Check the health of the dependencies the failing routes call (database, "
            "queues, third-party APIs)."
        ),
        make_step("If a deploy preceded the spike, roll it back first and investigate after."),
    )
    return root, steps


def playbook(f: Facts, ev: Evidence) -> Playbook:
    if f.load_balancer:
        root, steps = _load_balancer(f, ev, f.load_balancer)
    elif f.api_name:
        root, steps = _api_gateway(f, ev, f.api_name)
    else:
        root, steps = _other(f, ev)
    return Playbook(
        root_cause=root,
        hypothesis=f"A 5xx spike on {f.service}: requests fail inside the service or behind it.",
        impact=(
            f"Every 5xx is a failed user request to {f.service}; clients that retry add load, "
            "and anything downstream of these calls degrades with it."
        ),
        stakes="every 5xx is a failed user request",
        outage=True,
        steps=steps_of(*steps, alarm_history_step(f)),
        check_first=(
            "The share of requests failing, not just the count",
            "Whether the targets or the load balancer (or gateway) produce the errors",
            f"Deploys just before {f.since}",
        ),
    )
