"""The investigation's "what changed" AWS tools against moto's server over a real socket:
an alarm's history, CloudTrail's write events, and the deployments of an ECS service and a
Lambda function (tests/integration/test_investigation_aws.py has the loop, logs, metrics and
arguments).

moto lacks DescribeAlarmHistory and LookupEvents: tests/fakes/moto_gaps.py adds them to moto,
fed from seeded data. moto's ECS keeps one deployment per service and never writes service
events, so the rollout and the events AWS would show are set on moto's service object, which
DescribeServices then serializes like any other field. Lambda versions are real: moto
publishes one per changed code.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto.ecs.models import ecs_backends

from analysis.investigation.registry import ToolRegistry
from incidents.sqlite import SqliteStore
from tests.alarms import ALARM, CHANGE, classic_alarm
from tests.conftest import ManualClock
from tests.fakes.moto_gaps import (
    moto_gaps,  # noqa: F401
    seed_alarm_history,
    seed_trail_events,
    state_update,
)
from tests.fakes.moto_server import ACCOUNT, REGION, aws, moto_server  # noqa: F401
from tests.integration.test_investigation_aws import put_alarm, run, stamp, tools

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aws", "moto_gaps")]


@pytest.fixture
def alarm_tools(store: SqliteStore, clock: ManualClock) -> ToolRegistry:
    return tools(classic_alarm(), store, clock)


# --- alarm history ---------------------------------------------------------------------------


async def test_alarm_history_is_the_alerts_alarm_before_the_alert(alarm_tools: ToolRegistry):
    seed_alarm_history(
        [
            state_update(ALARM, CHANGE - timedelta(hours=30), "OK", "ALARM", "old spike"),
            state_update(ALARM, CHANGE - timedelta(hours=2), "OK", "ALARM", "CPU 97 > 80"),
            state_update(ALARM, CHANGE - timedelta(hours=1), "ALARM", "OK", "CPU 41 < 80"),
            state_update(ALARM, CHANGE, "OK", "ALARM", "CPU 99 > 80"),
            state_update("other-alarm", CHANGE, "OK", "ALARM", "not ours"),
        ]
    )

    history = await run(alarm_tools, "alarm_history")

    assert history == [
        {
            "at": stamp(CHANGE - timedelta(hours=h)),
            "type": "StateUpdate",
            "summary": summary,
            "reason": reason,
        }
        for h, summary, reason in (
            (0, "Alarm updated from OK to ALARM", "CPU 99 > 80"),
            (1, "Alarm updated from ALARM to OK", "CPU 41 < 80"),
            (2, "Alarm updated from OK to ALARM", "CPU 97 > 80"),
        )
    ]
    longer = await run(alarm_tools, "alarm_history", hours_before=48, limit=2)
    assert [item["reason"] for item in longer] == ["CPU 99 > 80", "CPU 41 < 80"]
    older = await run(alarm_tools, "alarm_history", hours_before=48)
    assert older[-1]["reason"] == "old spike"


async def test_alarm_history_includes_set_alarm_state_changes(
    store: SqliteStore, clock: ManualClock
):
    put_alarm()
    boto3.client("cloudwatch").set_alarm_state(
        AlarmName=ALARM, StateValue="ALARM", StateReason="CPU 95 > 80"
    )
    registry = tools(classic_alarm(changed=datetime.now(UTC)), store, clock)

    [change] = await run(registry, "alarm_history")

    assert (change["summary"], change["reason"]) == (
        "Alarm updated from OK to ALARM",
        "CPU 95 > 80",
    )


# --- changes ---------------------------------------------------------------------------------


def trail_event(
    name: str, minutes: int, source: str, resource: str, *, read_only: bool = False, **extra: Any
) -> dict[str, Any]:
    return {
        "EventId": f"{name}-{minutes}",
        "EventName": name,
        "ReadOnly": "true" if read_only else "false",
        "EventTime": CHANGE + timedelta(minutes=minutes),
        "EventSource": source,
        "Username": "deployer",
        "Resources": [{"ResourceType": "AWS::ECS::Service", "ResourceName": resource}],
        "CloudTrailEvent": json.dumps({"eventName": name, **extra}),
    }


async def test_recent_changes_are_the_writes_before_the_alert(alarm_tools: ToolRegistry):
    ecs, lam = "ecs.amazonaws.com", "lambda.amazonaws.com"
    seed_trail_events(
        [
            trail_event("UpdateService", -10, ecs, "checkout"),
            trail_event("DescribeServices", -5, ecs, "checkout", read_only=True),
            trail_event("UpdateFunctionConfiguration", -60, lam, "checkout"),
            trail_event("DeleteService", -30, ecs, "search", errorCode="AccessDenied"),
            trail_event("UpdateService", -200, ecs, "checkout"),
            trail_event("UpdateService", 5, ecs, "checkout"),
        ]
    )

    changes = await run(alarm_tools, "recent_changes")

    assert changes[0] == {
        "at": stamp(CHANGE - timedelta(minutes=10)),
        "event": "UpdateService",
        "source": ecs,
        "user": "deployer",
        "resources": ["checkout"],
    }
    assert [(c["event"], c.get("error")) for c in changes] == [
        ("UpdateService", None),
        ("DeleteService", "AccessDenied"),
        ("UpdateFunctionConfiguration", None),
    ]
    on_checkout = await run(
        alarm_tools,
        "recent_changes",
        resource_name="checkout",
        event_source=ecs,
        minutes_before=240,
    )
    assert [c["at"] for c in on_checkout] == [
        stamp(CHANGE - timedelta(minutes=10)),
        stamp(CHANGE - timedelta(minutes=200)),
    ]
    from_lambda = await run(alarm_tools, "recent_changes", event_source=lam, limit=1)
    assert [c["event"] for c in from_lambda] == ["UpdateFunctionConfiguration"]


def ecs_service(cluster: str, service: str) -> list[str]:
    """A Fargate service on its second task definition: moto's ECS keeps one deployment and no
    events, so the rollout AWS would show (the new one in progress, the old one draining) and
    the service events are set on moto's service object."""
    ecs = boto3.client("ecs")
    ecs.create_cluster(clusterName=cluster)
    arns = [
        ecs.register_task_definition(
            family=service,
            containerDefinitions=[{"name": "app", "image": f"app:{n}", "memory": 512}],
        )["taskDefinition"]["taskDefinitionArn"]
        for n in (1, 2)
    ]
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=arns[0], desiredCount=2)
    ecs.update_service(cluster=cluster, service=service, taskDefinition=arns[1])
    found = ecs_backends[ACCOUNT][REGION].services[f"{cluster}:{service}"]
    first = found.deployments[0]
    found.deployments = [
        {**first, "id": "ecs-svc/2", "taskDefinition": arns[1], "rolloutState": "IN_PROGRESS",
         "createdAt": CHANGE - timedelta(minutes=8), "updatedAt": CHANGE - timedelta(minutes=1),
         "runningCount": 1, "desiredCount": 2},
        {**first, "id": "ecs-svc/1", "status": "ACTIVE", "taskDefinition": arns[0],
         "rolloutState": "COMPLETED", "createdAt": CHANGE - timedelta(days=3),
         "updatedAt": CHANGE - timedelta(days=3), "runningCount": 1, "desiredCount": 2},
    ]  # fmt: skip
    found.events = [
        {"id": f"e{m}", "createdAt": CHANGE - timedelta(minutes=m),
         "message": f"(service {service}) event {m}"}
        for m in range(25)
    ]  # fmt: skip
    return arns


async def test_deployments_of_an_ecs_service(alarm_tools: ToolRegistry):
    old, new = ecs_service("prod", "checkout")

    found = await run(alarm_tools, "deployments", ecs_cluster="prod", ecs_service="checkout")

    assert (found["service"], found["cluster"], found["status"]) == ("checkout", "prod", "ACTIVE")
    assert found["task_definition"] == new
    assert found["deployments"] == [
        {
            "id": "ecs-svc/2",
            "status": "PRIMARY",
            "task_definition": new,
            "created_at": stamp(CHANGE - timedelta(minutes=8)),
            "updated_at": stamp(CHANGE - timedelta(minutes=1)),
            "rollout_state": "IN_PROGRESS",
            "running": 1,
            "desired": 2,
        },
        {
            "id": "ecs-svc/1",
            "status": "ACTIVE",
            "task_definition": old,
            "created_at": stamp(CHANGE - timedelta(days=3)),
            "updated_at": stamp(CHANGE - timedelta(days=3)),
            "rollout_state": "COMPLETED",
            "running": 1,
            "desired": 2,
        },
    ]
    assert len(found["events"]) == 20
    assert found["events"][0] == {"at": stamp(CHANGE), "message": "(service checkout) event 0"}
    with pytest.raises(LookupError, match="ECS service 'search' in cluster 'prod': MISSING"):
        await run(alarm_tools, "deployments", ecs_cluster="prod", ecs_service="search")


DB_PASSWORD = "hunter2-Sup3rSecret"
STRIPE_KEY = "not-a-real-stripe-key-0001"
LAMBDA_FIELDS = (
    "function",
    "last_modified",
    "version",
    "code_sha256",
    "state",
    "last_update_status",
    "runtime",
    "memory",
    "timeout",
    "versions",
)


def zipped(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", source)
    return buffer.getvalue()


async def test_deployments_of_a_lambda_function_its_newest_versions_and_no_secrets(
    alarm_tools: ToolRegistry,
):
    role = boto3.client("iam").create_role(
        RoleName="checkout-fn",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    lam = boto3.client("lambda")
    lam.create_function(
        FunctionName="checkout",
        Runtime="python3.12",
        Role=role,
        Handler="handler.main",
        Code={"ZipFile": zipped("v0")},
        MemorySize=256,
        Timeout=15,
        Environment={"Variables": {"DB_PASSWORD": DB_PASSWORD, "STRIPE_KEY": STRIPE_KEY}},
    )
    shas = []
    for n in range(1, 7):
        shas.append(
            lam.update_function_code(FunctionName="checkout", ZipFile=zipped(f"v{n}"))["CodeSha256"]
        )
        lam.publish_version(FunctionName="checkout", Description=f"release {n}")

    found = await run(alarm_tools, "deployments", lambda_function="checkout")

    assert (found["function"], found["runtime"], found["memory"], found["timeout"]) == (
        "checkout",
        "python3.12",
        256,
        15,
    )
    assert found["code_sha256"] == shas[-1] and found["version"] == "$LATEST"
    assert found["last_update_status"] == "Successful" and found["last_modified"]
    assert [(v["version"], v["description"]) for v in found["versions"]] == [
        (str(n), f"release {n}") for n in (6, 5, 4, 3, 2)
    ]
    assert [v["code_sha256"] for v in found["versions"]] == shas[:0:-1]
    # The configuration only: never the environment (secrets, often) nor the code's location,
    # though AWS serves the tool's calls with both (the environment is there to leak).
    served = lam.get_function_configuration(FunctionName="checkout")
    assert served["Environment"]["Variables"]["DB_PASSWORD"] == DB_PASSWORD
    assert set(found) == set(LAMBDA_FIELDS)
    assert all(
        set(v) == {"version", "last_modified", "code_sha256", "description"}
        for v in found["versions"]
    )
    shown = json.dumps(found)
    assert DB_PASSWORD not in shown and STRIPE_KEY not in shown and "DB_PASSWORD" not in shown
    assert "amazonaws.com" not in shown and "Location" not in shown
    with pytest.raises(Exception, match="ResourceNotFoundException: Function not found"):
        await run(alarm_tools, "deployments", lambda_function="missing")
