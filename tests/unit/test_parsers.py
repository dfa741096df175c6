"""Every real payload in tests/fixtures/payloads, read the way a person reading it would.

Each test names the file it reads; variants (an alarm delivered raw instead of through SNS, a
decoded log batch gzipped back into `awslogs`, an alarm flipped to OK) are derived in code the
way the real senders produce them, never invented formats.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import math
import re
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from incidents.models import Alert, AlertStatus, Severity
from ingest.normalize import ParseResult, parse_body
from ingest.severity import severity_from, severity_marker
from ingest.timeparse import parse_time
from tests.conftest import BRIEF_ALERT

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "payloads"
RECEIVED = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
CW_SNS = "cloudwatch-alarm-sns/"
CW_EB = "cloudwatch-alarm-eventbridge/"
CW_LAMBDA = "cloudwatch-alarm-lambda-action/"
CW_LOGS = "cloudwatch-logs-subscription/"
AM = "prometheus-alertmanager/"
EB_COMPOSITE = (
    CW_EB + "awsdocs-cw-guide_state-change-for-a-composite-alarm-with-a-suppressor-alarm.json"
)


# --- helpers ---------------------------------------------------------------------------------


def body_of(name: str) -> bytes:
    """The bytes a receiver gets: an `.http` capture loses its request line and headers."""
    raw = (FIXTURES / name).read_bytes()
    if name.endswith(".http"):
        return raw.split(b"\n\n", 1)[1]
    return raw


def doc_of(name: str) -> Any:
    return json.loads(body_of(name))


def parse(body: bytes) -> ParseResult:
    return parse_body(body, RECEIVED)


def parse_doc(doc: Any) -> ParseResult:
    return parse(json.dumps(doc).encode())


def alert_from(name: str) -> Alert:
    return only(parse(body_of(name)))


def alerts_from(name: str, count: int | None = None) -> list[Alert]:
    return alerts_of(parse(body_of(name)), count)


def alerts_of(result: ParseResult, count: int | None = None) -> list[Alert]:
    assert result.rejections == [], [r.reason for r in result.rejections]
    if count is not None:
        assert len(result.alerts) == count
    for alert in result.alerts:
        assert re.fullmatch(r"[0-9a-f]{16}", alert.fingerprint)
        assert alert.raw is not None
        assert alert.received_at == RECEIVED
    return result.alerts


def only(result: ParseResult) -> Alert:
    return alerts_of(result, 1)[0]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def snapshot_contents(name: str) -> list[Any]:
    """LocalStack snapshot files record one or several bodies under `content`."""
    doc = doc_of(name)
    if "content" in doc:
        return [doc["content"]]
    return [entry["content"] for entry in doc.values()]


def sns_message(name: str) -> str:
    """The alarm JSON string inside a Lambda SNS event, exactly as SNS carried it."""
    message = doc_of(name)["Records"][0]["Sns"]["Message"]
    assert isinstance(message, str)
    return message


def classic_alarm_deliveries(message: str) -> dict[str, bytes]:
    """One alarm notification as each real route delivers it: the Lambda SNS event, the SQS
    body with raw delivery off (the SNS envelope) and on (the bare message), an SQS Lambda event
    around the enveloped body, and SNS's own HTTP POST."""
    envelope = doc_of("sns/awsdocs-sns-guide_raw-delivery-DISABLED_sqs-body.json")
    envelope["Message"] = message
    http = doc_of("sns/awsdocs-sns-guide_http-Notification.http")
    http["Message"] = message
    lambda_sns = doc_of(CW_SNS + "lambda-go_cloudwatch-alarm-sns-payload-single-metric.json")
    lambda_sns["Records"][0]["Sns"]["Message"] = message
    sqs_event = doc_of("sqs/powertools-py_snsSqsEvent.json")
    sqs_event["Records"][0]["body"] = json.dumps(envelope, indent=2)
    return {
        "lambda-sns": json.dumps(lambda_sns).encode(),
        "sqs-enveloped": json.dumps(envelope).encode(),
        "sqs-raw": message.encode(),
        "sqs-lambda-event": json.dumps(sqs_event).encode(),
        "http-sns": json.dumps(http).encode(),
    }


def awslogs(decoded: Any, *, compress: Any = gzip.compress) -> dict[str, Any]:
    """What CloudWatch Logs sends a Lambda subscriber: base64 of the gzipped JSON."""
    data = base64.b64encode(compress(json.dumps(decoded).encode())).decode()
    return {"awslogs": {"data": data}}


def summary(alerts: list[Alert]) -> list[tuple[Any, ...]]:
    """What must not depend on the route a payload took."""
    return [
        (a.parser, a.source, a.title, a.message, a.severity, a.status, a.resource,
         a.occurred_at, a.fingerprint, a.dedup_key)
        for a in alerts
    ]  # fmt: skip


# --- CloudWatch alarm: the classic notification (SNS, or SQS with raw delivery) ---------------


def test_classic_single_metric_alarm_via_lambda_sns_event() -> None:
    alert = alert_from(CW_SNS + "lambda-go_cloudwatch-alarm-sns-payload-single-metric.json")
    assert alert.parser == "cloudwatch_alarm"
    assert alert.source == "cloudwatch"
    assert alert.title == "EXAMPLE"
    assert alert.severity is Severity.HIGH
    assert alert.status is AlertStatus.FIRING
    assert alert.resource == "AWS/EC2/NetworkOut[InstanceId=TestInstance]"
    assert alert.occurred_at == at("2015-06-03T17:43:27.123Z")
    assert (
        alert.dedup_key
        == "cloudwatch:ACCOUNT_NUMBER:REGION:EXAMPLE:ALARM:2015-06-03T17:43:27.123000+00:00"
    )
    assert "Threshold Crossed: 1 out of the last 1 datapoints" in alert.message
    assert "ALARM (was INSUFFICIENT_DATA)" in alert.message
    assert alert.labels["state"] == "ALARM"
    assert alert.raw["AlarmName"] == "EXAMPLE"
    assert alert.raw["Trigger"]["MetricName"] == "NetworkOut"


def test_classic_metric_math_alarm_resource_is_the_metric_not_the_expression() -> None:
    alert = alert_from(
        CW_SNS + "lambda-go_cloudwatch-alarm-sns-payload-multiple-metrics_metricmath.json"
    )
    assert alert.parser == "cloudwatch_alarm"
    assert alert.title == "EXAMPLE"
    assert alert.resource == "AWS/EC2/NetworkOut[InstanceId=TestInstance]"
    assert "m1*1" in alert.message
    assert alert.occurred_at == at("2015-06-03T17:43:27.123Z")


def test_classic_alarms_of_one_arn_share_a_fingerprint() -> None:
    single = alert_from(CW_SNS + "lambda-go_cloudwatch-alarm-sns-payload-single-metric.json")
    math_alarm = alert_from(
        CW_SNS + "lambda-go_cloudwatch-alarm-sns-payload-multiple-metrics_metricmath.json"
    )
    assert single.fingerprint == math_alarm.fingerprint


def test_classic_metric_alarm_keys_on_the_region_code_of_its_arn() -> None:
    alert = alert_from(CW_SNS + "rheoceros_sns-lambda_metric-alarm_ALARM.json")
    name = "if-sim-app_427809481713_us-east-1-metric_emitting_node_failure"
    assert alert.parser == "cloudwatch_alarm"
    assert alert.title == name
    assert alert.severity is Severity.HIGH
    assert alert.status is AlertStatus.FIRING
    assert alert.resource == (
        "sim-app_427809481713_us-east-1/IExecutionFailureHook"
        "[MetricGroupId=routing_table.receive.hook,RouteID=metric_emitting_node]"
    )
    assert alert.occurred_at == at("2021-11-10T02:45:55.640Z")
    assert (
        alert.dedup_key
        == f"cloudwatch:427809481713:us-east-1:{name}:ALARM:2021-11-10T02:45:55.640000+00:00"
    )
    assert alert.labels["region"] == "us-east-1"
    assert alert.labels["account"] == "427809481713"


def test_classic_composite_alarm() -> None:
    alert = alert_from(
        CW_SNS + "rheoceros_sns-lambda_composite-alarm_ALARM_TriggeringChildren.json"
    )
    assert alert.parser == "cloudwatch_alarm"
    assert alert.title == "if-sim-app_427809481713_us-east-1-test_node_monitor"
    assert alert.severity is Severity.HIGH
    assert alert.status is AlertStatus.FIRING
    assert alert.resource is None
    assert alert.occurred_at == at("2021-11-10T02:45:55.640Z")
    assert "Rule: ALARM(arn:aws:cloudwatch:us-east-1:427809481713:alarm:" in alert.message
    child = alert_from(CW_SNS + "rheoceros_sns-lambda_metric-alarm_ALARM.json")
    assert alert.fingerprint != child.fingerprint


def test_classic_ok_notification_in_a_bare_sns_envelope_resolves() -> None:
    name = CW_SNS + "rust-test-fixture_sns-envelope_ELB-UnHealthyHostCount_OK.json"
    alert = alert_from(name)
    assert alert.parser == "cloudwatch_alarm"
    assert alert.title == "[RTB-US] UnHealthyHostCount"
    assert alert.status is AlertStatus.RESOLVED
    assert alert.severity is Severity.HIGH
    assert alert.resource == "AWS/ELB/UnHealthyHostCount[LoadBalancerName=rtb]"
    assert alert.occurred_at == at("2016-02-27T11:21:10.602Z")
    # No AlarmArn in this 2016 notification: the identity falls back to its fields.
    assert alert.dedup_key == (
        "cloudwatch:097958131044:US - N. Virginia:[RTB-US] UnHealthyHostCount:OK:"
        "2016-02-27T11:21:10.602000+00:00"
    )
    # The ALARM this OK follows (same alarm, the state the other way round) fires and keys
    # identically, so the OK resolves exactly the incident it opened.
    envelope = doc_of(name)
    message = json.loads(envelope["Message"])
    message.update(
        NewStateValue="ALARM", OldStateValue="OK", StateChangeTime="2016-02-27T11:15:10.602+0000"
    )
    envelope["Message"] = json.dumps(message)
    firing = only(parse_doc(envelope))
    assert firing.status is AlertStatus.FIRING
    assert firing.fingerprint == alert.fingerprint
    assert firing.dedup_key != alert.dedup_key


def test_classic_ok_resolves_the_alarm_it_follows() -> None:
    message = json.loads(sns_message(CW_SNS + "rheoceros_sns-lambda_metric-alarm_ALARM.json"))
    firing = only(parse_doc(message))
    message.update(
        NewStateValue="OK", OldStateValue="ALARM", StateChangeTime="2021-11-10T03:00:55.640+0000"
    )
    resolved = only(parse_doc(message))
    assert firing.status is AlertStatus.FIRING
    assert resolved.status is AlertStatus.RESOLVED
    assert resolved.fingerprint == firing.fingerprint
    assert resolved.dedup_key != firing.dedup_key
    assert resolved.occurred_at == at("2021-11-10T03:00:55.640Z")


@pytest.mark.parametrize(
    "name",
    [
        CW_SNS + "lambda-go_cloudwatch-alarm-sns-payload-single-metric.json",
        CW_SNS + "lambda-go_cloudwatch-alarm-sns-payload-multiple-metrics_metricmath.json",
        CW_SNS + "rheoceros_sns-lambda_metric-alarm_ALARM.json",
        CW_SNS + "rheoceros_sns-lambda_composite-alarm_ALARM_TriggeringChildren.json",
    ],
)
def test_classic_alarm_reads_the_same_whatever_the_route(name: str) -> None:
    routes = {
        route: alerts_of(parse(body), 1)
        for route, body in classic_alarm_deliveries(sns_message(name)).items()
    }
    first = summary(routes["lambda-sns"])
    for route, alerts in routes.items():
        assert summary(alerts) == first, route
        assert alerts[0].raw == json.loads(sns_message(name))


def test_classic_alarm_with_raw_delivery_recorded_from_aws() -> None:
    name = CW_SNS + "localstack-snapshot_recorded-from-aws_sqs-alarm-messages.json"
    alerts = [only(parse_doc(content)) for content in snapshot_contents(name)]
    assert len(alerts) == 7
    for alert in alerts:
        assert alert.parser == "cloudwatch_alarm"
        assert alert.title == "<alarm-name:1>"
        assert alert.severity is Severity.HIGH
        assert alert.status is AlertStatus.FIRING
        assert alert.resource in (
            "<namespace:1>/my-metric101[InstanceId=abc]",
            "<namespace:1>/my-metric1[InstanceId=abc]",
        )
        # LocalStack masked the change time as "date": no time, so no idempotency key either.
        assert alert.occurred_at == RECEIVED
        assert alert.dedup_key is None
    assert len({a.fingerprint for a in alerts}) == 1


# --- CloudWatch alarm: EventBridge "CloudWatch Alarm State Change" ---------------------------


def test_eventbridge_single_metric_alarm() -> None:
    alert = alert_from(CW_EB + "awsdocs-cw-guide_state-change-for-a-single-metric-alarm.json")
    assert alert.parser == "cloudwatch_alarm_eventbridge"
    assert alert.source == "cloudwatch"
    assert alert.title == "ServerCpuTooHigh"
    assert alert.severity is Severity.HIGH
    assert alert.status is AlertStatus.FIRING
    assert alert.resource == "AWS/EC2/CPUUtilization[InstanceId=i-12345678901234567]"
    assert alert.occurred_at == at("2019-10-02T17:04:40.989Z")
    assert alert.dedup_key == (
        "cloudwatch:123456789012:us-east-1:ServerCpuTooHigh:ALARM:2019-10-02T17:04:40.989000+00:00"
    )
    assert "Goes into alarm when server CPU utilization is too high!" in alert.message
    assert alert.raw["detail"]["alarmName"] == "ServerCpuTooHigh"


def test_eventbridge_metric_math_alarm() -> None:
    alert = alert_from(CW_EB + "awsdocs-cw-guide_state-change-for-a-metric-math-alarm.json")
    assert alert.parser == "cloudwatch_alarm_eventbridge"
    assert alert.title == "TotalNetworkTrafficTooHigh"
    assert alert.resource == "AWS/EC2/NetworkIn[InstanceId=i-12345678901234567]"
    assert "SUM(METRICS())" in alert.message
    assert alert.occurred_at == at("2019-10-02T17:20:48.554Z")
    assert alert.dedup_key == (
        "cloudwatch:123456789012:us-east-1:TotalNetworkTrafficTooHigh:ALARM:2019-10-02T17:20:48.554000+00:00"
    )


def test_eventbridge_anomaly_detection_alarm_resource_is_not_a_cut_expression() -> None:
    alert = alert_from(CW_EB + "awsdocs-cw-guide_state-change-for-an-anomaly-detection-alarm.json")
    assert alert.title == "EC2 CPU Utilization Anomaly"
    assert alert.severity is Severity.HIGH
    assert alert.resource == "AWS/EC2/CPUUtilization[InstanceId=i-12345678901234567]"
    assert "ANOMALY_DETECTION_BAND(m1, 0.8)" in alert.message
    assert alert.occurred_at == at("2019-10-03T16:00:04.653Z")


def test_eventbridge_composite_alarm_with_suppressor() -> None:
    alert = alert_from(EB_COMPOSITE)
    assert alert.parser == "cloudwatch_alarm_eventbridge"
    assert alert.title == "ServiceAggregatedAlarm"
    assert alert.status is AlertStatus.FIRING
    assert alert.resource is None
    assert "Rule: ALARM(ServerCpuTooHigh) OR ALARM(TotalNetworkTrafficTooHigh)" in alert.message
    assert alert.occurred_at == at("2022-07-22T15:57:45.394Z")
    assert alert.dedup_key == (
        "cloudwatch:123456789012:us-east-1:ServiceAggregatedAlarm:ALARM:2022-07-22T15:57:45.394000+00:00"
    )


def test_same_composite_state_change_under_alarm_data_keys_like_eventbridge() -> None:
    """The Rust runtime's fixture is the EventBridge event with `alarmData` for `detail` and
    no `alarmArn`/`accountId`: the same state change, so the same incident and idempotency
    key, whichever shape carried it."""
    eventbridge = alert_from(EB_COMPOSITE)
    hybrid = alert_from(
        CW_EB + "rust-runtime_example-cloudwatch-alarm-composite-with-suppressor-alarm.json"
    )
    assert hybrid.parser == "cloudwatch_alarm_lambda"
    assert hybrid.title == "ServiceAggregatedAlarm"
    assert hybrid.fingerprint == eventbridge.fingerprint
    assert hybrid.dedup_key == eventbridge.dedup_key
    assert hybrid.labels["account"] == "123456789012"


def test_eventbridge_ok_resolves_with_the_alarms_fingerprint() -> None:
    event = doc_of(CW_EB + "awsdocs-cw-guide_state-change-for-a-single-metric-alarm.json")
    firing = only(parse_doc(event))
    flipped = copy.deepcopy(event)
    flipped["detail"]["previousState"] = event["detail"]["state"]
    flipped["detail"]["state"] = dict(
        event["detail"]["previousState"], timestamp="2019-10-02T18:04:40.989+0000"
    )
    resolved = only(parse_doc(flipped))
    assert resolved.status is AlertStatus.RESOLVED
    assert resolved.fingerprint == firing.fingerprint
    assert resolved.dedup_key != firing.dedup_key


def test_eventbridge_insufficient_data_is_a_low_firing_alert() -> None:
    event = doc_of(CW_EB + "awsdocs-cw-guide_state-change-for-a-single-metric-alarm.json")
    event["detail"]["state"]["value"] = "INSUFFICIENT_DATA"
    alert = only(parse_doc(event))
    assert alert.severity is Severity.LOW
    assert alert.status is AlertStatus.FIRING


@pytest.mark.parametrize(
    "name",
    [
        CW_EB + "awsdocs-cw-guide_creation-of-a-composite-alarm-with-a-suppressor-alarm.json",
        CW_EB + "awsdocs-cw-guide_creation-of-a-composite-alarm.json",
        CW_EB + "awsdocs-cw-guide_deletion-of-a-composite-alarm-with-a-suppressor-alarm.json",
        CW_EB + "awsdocs-cw-guide_deletion-of-a-metric-math-alarm.json",
        CW_EB + "awsdocs-cw-guide_update-of-a-composite-alarm-with-a-suppressor-alarm.json",
        CW_EB + "awsdocs-cw-guide_update-of-a-metric-alarm.json",
    ],
)
def test_eventbridge_configuration_changes_are_not_alerts(name: str) -> None:
    result = parse(body_of(name))
    assert result.alerts == []
    [rejection] = result.rejections
    assert rejection.informational
    assert "CloudWatch Alarm Configuration Change" in rejection.reason
    assert rejection.fragment == doc_of(name)


# --- CloudWatch alarm: the event an alarm's Lambda action receives ----------------------------


def test_lambda_action_metric_math_alarm() -> None:
    alert = alert_from(CW_LAMBDA + "powertools-py_cloudWatchAlarmEventSingleMetric_metricmath.json")
    assert alert.parser == "cloudwatch_alarm_lambda"
    assert alert.source == "cloudwatch"
    # The title is the alarm's name; the identity (fingerprint, dedup key) is its ARN.
    assert alert.title == "Test alert"
    assert alert.severity is Severity.HIGH
    assert alert.status is AlertStatus.FIRING
    assert alert.resource == "AWS/Lambda/Invocations"
    assert alert.occurred_at == at("2024-02-17T11:53:08.431Z")
    assert (
        alert.dedup_key
        == "cloudwatch:912397435824:eu-west-1:test_alarm:ALARM:2024-02-17T11:53:08.431000+00:00"
    )
    assert "m1/m2" in alert.message
    assert "This is description **here**" in alert.message


def test_lambda_action_composite_alarm() -> None:
    alert = alert_from(CW_LAMBDA + "powertools-py_cloudWatchAlarmEventCompositeMetric.json")
    assert alert.parser == "cloudwatch_alarm_lambda"
    assert alert.title == "CompositeDemo.Main"
    assert alert.resource is None
    assert alert.status is AlertStatus.FIRING
    assert (
        "Rule: ALARM(CompositeDemo.FirstChild) OR ALARM(CompositeDemo.SecondChild)" in alert.message
    )
    assert alert.occurred_at == at("2023-08-04T12:56:46.138Z")
    assert alert.dedup_key == (
        "cloudwatch:111122223333:us-east-1:SuppressionDemo.Main:ALARM:2023-08-04T12:56:46.138000+00:00"
    )


def test_lambda_action_with_stray_spaces_reads_like_the_clean_one() -> None:
    """The Rust runtime's copy of the same event has spaces inside its ARN and times."""
    clean = alert_from(CW_LAMBDA + "powertools-py_cloudWatchAlarmEventCompositeMetric.json")
    spaced = alert_from(CW_LAMBDA + "rust-runtime_example-cloudwatch-alarm-composite.json")
    assert spaced.fingerprint == clean.fingerprint
    assert spaced.dedup_key == clean.dedup_key
    assert spaced.occurred_at == clean.occurred_at


def test_lambda_action_metric_alarm() -> None:
    alert = alert_from(CW_LAMBDA + "rust-runtime_example-cloudwatch-alarm-metric.json")
    assert alert.parser == "cloudwatch_alarm_lambda"
    assert alert.title == "lambda-demo-metric-alarm"
    assert alert.resource == "AWS/Logs/CallCount[InstanceId=i-12345678]"
    assert alert.occurred_at == at("2023-08-04T12:36:15.490Z")
    assert alert.labels["account"] == "444455556666"
    assert alert.labels["region"] == "us-east-1"


def test_lambda_action_recorded_from_aws() -> None:
    [content] = snapshot_contents(
        CW_LAMBDA + "localstack-snapshot_recorded-from-aws_lambda-alarm-invocations.json"
    )
    alert = only(parse_doc(content))
    assert alert.parser == "cloudwatch_alarm_lambda"
    assert alert.title == "<alarm-name:1>"
    assert alert.resource == "namespace/metric1"
    assert alert.severity is Severity.HIGH
    assert alert.occurred_at == RECEIVED
    assert alert.dedup_key is None


# --- Severity tagged into alarm names ---------------------------------------------------------


@pytest.mark.parametrize(
    ("alarm_name", "severity"),
    [
        ("api-5xx-critical", Severity.CRITICAL),
        ("[P1] checkout error rate", Severity.CRITICAL),
        ("[P3] batch lag", Severity.MEDIUM),
        ("orders-queue-depth-warning", Severity.MEDIUM),
        ("db-sev2-replica-lag", Severity.HIGH),
        ("low-disk-space", Severity.HIGH),
        ("HighCPUUtilization", Severity.HIGH),
    ],
)
def test_tagged_alarm_names_set_the_severity(alarm_name: str, severity: Severity) -> None:
    message = json.loads(sns_message(CW_SNS + "rheoceros_sns-lambda_metric-alarm_ALARM.json"))
    message["AlarmName"] = alarm_name
    message["AlarmArn"] = f"arn:aws:cloudwatch:us-east-1:427809481713:alarm:{alarm_name}"
    alert = only(parse_doc(message))
    assert alert.title == alarm_name
    assert alert.severity is severity
    message["NewStateValue"] = "OK"
    resolved = only(parse_doc(message))
    assert resolved.status is AlertStatus.RESOLVED
    assert resolved.fingerprint == alert.fingerprint


def test_alarm_severity_tag_may_sit_in_the_description() -> None:
    message = json.loads(
        sns_message(CW_SNS + "lambda-go_cloudwatch-alarm-sns-payload-single-metric.json")
    )
    message["AlarmDescription"] = "severity=critical; owner team-payments"
    assert only(parse_doc(message)).severity is Severity.CRITICAL


# --- CloudWatch Logs subscription data --------------------------------------------------------


def _powertools_log_alerts(alerts: list[Alert]) -> None:
    assert [a.title for a in alerts] == [
        "[ERROR] First test message",
        "[ERROR] Second test message",
    ]
    for alert in alerts:
        assert alert.parser == "cloudwatch_logs"
        assert alert.source == "cloudwatch-logs"
        assert alert.severity is Severity.HIGH
        assert alert.status is AlertStatus.FIRING
        assert alert.resource == "testLogGroup"
        assert alert.labels["log_stream"] == "testLogStream"
        assert alert.raw["logGroup"] == "testLogGroup"
    assert [a.occurred_at for a in alerts] == [
        at("2015-08-24T19:03:07.000Z"),
        at("2015-08-24T19:03:07.001Z"),
    ]
    assert [a.dedup_key for a in alerts] == [
        "logs:testLogGroup:eventId1",
        "logs:testLogGroup:eventId2",
    ]
    assert alerts[0].raw["logEvent"]["id"] == "eventId1"


@pytest.mark.parametrize(
    "name",
    [
        CW_LOGS + "powertools-py_cloudWatchLogEvent.json",
        CW_LOGS + "powertools-py_cloudWatchLogEventWithPolicyLevel_zlib.json",
        CW_LOGS + "DERIVED_decoded_powertools-py_cloudWatchLogEvent.json",
        CW_LOGS + "DERIVED_decoded_powertools-py_cloudWatchLogEventWithPolicyLevel.json",
    ],
)
def test_logs_gzip_zlib_and_decoded_all_read_alike(name: str) -> None:
    alerts = alerts_from(name, 2)
    _powertools_log_alerts(alerts)
    reference = alerts_from(CW_LOGS + "DERIVED_decoded_powertools-py_cloudWatchLogEvent.json")
    assert [a.fingerprint for a in alerts] == [a.fingerprint for a in reference]


def test_logs_kinesis_records_decode_like_their_decoded_documents() -> None:
    kinesis = alerts_from(CW_LOGS + "powertools-py_kinesisStreamCloudWatchLogsEvent.json", 6)
    decoded = alerts_from(
        CW_LOGS + "DERIVED_decoded_powertools-py_kinesisStreamCloudWatchLogsEvent.json", 6
    )
    assert summary(kinesis) == summary(decoded)
    group = "/aws/lambda/pt-1488-DummyLogDataFunction-gnWXPvL6jJyG"
    assert {a.resource for a in kinesis} == {group}
    assert (
        kinesis[0].title == "START RequestId: 06e46194-f277-454e-88d3-1dd7e3860eaa Version: $LATEST"
    )
    assert kinesis[0].occurred_at == at("2022-11-10T15:10:27.015Z")
    assert (
        kinesis[0].dedup_key
        == f"logs:{group}:37199717562907174288355125807040114704837640994633613312"
    )
    assert all(a.severity is Severity.MEDIUM for a in kinesis)
    # The same line from two invocations is one problem; START, END and REPORT are three.
    assert kinesis[0].fingerprint == kinesis[3].fingerprint
    assert len({kinesis[0].fingerprint, kinesis[1].fingerprint, kinesis[2].fingerprint}) == 3


@pytest.mark.parametrize(
    ("name", "group"),
    [
        (
            CW_LOGS + "awsdocs-cwl-guide_SubscriptionFilters_lambda_decoded.json",
            "CloudTrail",
        ),
        (
            CW_LOGS + "awsdocs-cwl-guide_SubscriptionFilters_kinesis_decoded.json",
            "CloudTrail/logs",
        ),
    ],
)
def test_logs_decoded_documents_from_the_aws_guide(name: str, group: str) -> None:
    decoded = doc_of(name)
    alerts = alerts_of(parse_doc(decoded), 3)
    assert {a.title for a in alerts} == {'{"eventVersion":"1.03","userIdentity":{"type":"Root"}'}
    assert {a.resource for a in alerts} == {group}
    assert {a.occurred_at for a in alerts} == {at("2015-05-28T15:27:35Z")}
    assert {a.severity for a in alerts} == {Severity.MEDIUM}
    assert len({a.fingerprint for a in alerts}) == 1
    assert len({a.dedup_key for a in alerts}) == 3
    # Encoded the way CloudWatch Logs sends it, gzip or zlib, the batch reads the same.
    assert summary(alerts_of(parse_doc(awslogs(decoded)))) == summary(alerts)
    assert summary(alerts_of(parse_doc(awslogs(decoded, compress=zlib.compress)))) == summary(
        alerts
    )


def test_logs_one_message_in_two_groups_is_two_problems() -> None:
    lambda_group = alerts_from(
        CW_LOGS + "awsdocs-cwl-guide_SubscriptionFilters_lambda_decoded.json"
    )
    kinesis_group = alerts_from(
        CW_LOGS + "awsdocs-cwl-guide_SubscriptionFilters_kinesis_decoded.json"
    )
    assert lambda_group[0].fingerprint != kinesis_group[0].fingerprint


# --- Prometheus Alertmanager webhook v4 -------------------------------------------------------


def test_alertmanager_firing_group_gives_one_alert_per_entry() -> None:
    alerts = alerts_from(AM + "alertmonitor-docs_v4_firing_3-alerts.json", 3)
    assert [a.resource for a in alerts] == ["172.29.254.30", "172.29.254.50", "172.29.254.66"]
    for alert in alerts:
        assert alert.parser == "alertmanager"
        assert alert.source == "prometheus"
        assert alert.title == "ICMP ping failed"
        assert alert.severity is Severity.HIGH  # severity="major"
        assert alert.status is AlertStatus.FIRING
        assert alert.occurred_at == at("2019-09-27T16:27:56.612666Z")
        assert (
            alert.dedup_key == f"alertmanager:{alert.member}:2019-09-27T16:27:56.612666101Z:firing"
        )
        assert "does not reply to ICMP pings" in alert.message
        assert alert.labels["alertname"] == "ICMP ping failed"
        assert alert.raw["receiver"] == "alertmonitor_swarm"
    # One problem (one alertname in one routed group), three members: one incident that
    # resolves when the last of the three hosts does.
    assert len({a.fingerprint for a in alerts}) == 1
    assert len({a.member for a in alerts}) == 3


def test_alertmanager_resolved_entries_keep_the_firing_fingerprints() -> None:
    firing = alerts_from(AM + "alertmonitor-docs_v4_firing_3-alerts.json", 3)
    resolved = alerts_from(AM + "alertmonitor-docs_v4_resolved_3-alerts.json", 3)
    assert [a.fingerprint for a in resolved] == [a.fingerprint for a in firing]
    assert [a.member for a in resolved] == [a.member for a in firing]
    assert all(a.status is AlertStatus.RESOLVED for a in resolved)
    assert {a.dedup_key for a in resolved}.isdisjoint({a.dedup_key for a in firing})
    # endsAt is Go's zero time in this sample: when it resolved is when we heard of it.
    assert {a.occurred_at for a in resolved} == {RECEIVED}


def test_alertmanager_resolved_entry_takes_its_end_time() -> None:
    group = doc_of(AM + "grafana-oncall_alertmanager_example_payload.json")
    firing = alerts_of(parse_doc(group), 2)
    group["status"] = "resolved"
    for entry in group["alerts"]:
        entry.update(status="resolved", endsAt="2023-06-12T08:34:38.326Z")
    resolved = alerts_of(parse_doc(group), 2)
    assert [a.fingerprint for a in resolved] == [a.fingerprint for a in firing]
    assert [a.status for a in resolved] == [AlertStatus.RESOLVED] * 2
    assert [a.occurred_at for a in resolved] == [at("2023-06-12T08:34:38.326Z")] * 2


def test_alertmanager_annotations_title_and_critical_label() -> None:
    alerts = alerts_from(AM + "grafana-oncall_alertmanager_example_payload.json", 2)
    # The group's title names the problem; each entry's own summary leads its message.
    assert [a.title for a in alerts] == ["InstanceDown", "InstanceDown"]
    assert [a.resource for a in alerts] == ["localhost:8081", "localhost:8082"]
    assert {a.severity for a in alerts} == {Severity.CRITICAL}
    assert {a.occurred_at for a in alerts} == {at("2023-06-12T08:24:38.326Z")}
    assert alerts[0].message.startswith(
        "Instance localhost:8081 down\n"
        "localhost:8081 of job node has been down for more than 1 minute."
    )


def test_alertmanager_legacy_example() -> None:
    alert = alert_from(AM + "grafana-oncall_legacy_alertmanager_example_payload.json")
    assert alert.parser == "alertmanager"
    assert alert.title == "TestAlert"
    assert alert.message.startswith("This is test alert")
    assert alert.severity is Severity.CRITICAL
    assert alert.status is AlertStatus.FIRING
    assert alert.resource is None
    assert alert.occurred_at == at("2018-12-25T15:47:47.377363Z")
    assert alert.dedup_key == f"alertmanager:{alert.member}:2018-12-25T15:47:47.377363608Z:firing"


def test_alertmanager_entry_without_status_or_severity_takes_the_groups() -> None:
    alerts = alerts_from(
        AM + "prometheus-msteams_alert_testdata_prom_post_request_2_alerts.json", 2
    )
    assert [a.title for a in alerts] == [
        "high_memory_load: Server High Memory usage",
        "high_memory_load2: Server High Memory usage",
    ]
    assert {a.severity for a in alerts} == {Severity.MEDIUM}  # commonLabels severity="warning"
    assert {a.status for a in alerts} == {AlertStatus.FIRING}
    assert {a.occurred_at for a in alerts} == {at("2018-03-07T11:33:21.873077Z")}
    assert alerts[0].fingerprint != alerts[1].fingerprint


def test_a_label_less_alertmanager_entry_is_keyed_on_its_text_and_shows_its_template() -> None:
    group = doc_of(AM + "prometheus-msteams_alert_testdata_prom_post_request_2_alerts.json")
    group["groupLabels"], group["commonLabels"] = {}, {}
    for number, entry in zip((91, 97), group["alerts"], strict=True):
        entry["labels"] = {}
        entry["annotations"] = {"summary": f"Disk {number}% full on node-{number}"}
    first, second = alerts_of(parse_doc(group), 2)
    assert first.fingerprint == second.fingerprint
    assert first.template == "Disk <*> full on <*>"


def test_alertmanager_card_example() -> None:
    alert = alert_from(AM + "prometheus-msteams_pkg_card_testdata_prom_post_request.json")
    assert alert.title == "high_memory_load: Prometheus Test"  # the group's common summary
    assert alert.message.startswith("Server High Memory usage")
    assert alert.resource == "instance-with-hyphen_and_underscore"
    assert alert.severity is Severity.MEDIUM


@pytest.mark.parametrize(
    ("name", "count", "severity"),
    [
        (
            AM + "prometheus-msteams_alert_testdata_prom_post_request_12_alerts.json",
            12,
            Severity.MEDIUM,
        ),
        (
            AM + "prometheus-msteams_alert_testdata_large_prom_post_request.json",
            19,
            Severity.CRITICAL,  # severity="page": wake someone up
        ),
    ],
)
def test_alertmanager_large_groups(name: str, count: int, severity: Severity) -> None:
    alerts = alerts_of(parse(body_of(name)), count)
    assert {a.parser for a in alerts} == {"alertmanager"}
    assert {a.severity for a in alerts} == {severity}
    assert len({a.member for a in alerts}) == count
    names = {a.labels["alertname"] for a in alerts}
    assert len({a.fingerprint for a in alerts}) == len(names) <= count


def test_alertmanager_large_group_titles_and_resources() -> None:
    first = alerts_from(AM + "prometheus-msteams_alert_testdata_large_prom_post_request.json")[0]
    assert first.title == "NodeEvent: Server is down"
    assert first.message.startswith("Server is down. `infrastructure002A` - `user3environmentc`")
    assert first.resource == "infrastructurevmenvironmentcuser3cne1"
    assert first.occurred_at == at("2019-01-09T15:20:40.341301Z")


# --- Grafana alerting webhook -----------------------------------------------------------------


def test_grafana_unified_alerting_webhook() -> None:
    alerts = alerts_from("grafana/grafana-docs_webhook-notifier_firing-2-alerts.json", 2)
    # One group ("{}:{}") holding two alert names: two problems, each titled by its name.
    assert [a.title for a in alerts] == ["High memory usage", "High CPU usage"]
    assert alerts[0].fingerprint != alerts[1].fingerprint
    assert alerts[0].message.startswith("This alert was triggered for zone us-1")
    for alert in alerts:
        assert alert.parser == "grafana"
        assert alert.source == "grafana"
        assert alert.severity is Severity.MEDIUM
        assert alert.status is AlertStatus.FIRING
        assert alert.resource is None
        assert alert.raw["orgId"] == 1
    assert [a.occurred_at for a in alerts] == [
        at("2021-10-12T07:51:03.157076Z"),
        at("2021-10-12T07:56:03.157076Z"),
    ]
    assert (
        alerts[0].dedup_key == f"grafana:{alerts[0].member}:2021-10-12T09:51:03.157076+02:00:firing"
    )
    # Resolving the first entry resolves exactly its incident.
    group = doc_of("grafana/grafana-docs_webhook-notifier_firing-2-alerts.json")
    group["alerts"][0]["status"] = "resolved"
    again = alerts_of(parse_doc(group), 2)
    assert [a.status for a in again] == [AlertStatus.RESOLVED, AlertStatus.FIRING]
    assert [a.fingerprint for a in again] == [a.fingerprint for a in alerts]


@pytest.mark.parametrize(
    "name",
    [
        "grafana/grafana-oncall_grafana_alerting_example_payload.json",
        "grafana/grafana-oncall_grafana_example_payload.json",
        "grafana/grafana-oncall_legacy_grafana_alerting_example_payload.json",
    ],
)
def test_grafana_oncall_examples_are_plain_alertmanager_groups(name: str) -> None:
    """Grafana OnCall's examples carry none of Grafana's own keys (orgId, silenceURL, values...):
    by shape they are Alertmanager webhooks, and read as such."""
    alerts = alerts_from(name)
    assert {a.parser for a in alerts} == {"alertmanager"}
    assert {a.status for a in alerts} == {AlertStatus.FIRING}


def test_grafana_oncall_legacy_example() -> None:
    alert = alert_from("grafana/grafana-oncall_legacy_grafana_alerting_example_payload.json")
    assert alert.title == "TestAlert"
    assert alert.message.startswith("This alert was sent by user for demonstration purposes")
    assert alert.severity is Severity.MEDIUM


# --- SNS and SQS envelopes around plain messages ----------------------------------------------


def test_sns_http_notification_is_a_text_alert_titled_by_its_subject() -> None:
    alert = alert_from("sns/awsdocs-sns-guide_http-Notification.http")
    assert alert.parser == "text"
    assert alert.source == "sns"
    assert alert.title == "My First Message"
    assert alert.message == "Hello world!"
    assert alert.severity is Severity.MEDIUM
    assert alert.status is AlertStatus.FIRING
    assert alert.occurred_at == RECEIVED
    assert alert.dedup_key == "sns:22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("sns/awsdocs-sns-guide_http-SubscriptionConfirmation.http", "SubscriptionConfirmation"),
        ("sns/awsdocs-sns-guide_http-UnsubscribeConfirmation.http", "UnsubscribeConfirmation"),
    ],
)
def test_sns_confirmations_are_not_alerts(name: str, kind: str) -> None:
    result = parse(body_of(name))
    assert result.alerts == []
    [rejection] = result.rejections
    assert rejection.informational
    assert kind in rejection.reason
    assert "arn:aws:sns:us-west-2:123456789012:MyTopic" in rejection.reason
    assert "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription" in rejection.reason
    assert rejection.fragment == doc_of(name)


def test_sns_confirmation_inside_an_sqs_event_is_not_an_alert() -> None:
    event = doc_of("sqs/powertools-py_snsSqsEvent.json")
    event["Records"][0]["body"] = body_of(
        "sns/awsdocs-sns-guide_http-SubscriptionConfirmation.http"
    ).decode()
    result = parse_doc(event)
    assert result.alerts == []
    assert [r.informational for r in result.rejections] == [True]


def test_sqs_body_with_raw_delivery_off_and_on() -> None:
    enveloped = alert_from("sns/awsdocs-sns-guide_raw-delivery-DISABLED_sqs-body.json")
    assert enveloped.parser == "text"
    assert enveloped.source == "sns"
    assert enveloped.title == "TestSubject"
    assert enveloped.message == "This is a test message."
    assert enveloped.dedup_key == "sns:dc1e94d9-56c5-5e96-808d-cc7f68faa162"
    raw = alert_from("sns/awsdocs-sns-guide_raw-delivery-ENABLED_sqs-body.txt")
    assert raw.parser == "text"
    assert raw.source == "text"
    assert raw.title == "This is a test message."
    assert raw.message == "This is a test message."
    assert raw.dedup_key is None
    assert raw.severity is Severity.MEDIUM


def test_lambda_sns_events_with_one_message_id_share_the_dedup_key() -> None:
    go = alert_from("sns/lambda-go_sns-event.json")
    powertools = alert_from("sns/powertools-py_snsEvent_lambda.json")
    for alert in (go, powertools):
        assert alert.parser == "text"
        assert alert.source == "sns"
        assert alert.title == "TestInvoke"
        assert alert.message == "Hello from SNS!"
        assert alert.dedup_key == "sns:95df01b4-ee98-5cb9-9903-4c221d41eb5e"
    assert go.fingerprint == powertools.fingerprint


def test_lambda_sns_event_pascal_case() -> None:
    alert = alert_from("sns/rust-runtime_example-sns-event-pascal-case.json")
    assert alert.title == "Greetings"
    assert alert.message == "Hello\r\nworld!"
    assert alert.dedup_key == "sns:82833b5c-8d5d-56d0-b0e1-7511f8253eb8"


def test_sqs_event_with_a_plain_body() -> None:
    alert = alert_from("sqs/lambda-go_sqs-event.json")
    assert alert.parser == "text"
    assert alert.source == "sqs"
    assert alert.title == "Message Body"
    assert alert.dedup_key == "sqs:MessageID_1"


def test_sqs_event_with_text_and_json_bodies() -> None:
    text_alert, json_alert = alerts_from("sqs/powertools-py_sqsEvent.json", 2)
    assert (text_alert.parser, text_alert.title) == ("text", "Test message.")
    assert text_alert.dedup_key == "sqs:059f36b4-87a3-44ab-83d2-661975830a7d"
    assert (json_alert.parser, json_alert.title) == ("json", "foo1")
    assert json_alert.dedup_key == "sqs:2e1424d4-f796-459a-8184-9c92662be6da"
    assert json_alert.raw == {"message": "foo1"}


@pytest.mark.parametrize(
    "name", ["sqs/powertools-py_snsSqsEvent.json", "sqs/powertools-py_snsSqsFifoEvent.json"]
)
def test_sns_to_sqs_event_keys_on_the_sns_message_id(name: str) -> None:
    alert = alert_from(name)
    assert alert.parser == "json"
    assert alert.title == "hello world"
    assert alert.raw == {"message": "hello world", "username": "lessa"}
    sns_id = json.loads(doc_of(name)["Records"][0]["body"])["MessageId"]
    assert alert.dedup_key == f"sns:{sns_id}"


def test_sns_to_sqs_standard_and_fifo_share_the_fingerprint() -> None:
    standard = alert_from("sqs/powertools-py_snsSqsEvent.json")
    fifo = alert_from("sqs/powertools-py_snsSqsFifoEvent.json")
    assert standard.fingerprint == fifo.fingerprint
    assert standard.dedup_key != fifo.dedup_key


# --- The product brief's custom JSON, and any other JSON --------------------------------------


def test_the_briefs_custom_alert() -> None:
    alert = only(parse_doc(BRIEF_ALERT))
    assert alert.parser == "custom"
    assert alert.source == "test"
    assert alert.title == "Test Error: Database Connection Failed"
    assert alert.message == BRIEF_ALERT["message"]
    assert alert.severity is Severity.HIGH
    assert alert.status is AlertStatus.FIRING
    assert alert.resource is None
    assert alert.occurred_at == at("2026-11-24T08:00:00Z")
    assert alert.dedup_key is None
    assert alert.raw == BRIEF_ALERT


def test_the_briefs_custom_alert_groups_across_volatile_details_and_routes() -> None:
    first = only(parse_doc(BRIEF_ALERT))
    later = only(parse_doc(dict(BRIEF_ALERT, timestamp="2026-01-02T04:00:00Z",
                                message=BRIEF_ALERT["message"].replace("30s", "45s"))))  # fmt: skip
    assert later.fingerprint == first.fingerprint
    via_sns = only(parse(classic_alarm_deliveries(json.dumps(BRIEF_ALERT))["lambda-sns"]))
    assert via_sns.parser == "custom"
    assert via_sns.fingerprint == first.fingerprint
    assert via_sns.dedup_key == "sns:95df01b4-ee98-5cb9-9903-4c221d41eb5e"
    other = only(parse_doc(dict(BRIEF_ALERT, title="Test Error: Disk Full")))
    assert other.fingerprint != first.fingerprint


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("P1", Severity.CRITICAL), ("critical", Severity.CRITICAL), ("warning", Severity.MEDIUM),
     ("info", Severity.LOW), (2, Severity.HIGH), ("nonsense", Severity.MEDIUM),
     (None, Severity.MEDIUM)],
)  # fmt: skip
def test_custom_alert_severity_vocabulary(severity: Any, expected: Severity) -> None:
    assert only(parse_doc(dict(BRIEF_ALERT, severity=severity))).severity is expected


def test_custom_alert_resolved_status() -> None:
    alert = only(parse_doc(dict(BRIEF_ALERT, status="resolved")))
    assert alert.status is AlertStatus.RESOLVED
    assert alert.fingerprint == only(parse_doc(BRIEF_ALERT)).fingerprint


def test_grafana_oncall_formatted_webhook_is_a_custom_alert() -> None:
    alert = alert_from("other/grafana-oncall_formatted_webhook_example_payload.json")
    assert alert.parser == "custom"
    assert alert.source == "custom"
    assert alert.title == "TestAlert: The whole system is down"
    assert alert.message.startswith("This alert was sent by user for demonstration purposes")
    assert alert.severity is Severity.MEDIUM
    assert alert.status is AlertStatus.FIRING  # state "alerting"
    assert alert.occurred_at == RECEIVED


def test_kapacitor_webhook_is_read_best_effort() -> None:
    alert = alert_from("other/grafana-oncall_kapacitor_example_payload.json")
    assert alert.parser == "json"
    assert alert.source == "webhook"
    assert alert.title == "This alert was sent by user for demonstration purposes"
    assert alert.severity is Severity.MEDIUM
    assert alert.raw == doc_of("other/grafana-oncall_kapacitor_example_payload.json")


def test_other_eventbridge_event_is_read_best_effort() -> None:
    alert = alert_from("other/powertools-py_eventBridgeEvent.json")
    assert alert.parser == "json"
    assert alert.source == "aws.ec2"
    assert alert.title == "EC2 Instance State-change Notification"
    assert alert.occurred_at == at("2017-12-22T18:43:48Z")
    assert alert.severity is Severity.MEDIUM
    assert alert.status is AlertStatus.FIRING
    assert "i-1234567890abcdef0" in alert.message


def test_pagerduty_v3_incident_and_its_event_read_as_one_incident() -> None:
    incident = alert_from("pagerduty/pagerduty-devdocs_webhooks-v3_04_incident.json")
    assert incident.parser == "json"
    assert incident.title == "A little bump in the road"
    assert incident.severity is Severity.HIGH  # urgency "high"
    assert incident.status is AlertStatus.FIRING  # "triggered"
    assert incident.occurred_at == at("2020-04-09T15:16:27Z")
    # The event's agent (who changed the priority) is not what the alert is about.
    event = alert_from("pagerduty/pagerduty-devdocs_webhooks-v3_02_incident-priority-updated.json")
    assert event.title == "A little bump in the road"
    assert event.fingerprint == incident.fingerprint


def test_sentry_alerts_are_titled_by_what_happened_not_by_who_sent_them() -> None:
    issue = alert_from("sentry/sentry-docs_webhook_issue-alert_triggered.json")
    assert issue.parser == "json"
    assert issue.title == "ReferenceError: heck is not defined"
    assert issue.severity is Severity.HIGH  # level "error"
    assert issue.status is AlertStatus.FIRING
    metric = alert_from("sentry/sentry-docs_webhook_metric-alert_resolved.json")
    assert metric.title == "Sacred Marmot"
    assert metric.status is AlertStatus.RESOLVED  # action "resolved"
    assert metric.fingerprint != issue.fingerprint


# --- Severity vocabulary ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("P0", Severity.CRITICAL), ("P1", Severity.CRITICAL), ("p2", Severity.HIGH),
        ("P3", Severity.MEDIUM), ("P4", Severity.LOW), ("P5", Severity.LOW),
        ("sev1", Severity.CRITICAL), ("SEV-1", Severity.CRITICAL), ("Sev 2", Severity.HIGH),
        ("sev3", Severity.MEDIUM), ("SEV4", Severity.LOW),
        ("critical", Severity.CRITICAL), ("CRITICAL", Severity.CRITICAL),
        ("fatal", Severity.CRITICAL),
        ("error", Severity.HIGH), ("major", Severity.HIGH), ("high", Severity.HIGH),
        ("warning", Severity.MEDIUM), ("warn", Severity.MEDIUM), ("minor", Severity.MEDIUM),
        ("info", Severity.LOW), ("informational", Severity.LOW), ("debug", Severity.LOW),
        ("page", Severity.CRITICAL), ("  Critical  ", Severity.CRITICAL),
        ("1 - Critical", Severity.CRITICAL), ("P1-High", Severity.CRITICAL),
        ("High Priority", Severity.HIGH), ("CRITICAL ALERT", Severity.CRITICAL),
        (0, Severity.CRITICAL), (1, Severity.CRITICAL), (2, Severity.HIGH), (3, Severity.MEDIUM),
        (4, Severity.LOW), (5, Severity.LOW), ("1", Severity.CRITICAL), ("3", Severity.MEDIUM),
        (2.0, Severity.HIGH),
    ],
)  # fmt: skip
def test_severity_from_each_senders_vocabulary(value: object, expected: Severity) -> None:
    assert severity_from(value) is expected


@pytest.mark.parametrize(
    "value",
    [None, True, False, "", "   ", "banana", "-", -1, -0.5, math.inf, -math.inf, math.nan,
     {"level": "critical"}, ["critical"]],
)  # fmt: skip
def test_severity_from_says_nothing_when_unsure(value: object) -> None:
    assert severity_from(value) is None


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (("api-5xx-critical",), Severity.CRITICAL),
        (("[P1] Database down",), Severity.CRITICAL),
        (("[P2] queue backlog",), Severity.HIGH),
        (("[HIGH] queue backlog",), Severity.HIGH),
        (("(sev1) payments",), Severity.CRITICAL),
        (("checkout latency severity=low",), Severity.LOW),
        (("priority: P3 — batch lag",), Severity.MEDIUM),
        (("prod/sev2/db-replica-lag",), Severity.HIGH),
        (("orders_queue_depth_warning",), Severity.MEDIUM),
        (("CRIT-disk-full",), Severity.CRITICAL),
        ((None, "", "owner: payments [P2]"), Severity.HIGH),
    ],
)
def test_severity_marker_finds_tags(texts: tuple[str | None, ...], expected: Severity) -> None:
    assert severity_marker(*texts) is expected


@pytest.mark.parametrize(
    "text",
    [
        "Low disk space on /var",
        "low-disk-space",
        "HighCPUUtilization",
        "High memory usage",
        "EC2 CPU Utilization Anomaly",
        "[RTB-US] UnHealthyHostCount",
        "if-sim-app_427809481713_us-east-1-test_node_monitor",
        "Goes into alarm when server CPU utilization is too high.",
        "api2-latency",
        "",
    ],
)
def test_severity_marker_ignores_words_that_describe_the_condition(text: str) -> None:
    assert severity_marker(text) is None


@pytest.mark.parametrize(
    ("body", "severity"),
    [
        ("[P1] Checkout is down in eu-west-1", Severity.CRITICAL),
        ("[ERROR] Database connection failed", Severity.HIGH),
        ("CRITICAL: disk full on db-1", Severity.CRITICAL),
        ("Low disk space on db-1", Severity.MEDIUM),
    ],
)
def test_plain_text_alert_tagged_with_a_severity(body: str, severity: Severity) -> None:
    alert = only(parse(body.encode()))
    assert alert.parser == "text"
    assert alert.title == body
    assert alert.severity is severity


# --- Timestamps -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2015-06-03T17:43:27.123+0000", "2015-06-03T17:43:27.123+00:00"),
        ("2019-10-02T17:04:40.989+0000", "2019-10-02T17:04:40.989+00:00"),
        ("2019-09-27T16:27:56.612666101Z", "2019-09-27T16:27:56.612666+00:00"),
        ("2018-03-07T06:33:21.873077559-05:00", "2018-03-07T11:33:21.873077+00:00"),
        ("2021-10-12T09:51:03.157076+02:00", "2021-10-12T07:51:03.157076+00:00"),
        ("2023-08-04T12: 56: 46.138+0000", "2023-08-04T12:56:46.138+00:00"),
        ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05+00:00"),
        ("2026-01-02T03:04:05z", "2026-01-02T03:04:05+00:00"),
        ("2026-01-02 03:04:05", "2026-01-02T03:04:05+00:00"),
        ("2026-01-02T03:04:05", "2026-01-02T03:04:05+00:00"),
        ("2026-01-02T03:04:05.5+0530", "2026-01-01T21:34:05.500+00:00"),
        (1440442987000, "2015-08-24T19:03:07+00:00"),
        (1440442987001, "2015-08-24T19:03:07.001+00:00"),
        (1440442987, "2015-08-24T19:03:07+00:00"),
        (1668093033.744, "2022-11-10T15:10:33.744+00:00"),
        ("1440442987000", "2015-08-24T19:03:07+00:00"),
        ("1440442987", "2015-08-24T19:03:07+00:00"),
    ],
)
def test_parse_time_reads_what_senders_write(value: object, expected: str) -> None:
    parsed = parse_time(value)
    assert parsed is not None
    assert parsed == datetime.fromisoformat(expected)
    assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "value",
    [
        None, True, False, "", "   ", "date", "timestamp", "garbage", "2026-13-45T99:99:99Z",
        "0001-01-01T00:00:00Z", "0001-01-01", {"t": 1}, [1440442987], -1, -1440442987000,
        math.nan, math.inf, -math.inf, 1e30, "9" * 400,
        "9999-12-31T23:59:59-23:59",
    ],
)  # fmt: skip
def test_parse_time_gives_none_for_what_is_not_a_time(value: object) -> None:
    assert parse_time(value) is None
