"""The CloudWatch alarm the AWS tests (context, graphs, the bot end to end) put in moto: a
real SNS-delivered payload, renamed to the alarm and metric made there, and the CPU data
behind it. One definition, so that the alarm and the datapoints cannot drift apart."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from incidents.models import Alert
from ingest.normalize import parse_body
from tests.fakes.moto_server import ACCOUNT, REGION

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "payloads"
CLASSIC = "cloudwatch-alarm-sns/lambda-go_cloudwatch-alarm-sns-payload-single-metric.json"
EB_MATH = "cloudwatch-alarm-eventbridge/awsdocs-cw-guide_state-change-for-a-metric-math-alarm.json"
ALARM = "web-cpu-high"
INSTANCE = "i-0abc1234"
DIMS = [{"Name": "InstanceId", "Value": INSTANCE}]
# On the minute (so GetMetricData's periods line up with the datapoints), in the recent past
# (CloudWatch refuses datapoints older than two weeks; the +10 min window end is already over).
CHANGE = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=15)


def parse_one(doc: Any) -> Alert:
    alerts = parse_body(json.dumps(doc).encode(), datetime.now(UTC)).alerts
    assert len(alerts) == 1
    return alerts[0]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def classic_alarm_payload(
    state: str = "ALARM", changed: datetime = CHANGE, evaluation_periods: int = 3
) -> dict[str, Any]:
    """The SNS envelope of the classic alarm notification, as SNS delivers it."""
    envelope: dict[str, Any] = fixture(CLASSIC)
    sns = envelope["Records"][0]["Sns"]
    doc = json.loads(sns["Message"])
    doc.update(
        AlarmName=ALARM,
        AlarmArn=f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{ALARM}",
        AWSAccountId=ACCOUNT,
        Region="US East (N. Virginia)",
        NewStateValue=state,
        OldStateValue="OK" if state == "ALARM" else "ALARM",
        StateChangeTime=changed.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
    )
    doc["Trigger"].update(
        MetricName="CPUUtilization",
        Namespace="AWS/EC2",
        Statistic="AVERAGE",
        Dimensions=[{"value": INSTANCE, "name": "InstanceId"}],
        Period=60,
        EvaluationPeriods=evaluation_periods,
        ComparisonOperator="GreaterThanThreshold",
        Threshold=80.0,
    )
    sns["Message"] = json.dumps(doc)
    sns["MessageId"] = f"{state}-{changed.isoformat()}"
    return envelope


def classic_alarm(
    state: str = "ALARM", changed: datetime = CHANGE, evaluation_periods: int = 3
) -> Alert:
    """The classic alarm notification through the real parser."""
    return parse_one(classic_alarm_payload(state, changed, evaluation_periods))


def put_cpu() -> dict[datetime, float]:
    """CPU a minute apart from 70 min before the change to 5 min after, climbing past 80%
    over the last ten minutes before it."""
    values = {
        CHANGE + timedelta(minutes=m): 40.0 + (m % 3) if m < -10 else min(99.0, 90.0 + m)
        for m in range(-70, 6)
    }
    boto3.client("cloudwatch").put_metric_data(
        Namespace="AWS/EC2",
        MetricData=[
            {"MetricName": "CPUUtilization", "Dimensions": DIMS, "Timestamp": t, "Value": v}
            for t, v in values.items()
        ],
    )
    return values
