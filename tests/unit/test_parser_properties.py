"""Property tests: whatever arrives, every parser gives well-formed alerts and/or rejections
with reasons (or, for a body unreadable as a whole, ParseError), never anything else; and the
same input always gives the same fingerprints.

Documents are real-shaped: the keys of the real payloads in tests/fixtures/payloads, each
holding either its real value or an arbitrary JSON value, so that the parsers get past their
shape checks and into the code that reads the fields.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incidents.models import Alert, AlertStatus, Severity
from ingest.normalize import ParseResult, parse_body, parse_value
from ingest.parsers import cloudwatch_alarm, cloudwatch_logs, generic
from ingest.parsers.base import Envelope, ParseError
from ingest.severity import severity_from, severity_marker
from ingest.timeparse import parse_time

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "payloads"
RECEIVED = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
ENVELOPE = Envelope(received_at=RECEIVED)
PARSERS = {
    "cloudwatch_alarm",
    "cloudwatch_alarm_eventbridge",
    "cloudwatch_alarm_lambda",
    "cloudwatch_logs",
    "alertmanager",
    "grafana",
    "custom",
    "json",
    "text",
}

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_bytes())


def body_of(name: str) -> bytes:
    raw = (FIXTURES / name).read_bytes()
    return raw.split(b"\n\n", 1)[1] if name.endswith(".http") else raw


REAL_BODIES = [
    body_of(str(path.relative_to(FIXTURES)))
    for path in sorted(FIXTURES.rglob("*"))
    if path.is_file() and path.name != "SOURCES.md"
]
CW_SNS = "cloudwatch-alarm-sns/"
CW_EB = "cloudwatch-alarm-eventbridge/"
CW_LOGS = "cloudwatch-logs-subscription/"


def sns_message(name: str) -> Any:
    """The alarm JSON inside a Lambda SNS event."""
    return json.loads(fixture(name)["Records"][0]["Sns"]["Message"])


CLASSIC = sns_message(CW_SNS + "rheoceros_sns-lambda_metric-alarm_ALARM.json")
CLASSIC_MATH = sns_message(
    CW_SNS + "lambda-go_cloudwatch-alarm-sns-payload-multiple-metrics_metricmath.json"
)
COMPOSITE = sns_message(
    CW_SNS + "rheoceros_sns-lambda_composite-alarm_ALARM_TriggeringChildren.json"
)
EVENTBRIDGE = fixture(CW_EB + "awsdocs-cw-guide_state-change-for-an-anomaly-detection-alarm.json")
EVENTBRIDGE_COMPOSITE = fixture(
    CW_EB + "awsdocs-cw-guide_state-change-for-a-composite-alarm-with-a-suppressor-alarm.json"
)
LAMBDA_ACTION = fixture(
    "cloudwatch-alarm-lambda-action/powertools-py_cloudWatchAlarmEventSingleMetric_metricmath.json"
)
LOGS = fixture(CW_LOGS + "DERIVED_decoded_powertools-py_kinesisStreamCloudWatchLogsEvent.json")[0]
ALERTMANAGER = fixture("prometheus-alertmanager/alertmonitor-docs_v4_firing_3-alerts.json")
GRAFANA = fixture("grafana/grafana-docs_webhook-notifier_firing-2-alerts.json")
SNS = fixture("sns/awsdocs-sns-guide_raw-delivery-DISABLED_sqs-body.json")
SQS_EVENT = fixture("sqs/powertools-py_snsSqsEvent.json")
KINESIS = fixture(CW_LOGS + "powertools-py_kinesisStreamCloudWatchLogsEvent.json")
CUSTOM = {
    "source": "test",
    "title": "Test Error: Database Connection Failed",
    "message": "PostgreSQL connection timeout after 30s\nat Connection.connect(connection.js:42)",
    "severity": "HIGH",
    "timestamp": "2026-01-02T03:04:05Z",
}

# --- strategies -------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats()
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=12), json_values, max_size=6)

times = st.one_of(
    st.sampled_from(
        [
            "2015-06-03T17:43:27.123+0000",
            "2019-09-27T16:27:56.612666101Z",
            "2023-08-04T12: 56: 46.138+0000",
            "2018-03-07T06:33:21.873077559-05:00",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59-23:59",
            "date",
            "",
            1440442987000,
            1668093033.744,
        ]
    ),
    st.builds(
        lambda moment, minutes: moment.replace(
            tzinfo=timezone(timedelta(minutes=minutes))
        ).isoformat(),
        st.datetimes(),
        st.integers(min_value=-1439, max_value=1439),
    ),
    st.integers(min_value=-(10**18), max_value=10**18),
    st.floats(),
    json_values,
)
severities = st.one_of(
    st.sampled_from(
        ["P1", "p5", "sev1", "Sev-2", "critical", "warning", "info", "major", "page", "HIGH",
         "High Priority", "1 - Critical", "²", "٣", "9" * 5000, ""]
    ),
    st.text(max_size=20),
    st.floats(),
    st.integers(),
    json_values,
)  # fmt: skip
log_messages = st.one_of(
    st.sampled_from(
        [
            "[ERROR] First test message",
            "START RequestId: 06e46194-f277-454e-88d3-1dd7e3860eaa Version: $LATEST\n",
            '{"level": "error", "message": "db down"}',
            '{"level": Infinity}',
            "{" * 3000,
        ]
    ),
    st.text(max_size=200),
    json_values.map(json.dumps),
    json_values,
)


def mostly(real: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Three times in four the real thing: a document with every field wrong stops at the first
    check, so most fields must stay real for the wrong ones to reach the code that reads them."""
    return st.sampled_from((True, True, True, False)).flatmap(lambda keep: real if keep else other)


def real_or_any(value: Any) -> st.SearchStrategy[Any]:
    """A field of a real document: its real value, or anything JSON can hold."""
    return mostly(st.just(value), json_values)


def shaped(
    real: dict[str, Any],
    keep: tuple[str, ...] = (),
    **fields: st.SearchStrategy[Any],
) -> st.SearchStrategy[dict[str, Any]]:
    """The real document's keys, each real, arbitrary or absent; `keep` keys are always
    present (so the shape check still picks the parser); `fields` override strategies."""
    strategies = {key: fields.get(key, real_or_any(value)) for key, value in real.items()}
    strategies.update({key: strategy for key, strategy in fields.items() if key not in strategies})
    required = {key: strategies.pop(key) for key in keep}
    return st.fixed_dictionaries(required, optional=strategies)


def metric_entries(real: list[Any]) -> st.SearchStrategy[Any]:
    entry = st.one_of(st.sampled_from(real), json_objects, json_values)
    return st.one_of(st.lists(entry, max_size=4), json_values)


classic_alarms = shaped(
    {
        **CLASSIC,
        "AlarmRule": COMPOSITE["AlarmRule"],
        "TriggeringChildren": COMPOSITE["TriggeringChildren"],
    },
    keep=("AlarmName", "NewStateValue"),
    NewStateValue=mostly(
        st.sampled_from(["ALARM", "OK", "INSUFFICIENT_DATA", "alarm"]), json_values
    ),
    AlarmName=st.one_of(st.just(CLASSIC["AlarmName"]), st.just("api-5xx-critical"), json_values),
    StateChangeTime=times,
    Trigger=st.one_of(
        shaped(CLASSIC["Trigger"], Dimensions=metric_entries(CLASSIC["Trigger"]["Dimensions"])),
        shaped(CLASSIC_MATH["Trigger"], Metrics=metric_entries(CLASSIC_MATH["Trigger"]["Metrics"])),
        json_values,
    ),
)


def state_detail(real: dict[str, Any]) -> st.SearchStrategy[Any]:
    state = shaped(
        real["state"],
        keep=("value",),
        value=mostly(st.sampled_from(["ALARM", "OK", "INSUFFICIENT_DATA"]), json_values),
        timestamp=times,
    )
    configuration = shaped(
        {
            **real["configuration"],
            "alarmRule": EVENTBRIDGE_COMPOSITE["detail"]["configuration"]["alarmRule"],
        },
        metrics=metric_entries(EVENTBRIDGE["detail"]["configuration"]["metrics"]),
    )
    return mostly(
        shaped(
            real,
            keep=("alarmName", "state"),
            state=mostly(state, json_values),
            configuration=mostly(configuration, json_values),
        ),
        json_values,
    )


eventbridge_events = shaped(
    EVENTBRIDGE,
    keep=("source", "detail-type", "detail", "resources"),
    source=st.just("aws.cloudwatch"),
    **{"detail-type": mostly(st.just(cloudwatch_alarm.STATE_CHANGE), json_values)},
    detail=state_detail(EVENTBRIDGE["detail"]),
    resources=mostly(
        st.just(EVENTBRIDGE["resources"]), st.lists(json_values, max_size=2) | json_values
    ),
)
lambda_actions = shaped(
    LAMBDA_ACTION,
    keep=("source", "alarmData", "alarmArn"),
    source=st.just("aws.cloudwatch"),
    alarmData=mostly(state_detail(LAMBDA_ACTION["alarmData"]), json_objects),
)
log_events = st.fixed_dictionaries(
    {}, optional={"id": real_or_any("eventId1"), "timestamp": times, "message": log_messages}
)
logs_documents = shaped(
    LOGS,
    keep=("messageType", "logEvents"),
    messageType=st.one_of(st.sampled_from(["DATA_MESSAGE", "CONTROL_MESSAGE"]), json_values),
    logEvents=mostly(st.lists(mostly(log_events, json_values), max_size=5), json_values),
)
labels = st.one_of(st.dictionaries(st.text(max_size=12), json_values, max_size=5), json_values)


def alert_groups(real: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    entry = shaped(
        real["alerts"][0],
        keep=("labels",),
        status=mostly(st.sampled_from(["firing", "resolved"]), json_values),
        labels=st.one_of(st.just(real["alerts"][0]["labels"]), labels),
        annotations=st.one_of(st.just(real["alerts"][0]["annotations"]), labels),
        startsAt=times,
        endsAt=times,
    )
    return shaped(
        real,
        keep=("alerts", "version"),
        alerts=mostly(st.lists(mostly(entry, json_values), max_size=4), json_values),
        commonLabels=st.one_of(st.just(real["commonLabels"]), labels),
    )


custom_alerts = shaped(
    CUSTOM,
    keep=("title", "message"),
    title=st.one_of(st.just(CUSTOM["title"]), st.text(max_size=400)),
    message=st.one_of(st.just(CUSTOM["message"]), st.text(max_size=400), json_values),
    severity=severities,
    timestamp=times,
    status=json_values,
    labels=labels,
)
sns_envelopes = shaped(
    SNS,
    keep=("Type", "MessageId"),
    Type=mostly(
        st.just("Notification"), st.just("SubscriptionConfirmation") | st.text(max_size=20)
    ),
    Message=mostly(
        st.one_of(classic_alarms, custom_alerts, logs_documents, json_values).map(json.dumps),
        st.text(max_size=200) | json_values,
    ),
)


def awslogs_of(data: bytes) -> dict[str, Any]:
    return {"awslogs": {"data": base64.b64encode(data).decode()}}


awslogs_wrappers = st.one_of(
    logs_documents.map(lambda doc: awslogs_of(gzip.compress(json.dumps(doc).encode()))),
    logs_documents.map(lambda doc: awslogs_of(zlib.compress(json.dumps(doc).encode()))),
    st.binary(max_size=200).map(awslogs_of),
    st.binary(max_size=200).map(lambda raw: awslogs_of(gzip.compress(raw))),
    st.builds(
        lambda doc, cut: awslogs_of(gzip.compress(json.dumps(doc).encode())[:cut]),
        logs_documents,
        st.integers(min_value=0, max_value=60),
    ),
    st.fixed_dictionaries({"awslogs": st.fixed_dictionaries({"data": json_values})}),
)


def kinesis_event(payloads: list[bytes]) -> dict[str, Any]:
    record = KINESIS["Records"][0]
    return {
        "Records": [
            {**record, "kinesis": {**record["kinesis"], "data": base64.b64encode(data).decode()}}
            for data in payloads
        ]
    }


kinesis_events = st.lists(
    st.one_of(
        logs_documents.map(lambda doc: gzip.compress(json.dumps(doc).encode())),
        st.binary(max_size=100),
        json_values.map(lambda value: json.dumps(value).encode()),
    ),
    min_size=1,
    max_size=3,
).map(kinesis_event)
sqs_events = st.lists(
    st.one_of(sns_envelopes.map(json.dumps), st.text(max_size=100), json_values),
    min_size=1,
    max_size=3,
).map(lambda bodies: {"Records": [{**SQS_EVENT["Records"][0], "body": body} for body in bodies]})


def mutated(body: bytes, data: st.DataObject) -> bytes:
    """A real payload cut short, with a byte changed, or with a slice repeated."""
    cut = data.draw(st.integers(min_value=0, max_value=len(body)))
    kind = data.draw(st.sampled_from(["cut", "flip", "splice"]))
    if kind == "cut":
        return body[:cut]
    if kind == "flip" and body:
        index = min(cut, len(body) - 1)
        return body[:index] + bytes([data.draw(st.integers(0, 255))]) + body[index + 1 :]
    return body[:cut] + body[cut // 2 :]


# --- what every result must look like -----------------------------------------------------------


def check_alert(alert: Alert) -> None:
    assert isinstance(alert, Alert)
    assert alert.parser in PARSERS
    assert isinstance(alert.source, str) and alert.source and len(alert.source) <= 100
    assert isinstance(alert.title, str) and alert.title.strip() and len(alert.title) <= 300
    assert "\n" not in alert.title
    assert isinstance(alert.message, str) and len(alert.message) <= 16_000
    assert isinstance(alert.severity, Severity)
    assert isinstance(alert.status, AlertStatus)
    assert re.fullmatch(r"[0-9a-f]{16}", alert.fingerprint)
    assert alert.raw is not None
    assert alert.resource is None or (
        isinstance(alert.resource, str) and len(alert.resource) <= 500
    )
    assert alert.occurred_at.utcoffset() is not None
    assert alert.received_at == RECEIVED
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in alert.labels.items())
    assert alert.dedup_key is None or isinstance(alert.dedup_key, str)


def check_result(result: ParseResult) -> None:
    assert isinstance(result, ParseResult)
    for alert in result.alerts:
        check_alert(alert)
    for rejection in result.rejections:
        assert isinstance(rejection.reason, str) and rejection.reason.strip()
        assert "\n" not in rejection.reason


def identities(result: ParseResult) -> list[tuple[Any, ...]]:
    return [(a.fingerprint, a.dedup_key, a.title, a.severity, a.status) for a in result.alerts]


def check_value(value: Any) -> None:
    """Through the whole dispatch, twice: well-formed, and the same both times."""
    first = parse_value(value, ENVELOPE)
    check_result(first)
    assert identities(parse_value(value, ENVELOPE)) == identities(first)


def check_parser(parser: Callable[[Any, Envelope], list[Alert]], doc: Any) -> None:
    """One parser on its own: alerts, or ParseError with a reason; the same both times."""
    try:
        alerts = parser(doc, ENVELOPE)
    except ParseError as exc:
        assert exc.reason.strip() and "\n" not in exc.reason
        return
    assert isinstance(alerts, list) and alerts
    for alert in alerts:
        check_alert(alert)
    again = parser(doc, ENVELOPE)
    assert [a.fingerprint for a in again] == [a.fingerprint for a in alerts]


def check_body(body: bytes) -> None:
    try:
        result = parse_body(body, RECEIVED)
    except ParseError as exc:
        assert exc.reason.strip() and "\n" not in exc.reason
        return
    check_result(result)
    assert result.alerts or result.rejections
    assert identities(parse_body(body, RECEIVED)) == identities(result)


# --- parse_body and parse_value ------------------------------------------------------------------


@PROPERTY
@given(st.binary(max_size=2000))
def test_parse_body_on_arbitrary_bytes(body: bytes) -> None:
    check_body(body)


@PROPERTY
@given(st.text(max_size=500))
def test_parse_body_on_arbitrary_text(body: str) -> None:
    check_body(body.encode("utf-8", "surrogatepass"))


@PROPERTY
@given(st.sampled_from(REAL_BODIES), st.data())
def test_parse_body_on_damaged_real_payloads(body: bytes, data: st.DataObject) -> None:
    check_body(mutated(body, data))


@PROPERTY
@given(json_values)
def test_parse_value_on_arbitrary_json(value: Any) -> None:
    check_value(value)


@PROPERTY
@given(json_values.map(lambda value: json.dumps(value).encode()))
def test_parse_body_on_arbitrary_json_text(body: bytes) -> None:
    check_body(body)


# --- each parser on real-shaped documents --------------------------------------------------------


@PROPERTY
@given(classic_alarms)
def test_classic_alarm_parser(doc: dict[str, Any]) -> None:
    check_parser(cloudwatch_alarm.parse_classic, doc)
    check_value(doc)


@PROPERTY
@given(eventbridge_events)
def test_eventbridge_alarm_parser(doc: dict[str, Any]) -> None:
    check_parser(cloudwatch_alarm.parse_eventbridge, doc)
    check_value(doc)


@PROPERTY
@given(lambda_actions)
def test_lambda_action_alarm_parser(doc: dict[str, Any]) -> None:
    check_parser(cloudwatch_alarm.parse_lambda_action, doc)
    check_value(doc)


@PROPERTY
@given(logs_documents)
def test_cloudwatch_logs_parser(doc: dict[str, Any]) -> None:
    check_parser(cloudwatch_logs.parse, doc)
    check_value(doc)


@PROPERTY
@given(st.one_of(awslogs_wrappers, kinesis_events))
def test_cloudwatch_logs_encoded_deliveries(doc: dict[str, Any]) -> None:
    check_value(doc)


@PROPERTY
@given(
    st.one_of(
        st.text(max_size=200),
        st.binary(max_size=200).map(lambda raw: base64.b64encode(raw).decode()),
    )
)
def test_cloudwatch_logs_decode(data: str) -> None:
    try:
        cloudwatch_logs.decode(data)
    except ParseError as exc:
        assert exc.reason.strip() and "\n" not in exc.reason


@PROPERTY
@given(st.one_of(alert_groups(ALERTMANAGER), alert_groups(GRAFANA)))
def test_alertmanager_and_grafana_parser(doc: dict[str, Any]) -> None:
    check_value(doc)


@PROPERTY
@given(custom_alerts)
def test_custom_parser(doc: dict[str, Any]) -> None:
    check_parser(generic.parse_custom, doc)
    check_value(doc)


@PROPERTY
@given(json_objects)
def test_generic_json_parser(doc: dict[str, Any]) -> None:
    check_parser(generic.parse_json, doc)
    check_value(doc)


@PROPERTY
@given(st.text(max_size=500), st.one_of(st.none(), st.text(max_size=50)))
def test_plain_text_parser(body: str, subject: str | None) -> None:
    check_parser(generic.parse_text, body)
    inside_sns = Envelope(RECEIVED, "sns:k", subject, ("sns",))
    check_parser(lambda text, _: generic.parse_text(text, inside_sns), body)


@PROPERTY
@given(st.one_of(sns_envelopes, sqs_events))
def test_sns_and_sqs_envelopes(doc: dict[str, Any]) -> None:
    check_value(doc)


# --- the helpers every parser leans on -----------------------------------------------------------


@PROPERTY
@given(severities)
def test_severity_from_never_raises(value: Any) -> None:
    assert severity_from(value) is None or isinstance(severity_from(value), Severity)


@PROPERTY
@given(st.lists(st.one_of(st.none(), st.text(max_size=80)), max_size=3))
def test_severity_marker_never_raises(texts: list[str | None]) -> None:
    found = severity_marker(*texts)
    assert found is None or isinstance(found, Severity)


@PROPERTY
@given(times)
def test_parse_time_is_none_or_aware_utc(value: Any) -> None:
    parsed = parse_time(value)
    assert parsed is None or (isinstance(parsed, datetime) and parsed.utcoffset() == timedelta(0))
