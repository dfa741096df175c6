"""CloudWatch alarms in the three shapes AWS sends them: the classic notification (SNS, or SQS
with raw delivery), the EventBridge "CloudWatch Alarm State Change" event, and the event an
alarm's Lambda action receives. All three reduce to one `AlarmState` so that the same state
change keys and deduplicates identically whichever route it took."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from incidents.models import Alert, AlertStatus, Severity
from ingest import fingerprint
from ingest.parsers.base import (
    Envelope,
    NotAnAlertError,
    ParseError,
    as_dict,
    build_alert,
    first,
    text,
)
from ingest.severity import severity_marker
from ingest.timeparse import parse_time

SOURCE = "cloudwatch"
STATE_CHANGE = "CloudWatch Alarm State Change"


@dataclass(frozen=True)
class AlarmState:
    name: str
    arn: str
    account: str
    region: str
    state: str
    previous_state: str
    reason: str
    description: str
    changed_at: datetime | None
    metric: str
    alarm_rule: str
    resource: str


def is_classic(doc: dict[str, Any]) -> bool:
    return "AlarmName" in doc and "NewStateValue" in doc


def is_eventbridge(doc: dict[str, Any]) -> bool:
    return doc.get("source") == "aws.cloudwatch" and "detail-type" in doc


def is_lambda_action(doc: dict[str, Any]) -> bool:
    return doc.get("source") == "aws.cloudwatch" and isinstance(doc.get("alarmData"), dict)


def parse_classic(doc: dict[str, Any], envelope: Envelope) -> list[Alert]:
    trigger = as_dict(doc.get("Trigger"))
    state = AlarmState(
        name=text(doc.get("AlarmName"), 255),
        arn=text(doc.get("AlarmArn"), 512),
        account=text(doc.get("AWSAccountId"), 32),
        region=text(doc.get("Region"), 64),
        state=text(doc.get("NewStateValue"), 32).upper(),
        previous_state=text(doc.get("OldStateValue"), 32).upper(),
        reason=text(doc.get("NewStateReason")),
        description=text(doc.get("AlarmDescription")),
        changed_at=parse_time(doc.get("StateChangeTime")),
        metric=_classic_metric(trigger),
        alarm_rule=text(doc.get("AlarmRule")),
        resource=_classic_resource(trigger),
    )
    return [_alert(state, "cloudwatch_alarm", doc, envelope)]


def parse_eventbridge(doc: dict[str, Any], envelope: Envelope) -> list[Alert]:
    if doc.get("detail-type") != STATE_CHANGE:
        raise NotAnAlertError(
            f"EventBridge {text(doc.get('detail-type'), 100)!r} event: only alarm state "
            "changes are alerts"
        )
    detail = as_dict(doc.get("detail"))
    arn = _first_resource(doc.get("resources"))
    state = _from_state_detail(detail, text(arn, 512), doc.get("account"), doc.get("region"))
    return [_alert(state, "cloudwatch_alarm_eventbridge", doc, envelope)]


def parse_lambda_action(doc: dict[str, Any], envelope: Envelope) -> list[Alert]:
    """The alarm action's event names the alarm in `alarmArn` and `accountId`; copies of the
    EventBridge event reshaped around `alarmData` keep its `resources` and `account` instead.
    Either way the same state change must key and deduplicate the same."""
    data = as_dict(doc.get("alarmData"))
    arn = first(doc, "alarmArn") or _first_resource(doc.get("resources"))
    account = first(doc, "accountId", "account")
    state = _from_state_detail(data, text(arn, 512), account, doc.get("region"))
    return [_alert(state, "cloudwatch_alarm_lambda", doc, envelope)]


def _first_resource(resources: Any) -> Any:
    return resources[0] if isinstance(resources, list) and resources else ""


def _from_state_detail(detail: dict[str, Any], arn: str, account: Any, region: Any) -> AlarmState:
    current = as_dict(detail.get("state"))
    previous = as_dict(detail.get("previousState"))
    configuration = as_dict(detail.get("configuration"))
    return AlarmState(
        name=text(detail.get("alarmName"), 255),
        arn=arn,
        account=text(account, 32),
        region=text(region, 64),
        state=text(current.get("value"), 32).upper(),
        previous_state=text(previous.get("value"), 32).upper(),
        reason=text(current.get("reason")),
        description=text(configuration.get("description")),
        changed_at=parse_time(current.get("timestamp")),
        metric=_metric_list(configuration.get("metrics")),
        alarm_rule=text(configuration.get("alarmRule")),
        resource=(_plain_metrics(configuration.get("metrics")) or [""])[0],
    )


def _alert(state: AlarmState, parser: str, raw: dict[str, Any], envelope: Envelope) -> Alert:
    account, region, name = _identity(state)
    if state.state not in ("ALARM", "OK", "INSUFFICIENT_DATA"):
        # A malformed alarm, not a benign non-alert: the sender should hear it was refused.
        raise ParseError(f"CloudWatch alarm {name!r} has no known state ({state.state!r})")
    tagged = severity_marker(name, state.description)
    if state.state == "INSUFFICIENT_DATA":
        severity = Severity.LOW
    else:
        severity = tagged or Severity.HIGH
    status = AlertStatus.RESOLVED if state.state == "OK" else AlertStatus.FIRING
    lines = [
        f"{state.state} (was {state.previous_state or 'unknown'}): {state.reason}".strip(),
        state.description,
        f"Metric: {state.metric}" if state.metric else "",
        f"Rule: {state.alarm_rule}" if state.alarm_rule else "",
    ]
    changed = state.changed_at.isoformat() if state.changed_at else ""
    return build_alert(
        source=SOURCE,
        parser=parser,
        # The name people gave the alarm; the identity stays the ARN's, which AWS keeps unique.
        title=state.name or name,
        message="\n".join(line for line in lines if line),
        severity=severity,
        status=status,
        fingerprint=fingerprint.of_identity("cloudwatch-alarm", account, region, name),
        envelope=envelope,
        occurred_at=state.changed_at,
        raw=raw,
        resource=state.resource or None,
        labels={
            k: v
            for k, v in {
                "alarm_name": name,
                "alarm_arn": state.arn,
                "account": account,
                "region": region,
                "state": state.state,
            }.items()
            if v
        },
        dedup_key=f"cloudwatch:{account}:{region}:{name}:{state.state}:{changed}"
        if changed
        else None,
    )


def _identity(state: AlarmState) -> tuple[str, str, str]:
    """Account, region and name, preferring the ARN: the classic notification carries the
    region's display name ("US East (N. Virginia)") where the other shapes carry its code."""
    parts = [p.strip() for p in state.arn.split(":")]
    if len(parts) >= 7 and parts[0] == "arn" and parts[5] == "alarm":
        return parts[4] or state.account, parts[3] or state.region, ":".join(parts[6:])
    if not state.name:
        raise ParseError("CloudWatch alarm without a name or ARN")
    return state.account, state.region, state.name


def _classic_metric(trigger: dict[str, Any]) -> str:
    if trigger.get("MetricName"):
        operator = text(trigger.get("ComparisonOperator"), 100)
        threshold = text(trigger.get("Threshold"), 100)
        return f"{_classic_resource(trigger)} {operator} {threshold}".rstrip()
    return _metric_list(trigger.get("Metrics"))


def _classic_resource(trigger: dict[str, Any]) -> str:
    if trigger.get("MetricName"):
        return _metric_name(
            trigger.get("Namespace"), trigger.get("MetricName"), trigger.get("Dimensions")
        )
    return (_plain_metrics(trigger.get("Metrics")) or [""])[0]


def _metric_list(metrics: Any) -> str:
    """Metric-math alarms name several metrics; the expressions lead, as the one that returns
    data is what the alarm compares."""
    return " ".join([*_expressions(metrics), *_plain_metrics(metrics)])


def _expressions(metrics: Any) -> list[str]:
    return [
        text(first(metric, "Expression", "expression"), 200)
        for metric in _metric_entries(metrics)
        if first(metric, "Expression", "expression")
    ]


def _plain_metrics(metrics: Any) -> list[str]:
    """The metrics themselves, never the math over them: the resource an alarm watches is a
    metric such as `AWS/EC2/CPUUtilization[InstanceId=i-...]`, not `SUM(METRICS())`."""
    names: list[str] = []
    for metric in _metric_entries(metrics):
        if first(metric, "Expression", "expression"):
            continue
        stat = as_dict(first(metric, "MetricStat", "metricStat"))
        inner = as_dict(first(stat, "Metric", "metric"))
        if first(inner, "MetricName", "name"):
            names.append(
                _metric_name(
                    first(inner, "Namespace", "namespace"),
                    first(inner, "MetricName", "name"),
                    first(inner, "Dimensions", "dimensions"),
                )
            )
    return names


def _metric_entries(metrics: Any) -> list[dict[str, Any]]:
    if not isinstance(metrics, list):
        return []
    return [metric for metric in metrics[:10] if isinstance(metric, dict)]


def _metric_name(namespace: Any, name: Any, dims: Any) -> str:
    dimensions = _dimensions(dims)
    return f"{text(namespace, 100)}/{text(name, 100)}{'[' + dimensions + ']' if dimensions else ''}"


def _dimensions(dims: Any) -> str:
    if isinstance(dims, dict):
        return ",".join(f"{text(k, 100)}={text(v, 200)}" for k, v in dims.items())
    if isinstance(dims, list):
        return ",".join(
            f"{text(first(d, 'name', 'Name'), 100)}={text(first(d, 'value', 'Value'), 200)}"
            for d in dims
            if isinstance(d, dict)
        )
    return ""
