"""What no AWS API lets a test set, set on moto's in-process models: when things happened.

moto stamps deployments, function versions and alarm state changes with the time of the call,
so a scenario's "deployed 14 minutes before the alarm" is written here after the API made the
resource. CloudTrail events are only ever written by AWS; they go where the test moto's
`LookupEvents` reads them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.awslambda.models import lambda_backends
from moto.cloudwatch.models import cloudwatch_backends
from moto.ecs.models import ecs_backends

from bench.investigation.scenario import Change, EcsService, LambdaFunction
from tests.fakes.moto_gaps import seed_trail_events
from tests.fakes.moto_server import ACCOUNT, REGION


def _naive(at: datetime) -> datetime:
    """moto keeps naive UTC datetimes."""
    return at.astimezone(UTC).replace(tzinfo=None)


def date_alarm_history(name: str, times: list[datetime]) -> None:
    """The alarm's state changes, made in order just now, dated `times` (the last: the one
    that fired). moto moves the state being left into `history` on each change."""
    alarm = cloudwatch_backends[ACCOUNT][REGION].alarms[name]
    entries: list[Any] = alarm.history
    # history[0] is the creation's OK; history[i] (i >= 1) is the state set by change i-1.
    dated = [tuple(entries[0])]
    for index, entry in enumerate(entries[1:]):
        kind, reason, data, value, _ = entry
        dated.append((kind, reason, data, value, _naive(times[index])))
    alarm.history = dated
    alarm.state_updated_timestamp = _naive(times[-1])


def date_ecs(spec: EcsService, at: datetime) -> None:
    """The service's deployments and events as the scenario dates them."""
    backend = ecs_backends[ACCOUNT][REGION]
    service = backend.services[f"{spec.cluster}:{spec.service}"]
    template = dict(service.deployments[0])
    deployments = []
    for index, deployment in enumerate(sorted(spec.deployments, key=lambda d: -d.at)):
        moment = _naive(at + timedelta(minutes=deployment.at))
        deployments.append(
            {
                **template,
                "id": f"ecs-svc/{4_700_000_000_000_000 + index * 7919}",
                "status": deployment.status,
                "taskDefinition": _task_arn(deployment.task_definition),
                "rolloutState": deployment.rollout_state,
                "rolloutStateReason": f"ECS deployment {deployment.rollout_state.lower()}.",
                "runningCount": deployment.running,
                "desiredCount": deployment.desired,
                "pendingCount": max(0, deployment.desired - deployment.running),
                "createdAt": moment,
                "updatedAt": moment,
            }
        )
    service.deployments = deployments
    primary = next(d for d in spec.deployments if d.status == "PRIMARY")
    service.running_count, service.pending_count = primary.running, 0
    service.events = [
        {
            "id": f"event-{index}",
            "createdAt": _naive(at + timedelta(minutes=minutes)),
            "message": message,
        }
        for index, (minutes, message) in enumerate(sorted(spec.events, key=lambda e: -e[0]))
    ]


def _task_arn(definition: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{definition}"


def date_lambda(spec: LambdaFunction, at: datetime) -> None:
    """Each published version, and $LATEST, dated as the scenario says."""
    storage = lambda_backends[ACCOUNT][REGION]._lambdas
    entry = storage._functions[spec.name]
    for version, published in zip(spec.versions, entry["versions"], strict=True):
        published.last_modified = _lambda_time(at + timedelta(minutes=version.at))
    entry["latest"].last_modified = _lambda_time(at + timedelta(minutes=spec.versions[-1].at))


def _lambda_time(at: datetime) -> str:
    """Lambda's `LastModified` format: `2026-12-07T22:41:05.123+0000`."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def put_events(changes: list[Change], at: datetime) -> None:
    """The scenario's CloudTrail events, in LookupEvents' shape, for the test moto's
    `LookupEvents` (tests/fakes/moto_gaps.py)."""
    events = []
    for index, change in enumerate(changes):
        moment = at + timedelta(minutes=change.at)
        detail = {
            "eventVersion": "1.09",
            "userIdentity": {"type": "IAMUser", "userName": change.user},
            "eventTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": change.source,
            "eventName": change.event,
            "awsRegion": REGION,
            "readOnly": change.read_only,
            "eventID": f"{index:08d}-0000-4000-8000-{int(moment.timestamp()):012d}",
            "recipientAccountId": ACCOUNT,
        }
        events.append(
            {
                "EventId": detail["eventID"],
                "EventName": change.event,
                "ReadOnly": str(change.read_only).lower(),
                "EventTime": moment,
                "EventSource": change.source,
                "Username": change.user,
                "Resources": [
                    {"ResourceType": change.resource_type, "ResourceName": name}
                    for name in change.resources
                ],
                "CloudTrailEvent": json.dumps(detail),
            }
        )
    seed_trail_events(events)
