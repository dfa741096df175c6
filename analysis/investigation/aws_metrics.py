"""The CloudWatch tools of the investigation: a metric's datapoints, alarms, and an alarm's
history.

Metrics default to the alarm's own (as the opening evidence shows them), so that Claude can
look further back or at a finer period; any other metric is read the same way, within the
window cap and at most `MAX_POINTS` points per series.
"""

from __future__ import annotations

import json
import math
import re
from datetime import timedelta
from typing import Any

from analysis.alarm_metrics import MetricQuery, fetch_metric_series
from analysis.investigation.arguments import choice, integer, string, strings
from analysis.investigation.aws_scope import AwsScope, aws_tool, iso, minutes_schema
from analysis.investigation.registry import Tool
from ingest.parsers.base import as_dict

METRIC_DATA = "metric_data"
DESCRIBE_ALARMS = "describe_alarms"
ALARM_HISTORY = "alarm_history"
MAX_POINTS = 360
MAX_ALARMS = 50
MAX_HISTORY = 100
MAX_HISTORY_HOURS = 168
STATES = ("ALARM", "OK", "INSUFFICIENT_DATA")
HISTORY_TYPES = ("StateUpdate", "ConfigurationUpdate", "Action")
REASON_CHARS = 300
_STAT = re.compile(
    r"^(Average|Sum|Minimum|Maximum|SampleCount|IQM|(p|tm|wm|tc|ts)\d{1,2}(\.\d+)?)$"
)
_NAME = {"type": "string", "maxLength": 255}

METRIC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "namespace": {**_NAME, "description": "e.g. AWS/EC2; default: the alarm's own metric."},
        "metric_name": {**_NAME, "description": "e.g. CPUUtilization, with namespace."},
        "dimensions": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": 'Dimension name to value, e.g. {"InstanceId": "i-0abc"}.',
        },
        "stat": {
            "type": "string",
            "description": "Average (default), Sum, Minimum, Maximum, SampleCount, or p99...",
        },
        "period_seconds": {
            "type": "integer",
            "minimum": 60,
            "description": "A multiple of 60 (default 60, or the alarm's own period).",
        },
        **minutes_schema(60, 10),
    },
    "additionalProperties": False,
}

ALARMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "alarm_names": {"type": "array", "items": _NAME, "maxItems": MAX_ALARMS},
        "alarm_name_prefix": _NAME,
        "state": {"type": "string", "enum": list(STATES)},
    },
    "additionalProperties": False,
}

HISTORY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "alarm_name": {**_NAME, "description": "Default: the alert's own alarm."},
        "hours_before": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_HISTORY_HOURS,
            "description": "How far back from the alert (default 24).",
        },
        "history_type": {"type": "string", "enum": list(HISTORY_TYPES)},
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_HISTORY},
    },
    "additionalProperties": False,
}


def metrics_tools(scope: AwsScope) -> list[Tool]:
    return [
        aws_tool(
            METRIC_DATA,
            "Read a CloudWatch metric's datapoints in a window around the alert, oldest first "
            "(default: the alarm's own metric, each series of a metric-math alarm). Read-only.",
            METRIC_SCHEMA,
            metric_data,
            scope,
        ),
        aws_tool(
            DESCRIBE_ALARMS,
            "List CloudWatch alarms (by names, name prefix or state) with their state, reason, "
            f"metric and threshold; at most {MAX_ALARMS}. Read-only.",
            ALARMS_SCHEMA,
            describe_alarms,
            scope,
        ),
        aws_tool(
            ALARM_HISTORY,
            "A CloudWatch alarm's history before the alert, newest first (default: the alert's "
            "own alarm, state changes over 24 hours). Read-only.",
            HISTORY_SCHEMA,
            alarm_history,
            scope,
        ),
    ]


def _queries(scope: AwsScope, arguments: dict[str, Any]) -> list[MetricQuery]:
    """The metric named by the arguments, else the alarm's own metrics."""
    namespace = string(arguments, "namespace", 255)
    name = string(arguments, "metric_name", 255)
    dims = arguments.get("dimensions", {})
    if (
        not isinstance(dims, dict)
        or len(dims) > 30
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in dims.items())
    ):
        raise ValueError("dimensions must be an object of at most 30 names to string values")
    stat = arguments.get("stat")
    if stat is not None and not (isinstance(stat, str) and _STAT.match(stat)):
        raise ValueError("stat must be Average, Sum, Minimum, Maximum, SampleCount or pNN")
    if namespace or name or dims:
        if not (namespace and name):
            raise ValueError("give both namespace and metric_name (or neither: the alarm's own)")
        pairs = tuple(sorted(dims.items()))
        return [MetricQuery("m1", namespace, name, pairs, stat or "Average")]
    if not scope.alarm_metrics:
        raise ValueError("this alert names no metric: give namespace and metric_name")
    if stat:
        return [
            MetricQuery(q.id, q.namespace, q.metric_name, q.dimensions, stat, q.period)
            if not q.expression
            else q
            for q in scope.alarm_metrics
        ]
    return list(scope.alarm_metrics)


def metric_data(scope: AwsScope, arguments: dict[str, Any]) -> Any:
    """One series: `{metric, stat, period_seconds, from, to, points}`; a metric-math alarm's
    several series: a list of them."""
    queries = _queries(scope, arguments)
    own_period = max((q.period for q in queries if not q.expression), default=60)
    period = integer(arguments, "period_seconds", max(60, own_period), 60, 86_400)
    if period % 60:
        raise ValueError("period_seconds must be a multiple of 60")
    start, end = scope.window(arguments)
    points = math.ceil((end - start) / timedelta(seconds=period))
    if points > MAX_POINTS:
        least = 60 * math.ceil((end - start).total_seconds() / MAX_POINTS / 60)
        raise ValueError(
            f"that is {points} points per series, more than {MAX_POINTS}: raise period_seconds "
            f"to at least {least} or narrow the window"
        )
    client = scope.client("cloudwatch")
    series = fetch_metric_series(client, queries, start, end, period)
    found = [
        {
            "metric": s.label,
            "stat": "" if q.expression else q.stat,
            "period_seconds": period,
            "from": iso(start),
            "to": iso(end),
            "points": [[iso(t), round(v, 4)] for t, v in zip(s.timestamps, s.values, strict=True)],
        }
        for q, s in zip(queries, series, strict=True)
    ]
    return found[0] if len(found) == 1 else found


def describe_alarms(scope: AwsScope, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    names = strings(arguments, "alarm_names", MAX_ALARMS)
    prefix = string(arguments, "alarm_name_prefix", 255)
    state = choice(arguments, "state", STATES)
    if names and prefix:
        raise ValueError("give alarm_names or alarm_name_prefix, not both")
    request: dict[str, Any] = {
        "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
        "MaxRecords": MAX_ALARMS,
    }
    if names:
        request["AlarmNames"] = names
    if prefix:
        request["AlarmNamePrefix"] = prefix
    if state:
        request["StateValue"] = state
    response = scope.client("cloudwatch").describe_alarms(**request)
    alarms = [*response.get("MetricAlarms", []), *response.get("CompositeAlarms", [])]
    return [
        _alarm(alarm)
        for alarm in alarms
        if (not state or alarm.get("StateValue") == state)
        and (not names or alarm.get("AlarmName") in names)
    ][:MAX_ALARMS]


def _alarm(alarm: dict[str, Any]) -> dict[str, Any]:
    metric = str(alarm.get("MetricName") or "")
    namespace = str(alarm.get("Namespace") or "")
    dims = {d.get("Name", ""): d.get("Value", "") for d in alarm.get("Dimensions", [])}
    if not metric and alarm.get("Metrics"):
        compared = [m for m in alarm["Metrics"] if m.get("ReturnData", True)] or alarm["Metrics"]
        stat = as_dict(compared[0].get("MetricStat"))
        inner = as_dict(stat.get("Metric"))
        metric = str(compared[0].get("Expression") or inner.get("MetricName") or "")
        namespace = str(inner.get("Namespace") or "")
    updated = alarm.get("StateUpdatedTimestamp")
    return {
        "name": alarm.get("AlarmName", ""),
        "state": alarm.get("StateValue", ""),
        "reason": str(alarm.get("StateReason", ""))[:REASON_CHARS],
        "updated_at": iso(updated) if updated else None,
        "metric": metric or alarm.get("AlarmRule", ""),
        "namespace": namespace,
        "dimensions": dims,
        "threshold": alarm.get("Threshold"),
        "comparison": alarm.get("ComparisonOperator", ""),
    }


def alarm_history(scope: AwsScope, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """The window ends 10 minutes after the alert, as the other tools' do by default: the
    change that raised the alert is in it, and later ones do not push earlier ones out."""
    name = string(arguments, "alarm_name", 255) or scope.alarm_name
    if not name:
        raise ValueError("name alarm_name: this alert is not a CloudWatch alarm")
    hours = integer(arguments, "hours_before", 24, 1, MAX_HISTORY_HOURS)
    kind = choice(arguments, "history_type", HISTORY_TYPES) or "StateUpdate"
    limit = integer(arguments, "limit", 50, 1, MAX_HISTORY)
    response = scope.client("cloudwatch").describe_alarm_history(
        AlarmName=name,
        AlarmTypes=["MetricAlarm", "CompositeAlarm"],
        HistoryItemType=kind,
        StartDate=scope.at - timedelta(hours=hours),
        EndDate=scope.at + timedelta(minutes=10),
        MaxRecords=limit,
        ScanBy="TimestampDescending",
    )
    return [
        {
            "at": iso(item["Timestamp"]),
            "type": item.get("HistoryItemType", ""),
            "summary": item.get("HistorySummary", ""),
            **_reason(item.get("HistoryData")),
        }
        for item in response.get("AlarmHistoryItems", [])[:limit]
    ]


def _reason(data: Any) -> dict[str, str]:
    """The new state's reason from a state update's HistoryData, where it has one."""
    try:
        parsed = json.loads(data) if isinstance(data, str) else None
    except ValueError:
        return {}
    reason = as_dict(as_dict(parsed).get("newState")).get("stateReason")
    return {"reason": " ".join(str(reason).split())[:REASON_CHARS]} if reason else {}
