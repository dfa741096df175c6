"""A scenario's AWS state, put into a moto server through the AWS APIs (boto3).

moto runs in this process, so what no API can set is set on moto's own models afterwards:
the times of ECS deployments, Lambda versions and alarm state changes (which moto stamps
"now"), and the CloudTrail events, which only AWS itself writes. Nothing read back by the
tools is faked beyond that: they call the same APIs on the same server.
"""

from __future__ import annotations

import io
import json
import random
import zipfile
from datetime import datetime, timedelta
from typing import Any

from analysis.aws_clients import ClientFactory
from bench.investigation import alerts, trail
from bench.investigation.scenario import (
    AlarmSpec,
    EcsService,
    LambdaFunction,
    Metric,
    Scenario,
)
from tests.fakes.moto_server import ACCOUNT, REGION

ROLE = "bench-lambda-role"


def seed(scenario: Scenario, clients: ClientFactory, at: datetime) -> None:
    """Everything the scenario says the account holds, around an alert firing at `at`."""
    rng = random.Random(scenario.name)
    logs = clients("logs", REGION)
    for group in scenario.seed.log_groups:
        logs.create_log_group(logGroupName=group.name)
        for stream in group.streams:
            logs.create_log_stream(logGroupName=group.name, logStreamName=stream.name)
            events = [
                {"timestamp": _ms(at, minutes), "message": message}
                for minutes, message in sorted(stream.events)
            ]
            if events:
                logs.put_log_events(
                    logGroupName=group.name, logStreamName=stream.name, logEvents=events
                )
    cloudwatch = clients("cloudwatch", REGION)
    for metric in scenario.seed.metrics:
        _put_metric(cloudwatch, metric, at, rng)
    if scenario.alert.alarm is not None:
        _own_alarm(cloudwatch, scenario, at)
    for alarm in scenario.seed.alarms:
        _other_alarm(cloudwatch, alarm)
    for service in scenario.seed.ecs:
        _ecs(clients("ecs", REGION), service, at)
    if scenario.seed.lambdas:
        role = _lambda_role(clients("iam", REGION))
        for function in scenario.seed.lambdas:
            _lambda(clients("lambda", REGION), function, role, at)
    trail.put_events(scenario.seed.changes, at)


def _ms(at: datetime, minutes: float) -> int:
    return int((at + timedelta(minutes=minutes)).timestamp() * 1000)


def _put_metric(cloudwatch: Any, metric: Metric, at: datetime, rng: random.Random) -> None:
    data: list[dict[str, Any]] = []
    dimensions = [{"Name": name, "Value": value} for name, value in metric.dimensions.items()]
    for segment in metric.segments:
        for minute in range(segment.start, segment.end + 1):
            spread = segment.at(minute) * segment.jitter
            value = max(0.0, segment.at(minute) + rng.uniform(-spread, spread))
            data.append(
                {
                    "MetricName": metric.name,
                    "Dimensions": dimensions,
                    "Timestamp": at + timedelta(minutes=minute),
                    "Value": round(value, 2),
                    "Unit": metric.unit,
                }
            )
    for start in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace=metric.namespace, MetricData=data[start : start + 500])


def _own_alarm(cloudwatch: Any, scenario: Scenario, at: datetime) -> None:
    """The alarm the alert is about, as its payload describes it, with its earlier state
    changes and then the one that fired."""
    document = alerts.alarm_document(scenario.alert, at)
    trigger = document["Trigger"]
    name = document["AlarmName"]
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        AlarmDescription=document.get("AlarmDescription") or "",
        Namespace=trigger["Namespace"],
        MetricName=trigger["MetricName"],
        Dimensions=[{"Name": d["name"], "Value": d["value"]} for d in trigger["Dimensions"]],
        Statistic=_statistic(trigger["Statistic"]),
        Period=int(trigger["Period"]),
        EvaluationPeriods=int(trigger["EvaluationPeriods"]),
        Threshold=float(trigger["Threshold"]),
        ComparisonOperator=trigger["ComparisonOperator"],
    )
    changes = [(item.at, item.state, item.reason) for item in scenario.seed.alarm_history]
    changes.append((0.0, "ALARM", document["NewStateReason"]))
    for _, state, reason in changes:
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)
    trail.date_alarm_history(name, [at + timedelta(minutes=minutes) for minutes, _, _ in changes])


def _statistic(value: str) -> str:
    """The payload says `AVERAGE`, `SUM`; the API wants `Average`, `Sum`."""
    names = {"samplecount": "SampleCount"}
    return names.get(value.lower(), value.capitalize())


def _other_alarm(cloudwatch: Any, alarm: AlarmSpec) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName=alarm.name,
        Namespace=alarm.namespace,
        MetricName=alarm.metric,
        Dimensions=[{"Name": k, "Value": v} for k, v in alarm.dimensions.items()],
        Statistic=alarm.statistic,
        Period=60,
        EvaluationPeriods=3,
        Threshold=alarm.threshold,
        ComparisonOperator=alarm.comparison,
    )
    if alarm.state != "OK":
        cloudwatch.set_alarm_state(
            AlarmName=alarm.name, StateValue=alarm.state, StateReason=alarm.reason
        )


def _ecs(ecs: Any, spec: EcsService, at: datetime) -> None:
    ecs.create_cluster(clusterName=spec.cluster)
    _task_definitions(ecs, spec.images)
    primary = next(d for d in spec.deployments if d.status == "PRIMARY")
    ecs.create_service(
        cluster=spec.cluster,
        serviceName=spec.service,
        taskDefinition=primary.task_definition,
        desiredCount=primary.desired,
    )
    trail.date_ecs(spec, at)


def _task_definitions(ecs: Any, images: dict[str, str]) -> None:
    """ECS numbers revisions itself, from 1: each family is registered up to its highest
    revision named, the revisions not named with the image of the lowest one named."""
    families: dict[str, dict[int, str]] = {}
    for definition, image in images.items():
        family, revision = definition.rsplit(":", 1)
        families.setdefault(family, {})[int(revision)] = image
    for family, revisions in families.items():
        first = revisions[min(revisions)]
        for number in range(1, max(revisions) + 1):
            ecs.register_task_definition(
                family=family,
                containerDefinitions=[
                    {"name": family, "image": revisions.get(number, first), "memory": 512}
                ],
            )


def _lambda_role(iam: Any) -> str:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    try:
        role = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(policy))
    except iam.exceptions.EntityAlreadyExistsException:
        return f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
    return str(role["Role"]["Arn"])


def _lambda(client: Any, spec: LambdaFunction, role: str, at: datetime) -> None:
    """Each version in turn: the code and configuration as it was, then published."""
    for index, version in enumerate(spec.versions):
        code = f"def handler(event, context):\n    return {index}\n".encode()
        zipped = _zip(code)
        if index == 0:
            client.create_function(
                FunctionName=spec.name,
                Runtime=spec.runtime,
                Role=role,
                Handler="index.handler",
                Code={"ZipFile": zipped},
                Timeout=version.timeout,
                MemorySize=version.memory,
            )
        else:
            client.update_function_code(FunctionName=spec.name, ZipFile=zipped)
            client.update_function_configuration(
                FunctionName=spec.name, Timeout=version.timeout, MemorySize=version.memory
            )
        client.publish_version(FunctionName=spec.name, Description=version.description)
    trail.date_lambda(spec, at)


def _zip(code: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", code)
    return buffer.getvalue()
