"""The "what changed" tools of the investigation: CloudTrail's write events before the alert,
and the deployments of an ECS service or a Lambda function.

Most incidents follow a change; these answer "what was deployed or reconfigured just before"
without Claude needing write access to anything.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from analysis.investigation.arguments import integer, string
from analysis.investigation.aws_scope import AwsScope, aws_tool, iso
from analysis.investigation.registry import Tool
from ingest.parsers.base import as_dict

RECENT_CHANGES = "recent_changes"
DEPLOYMENTS = "deployments"
MAX_CHANGES = 50
MAX_CHANGE_MINUTES = 1440
# LookupEvents serves 2 requests a second per account and region: a few pages only.
TRAIL_PAGES = 4
ECS_EVENTS = 20
LAMBDA_VERSIONS = 5
VERSION_PAGES = 10
_NAME = {"type": "string", "maxLength": 255}

CHANGES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "minutes_before": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_CHANGE_MINUTES,
            "description": "How far back from the alert (default 120).",
        },
        "resource_name": {**_NAME, "description": "Only events on this resource (name or ARN)."},
        "event_source": {**_NAME, "description": "Only this service, e.g. ecs.amazonaws.com."},
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_CHANGES},
    },
    "additionalProperties": False,
}

DEPLOYMENTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ecs_cluster": {**_NAME, "description": "The ECS cluster, with ecs_service."},
        "ecs_service": {**_NAME, "description": "The ECS service, with ecs_cluster."},
        "lambda_function": {**_NAME, "description": "A Lambda function's name or ARN."},
    },
    "additionalProperties": False,
}


def changes_tools(scope: AwsScope) -> list[Tool]:
    return [
        aws_tool(
            RECENT_CHANGES,
            "CloudTrail's write events (deploys, configuration changes, deletions) in the "
            "minutes before the alert, newest first; optionally only on one resource or from "
            "one service. Read-only.",
            CHANGES_SCHEMA,
            recent_changes,
            scope,
        ),
        aws_tool(
            DEPLOYMENTS,
            "The deployments of an ECS service (with its recent service events) or of a "
            "Lambda function (its configuration and latest published versions). Give "
            "ecs_cluster and ecs_service, or lambda_function. Read-only.",
            DEPLOYMENTS_SCHEMA,
            deployments,
            scope,
        ),
    ]


def recent_changes(scope: AwsScope, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """LookupEvents takes one lookup attribute: the most selective one given goes to AWS
    (resource, then service, else ReadOnly=false), and the rest are filtered here."""
    minutes = integer(arguments, "minutes_before", 120, 1, MAX_CHANGE_MINUTES)
    resource = string(arguments, "resource_name", 255)
    source = string(arguments, "event_source", 255)
    limit = integer(arguments, "limit", MAX_CHANGES, 1, MAX_CHANGES)
    if resource:
        attribute = {"AttributeKey": "ResourceName", "AttributeValue": resource}
    elif source:
        attribute = {"AttributeKey": "EventSource", "AttributeValue": source}
    else:
        attribute = {"AttributeKey": "ReadOnly", "AttributeValue": "false"}
    client = scope.client("cloudtrail")
    request: dict[str, Any] = {
        "LookupAttributes": [attribute],
        "StartTime": scope.at - timedelta(minutes=minutes),
        "EndTime": scope.at,
        "MaxResults": MAX_CHANGES,
    }
    found: list[dict[str, Any]] = []
    for _ in range(TRAIL_PAGES):
        page = client.lookup_events(**request)
        found += [
            _change(event)
            for event in page.get("Events", [])
            if str(event.get("ReadOnly", "false")).lower() != "true"
            and (not source or event.get("EventSource") == source)
        ]
        request["NextToken"] = page.get("NextToken")
        if not request["NextToken"] or len(found) >= limit:
            break
    return found[:limit]


def _change(event: dict[str, Any]) -> dict[str, Any]:
    change: dict[str, Any] = {
        "at": iso(event["EventTime"]),
        "event": event.get("EventName", ""),
        "source": event.get("EventSource", ""),
        "user": event.get("Username", ""),
        "resources": [r.get("ResourceName", "") for r in event.get("Resources", [])],
    }
    try:
        detail = as_dict(json.loads(event.get("CloudTrailEvent") or "{}"))
    except ValueError:
        detail = {}
    if detail.get("errorCode"):  # a refused call changed nothing, but says someone tried
        change["error"] = str(detail["errorCode"])
    return change


def deployments(scope: AwsScope, arguments: dict[str, Any]) -> dict[str, Any]:
    cluster = string(arguments, "ecs_cluster", 255)
    service = string(arguments, "ecs_service", 255)
    function = string(arguments, "lambda_function", 255)
    if function and (cluster or service):
        raise ValueError("give ecs_cluster and ecs_service, or lambda_function, not both")
    if function:
        return _lambda(scope, function)
    if not (cluster and service):
        raise ValueError("give ecs_cluster and ecs_service together, or lambda_function")
    return _ecs(scope, cluster, service)


def _ecs(scope: AwsScope, cluster: str, service: str) -> dict[str, Any]:
    response = scope.client("ecs").describe_services(cluster=cluster, services=[service])
    if not response.get("services"):
        reasons = ", ".join(str(f.get("reason", "")) for f in response.get("failures", []))
        raise LookupError(f"ECS service {service!r} in cluster {cluster!r}: {reasons or 'none'}")
    found = response["services"][0]
    return {
        "service": found.get("serviceName", service),
        "cluster": cluster,
        "status": found.get("status", ""),
        "desired": found.get("desiredCount"),
        "running": found.get("runningCount"),
        "task_definition": found.get("taskDefinition", ""),
        "deployments": [
            {
                "id": d.get("id", ""),
                "status": d.get("status", ""),
                "task_definition": d.get("taskDefinition", ""),
                "created_at": iso(d["createdAt"]) if d.get("createdAt") else None,
                "updated_at": iso(d["updatedAt"]) if d.get("updatedAt") else None,
                "rollout_state": d.get("rolloutState", ""),
                "running": d.get("runningCount"),
                "desired": d.get("desiredCount"),
            }
            for d in found.get("deployments", [])
        ],
        "events": [
            {"at": iso(e["createdAt"]), "message": e.get("message", "")}
            for e in found.get("events", [])[:ECS_EVENTS]
        ],
    }


def _lambda(scope: AwsScope, function: str) -> dict[str, Any]:
    """GetFunctionConfiguration rather than GetFunction, which also hands out a presigned URL
    to the code; of the configuration, only the fields below leave here, never the environment
    variables (often secrets)."""
    client = scope.client("lambda")
    config = client.get_function_configuration(FunctionName=function)
    published: list[dict[str, Any]] = []
    request: dict[str, Any] = {"FunctionName": function, "MaxItems": 50}
    # Oldest first, so the newest are on the last page.
    for _ in range(VERSION_PAGES):
        page = client.list_versions_by_function(**request)
        published += [v for v in page.get("Versions", []) if str(v.get("Version")).isdigit()]
        if not page.get("NextMarker"):
            break
        request["Marker"] = page["NextMarker"]
    newest = sorted(published, key=lambda v: int(v["Version"]), reverse=True)[:LAMBDA_VERSIONS]
    return {
        "function": config.get("FunctionName", function),
        "last_modified": config.get("LastModified", ""),
        "version": config.get("Version", ""),
        "code_sha256": config.get("CodeSha256", ""),
        "state": config.get("State", ""),
        "last_update_status": config.get("LastUpdateStatus", ""),
        "runtime": config.get("Runtime", ""),
        "memory": config.get("MemorySize"),
        "timeout": config.get("Timeout"),
        "versions": [
            {
                "version": v["Version"],
                "last_modified": v.get("LastModified", ""),
                "code_sha256": v.get("CodeSha256", ""),
                "description": v.get("Description", ""),
            }
            for v in newest
        ],
    }
