"""A scenario's alert as its sender delivers it: a real payload from tests/fixtures/payloads,
renamed and timed for the scenario the way tests/alarms.py does it, never a new format."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import datetime, timedelta
from typing import Any

from bench.investigation.scenario import FIXTURES, AlertSpec
from tests.fakes.moto_server import ACCOUNT, REGION

REGION_NAME = "US East (N. Virginia)"


def payload(spec: AlertSpec, at: datetime) -> dict[str, Any]:
    """The body the receiver gets for this alert, firing at `at`."""
    document: dict[str, Any] = json.loads((FIXTURES / spec.fixture).read_text())
    if spec.alarm is None:
        return _logs_subscription(document, spec, at)
    if document.get("detail-type") == "CloudWatch Alarm State Change":
        return _alarm_via_eventbridge(document, spec.alarm, at)
    return _alarm_via_sns(document, spec.alarm, at)


def alarm_document(spec: AlertSpec, at: datetime) -> dict[str, Any]:
    """The alarm as SNS's alarm JSON describes it (an EventBridge scenario writes `alarm` in
    that shape too, since its event lacks the threshold): what the seed makes the alarm from."""
    assert spec.alarm is not None
    document: dict[str, Any] = json.loads((FIXTURES / spec.fixture).read_text())
    if document.get("detail-type") == "CloudWatch Alarm State Change":
        return spec.alarm
    found: dict[str, Any] = json.loads(_sns(payload(spec, at))["Message"])
    return found


def _alarm_via_eventbridge(
    event: dict[str, Any], alarm: dict[str, Any], at: datetime
) -> dict[str, Any]:
    """The "CloudWatch Alarm State Change" event of a single-metric alarm."""
    name, trigger = alarm["AlarmName"], alarm["Trigger"]
    arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    event.update(id=f"{name}-{at.isoformat()}", account=ACCOUNT, region=REGION, resources=[arn])
    event["time"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    detail = event["detail"]
    detail["alarmName"] = name
    detail["configuration"]["description"] = alarm.get("AlarmDescription", "")
    [metric] = detail["configuration"]["metrics"]
    metric["metricStat"] = {
        "metric": {
            "dimensions": {d["name"]: d["value"] for d in trigger["Dimensions"]},
            "name": trigger["MetricName"],
            "namespace": trigger["Namespace"],
        },
        "period": trigger["Period"],
        "stat": trigger["Statistic"].capitalize(),
    }
    before = (at - timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    detail["previousState"].update(value="OK", timestamp=before)
    detail["state"].update(value="ALARM", reason=alarm["NewStateReason"], timestamp=stamp)
    for state in (detail["previousState"], detail["state"]):
        state.pop("reasonData", None)  # the fixture's datapoints, which would contradict ours
    return event


def _sns(envelope: dict[str, Any]) -> dict[str, Any]:
    """The SNS message: inside a Lambda event's `Records`, or the HTTP delivery itself."""
    found: dict[str, Any] = envelope["Records"][0]["Sns"] if "Records" in envelope else envelope
    return found


def _alarm_via_sns(envelope: dict[str, Any], alarm: dict[str, Any], at: datetime) -> dict[str, Any]:
    sns = _sns(envelope)
    document = json.loads(sns["Message"])
    name = alarm["AlarmName"]
    document.update(
        AlarmArn=f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}",
        AWSAccountId=ACCOUNT,
        Region=REGION_NAME,
        NewStateValue="ALARM",
        OldStateValue="OK",
        StateChangeTime=at.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
    )
    trigger = {**document["Trigger"], **alarm.get("Trigger", {})}
    document.update({key: value for key, value in alarm.items() if key != "Trigger"})
    document["Trigger"] = trigger
    sns["Message"] = json.dumps(document)
    sns["MessageId"] = f"{name}-{at.isoformat()}"
    sns["Timestamp"] = at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    sns["Subject"] = f'ALARM: "{name}" in {REGION_NAME}'
    return envelope


def _logs_subscription(document: dict[str, Any], spec: AlertSpec, at: datetime) -> dict[str, Any]:
    """The decoded document with the scenario's events, then encoded as the subscription
    sends it when the fixture is the `awslogs` wrapper."""
    assert spec.logs is not None
    wrapped = "awslogs" in document
    inner: dict[str, Any] = (
        json.loads(gzip.decompress(base64.b64decode(document["awslogs"]["data"])))
        if wrapped
        else document
    )
    events = []
    for index, (minutes, message) in enumerate(spec.logs.events, start=1):
        stamp = int((at + timedelta(minutes=minutes)).timestamp() * 1000)
        # 56 digits like CloudWatch's, unique per time: an earlier firing is another event.
        events.append({"id": f"{stamp:020d}{index:036d}", "timestamp": stamp, "message": message})
    inner.update(
        owner=ACCOUNT,
        logGroup=spec.logs.log_group,
        logStream=spec.logs.log_stream,
        logEvents=events,
    )
    if not wrapped:
        return inner
    data = base64.b64encode(gzip.compress(json.dumps(inner).encode())).decode()
    return {"awslogs": {"data": data}}
