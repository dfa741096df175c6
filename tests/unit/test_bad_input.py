"""Bad input: every payload gets a clear one-line reason or a best-effort alert, never a
traceback, and whatever is refused is kept (as the rejection's fragment, or whole by the
caller when parse_body raises ParseError)."""

from __future__ import annotations

import base64
import gzip
import json
import random
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from incidents.models import AlertStatus, Severity
from ingest.content_coding import InflatedTooLargeError, decode_content
from ingest.normalize import MAX_DEPTH, MAX_PAYLOAD_BYTES, ParseResult, decode, parse_body
from ingest.parsers import cloudwatch_logs
from ingest.parsers.base import ParseError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "payloads"
RECEIVED = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_bytes())


def parse(body: bytes) -> ParseResult:
    return parse_body(body, RECEIVED)


def parse_doc(doc: Any) -> ParseResult:
    return parse(json.dumps(doc).encode())


def refused(body: bytes) -> str:
    """The one-line reason a wholly unreadable body is refused with."""
    with pytest.raises(ParseError) as caught:
        parse(body)
    reason = caught.value.reason
    assert reason and "\n" not in reason and len(reason) < 600
    return reason


def rejected(result: ParseResult, *, informational: bool = False) -> str:
    """The one reason a readable body that holds no alert is rejected with."""
    assert result.alerts == []
    [rejection] = result.rejections
    assert rejection.reason and "\n" not in rejection.reason
    assert rejection.informational is informational
    assert rejection.fragment is not None
    return rejection.reason


def one_alert(result: ParseResult) -> Any:
    assert result.rejections == [], [r.reason for r in result.rejections]
    [alert] = result.alerts
    assert alert.title.strip()
    assert alert.raw is not None
    return alert


ALARM = json.loads(
    fixture("cloudwatch-alarm-sns/rheoceros_sns-lambda_metric-alarm_ALARM.json")["Records"][0][
        "Sns"
    ]["Message"]
)
EVENTBRIDGE = fixture(
    "cloudwatch-alarm-eventbridge/awsdocs-cw-guide_state-change-for-a-single-metric-alarm.json"
)
DETAIL = EVENTBRIDGE["detail"]
LAMBDA_ACTION = fixture(
    "cloudwatch-alarm-lambda-action/rust-runtime_example-cloudwatch-alarm-metric.json"
)
LOGS = fixture("cloudwatch-logs-subscription/DERIVED_decoded_powertools-py_cloudWatchLogEvent.json")
ALERTMANAGER = fixture("prometheus-alertmanager/alertmonitor-docs_v4_firing_3-alerts.json")
GRAFANA = fixture("grafana/grafana-docs_webhook-notifier_firing-2-alerts.json")
SNS = fixture("sns/awsdocs-sns-guide_raw-delivery-DISABLED_sqs-body.json")
SQS_EVENT = fixture("sqs/powertools-py_sqsEvent.json")
KINESIS = fixture(
    "cloudwatch-logs-subscription/powertools-py_kinesisStreamCloudWatchLogsEvent.json"
)
CUSTOM = {
    "source": "test",
    "title": "Test Error: Database Connection Failed",
    "message": "PostgreSQL connection timeout after 30s",
    "severity": "HIGH",
    "timestamp": "2026-01-02T03:04:05Z",
}


def with_(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**doc, **changes}


def awslogs(payload: bytes) -> dict[str, Any]:
    return {"awslogs": {"data": base64.b64encode(payload).decode()}}


# --- empty, text, truncated, binary, too big ---------------------------------------------------


@pytest.mark.parametrize("body", [b"", b" ", b"\n\t\r\n  ", b"\xef\xbb\xbf"])
def test_empty_body_is_refused(body: bytes) -> None:
    assert "empty" in refused(body)


def test_non_json_text_is_a_plain_text_alert() -> None:
    alert = one_alert(parse(b"Disk /var is 97% full on db-1\nsecond line"))
    assert alert.parser == "text"
    assert alert.title == "Disk /var is 97% full on db-1"
    assert alert.message == "Disk /var is 97% full on db-1\nsecond line"
    assert alert.severity is Severity.MEDIUM
    assert alert.occurred_at == RECEIVED


@pytest.mark.parametrize(
    "body",
    [b"[ERROR] Database connection failed", b"[2026-01-02 03:04:05] ERROR db down",
     b"[P1] checkout down", b"[1] disk full", b"[ERROR] {\"a\": 1}"],
)  # fmt: skip
def test_text_that_only_starts_with_a_square_bracket_is_text(body: bytes) -> None:
    alert = one_alert(parse(body))
    assert alert.parser == "text"
    assert alert.title == body.decode()


@pytest.mark.parametrize(
    "body",
    [b"{broken", b"{{ template }}", b"{foo: bar}", b'{"a": 1} trailing', b'{"a": 1}\n{"b": 2}',
     b"[1, 2", b'[{"a":', b"[", b"[true"],
)  # fmt: skip
def test_what_opens_like_json_but_breaks_is_malformed(body: bytes) -> None:
    assert "malformed JSON" in refused(body)


@pytest.mark.parametrize("cut", [1, 2, 40, 200, 1000, -1])
def test_truncated_json_is_refused_as_malformed(cut: int) -> None:
    body = (FIXTURES / "grafana/grafana-docs_webhook-notifier_firing-2-alerts.json").read_bytes()
    assert "malformed JSON" in refused(body.rstrip()[:cut])


def test_broken_json_says_where() -> None:
    reason = refused(b'{"title": "x", "message": }')
    assert "malformed JSON" in reason
    assert "column" in reason


@pytest.mark.parametrize(
    "body",
    [
        random.Random(0).randbytes(512),
        random.Random(1).randbytes(4),
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06",
        b"\x00" * 16,
        b'{"title": "x", "message": "\x00"}',
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04",
        "alert".encode("utf-16"),
        gzip.compress(b'{"title": "x"}'),
        b"\x01\x02\x03\x04\x05\x06\x07\x08 some text",
    ],
)
def test_binary_is_refused(body: bytes) -> None:
    assert "binary" in refused(body)


def test_over_one_mebibyte_is_refused_before_reading_it() -> None:
    body = json.dumps(with_(CUSTOM, message="x" * MAX_PAYLOAD_BYTES)).encode()
    reason = refused(body)
    assert "limit" in reason
    assert str(MAX_PAYLOAD_BYTES) in reason


def test_exactly_one_mebibyte_is_read_and_bounded() -> None:
    doc = with_(CUSTOM, message="")
    padding = MAX_PAYLOAD_BYTES - len(json.dumps(doc).encode())
    body = json.dumps(with_(CUSTOM, message="y" * padding)).encode()
    assert len(body) == MAX_PAYLOAD_BYTES
    alert = one_alert(parse(body))
    assert alert.title == CUSTOM["title"]
    assert len(alert.message) <= 16_000


# --- nesting ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 10_000 + b"]" * 10_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        b"[" * 10_000,
        b'{"a":' * 10_000,
        b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
        b'{"title": "x", "message": "y", "labels": ' + b'{"a":' * 100 + b"1" + b"}" * 101,
    ],
)
def test_deep_nesting_is_refused(body: bytes) -> None:
    reason = refused(body)
    assert "nested deeper" in reason or "malformed JSON" in reason


def test_nesting_within_the_limit_is_read() -> None:
    body = b"[" * (MAX_DEPTH - 1) + b'"disk full"' + b"]" * (MAX_DEPTH - 1)
    alert = one_alert(parse(body))
    assert alert.title == "disk full"


def test_deep_json_inside_an_sns_message_is_kept_as_text() -> None:
    envelope = with_(SNS, Message="[" * 10_000 + "]" * 10_000)
    alert = one_alert(parse_doc(envelope))
    assert alert.parser == "text"
    assert alert.dedup_key == "sns:dc1e94d9-56c5-5e96-808d-cc7f68faa162"


def test_deep_json_inside_awslogs_data_is_refused() -> None:
    deep = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    reason = rejected(parse_doc(awslogs(gzip.compress(deep))))
    assert "CloudWatch Logs" in reason
    shallow_but_deep = b'{"a":' * (MAX_DEPTH + 5) + b"1" + b"}" * (MAX_DEPTH + 5)
    assert "nested deeper" in rejected(parse_doc(awslogs(gzip.compress(shallow_but_deep))))


def test_envelopes_nested_without_end_are_refused() -> None:
    """awslogs inside awslogs inside awslogs...: each layer stays small once compressed (a
    1 MiB body holds about 500), and unbounded unwrapping overflows the stack."""
    doc: Any = CUSTOM
    for _ in range(40):
        doc = awslogs(zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 9))
    assert len(json.dumps(doc)) < 10_000
    assert "envelopes nested deeper" in rejected(parse_doc(doc))
    # A few layers are still unwrapped.
    doc = CUSTOM
    for _ in range(3):
        doc = awslogs(gzip.compress(json.dumps(doc).encode()))
    assert one_alert(parse_doc(doc)).parser == "custom"


# --- JSON values that are not alerts -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"null", "null"),
        (b"true", "true"),
        (b"false", "false"),
        (b"[]", "empty batch"),
        (b"{}", "empty JSON object"),
        (b'""', "empty"),
        (b'"   "', "empty"),
        (b"[null, false]", "null"),
    ],
)
def test_json_values_that_hold_no_alert(body: bytes, words: str) -> None:
    result = parse(body)
    assert result.alerts == []
    assert result.rejections
    for rejection in result.rejections:
        assert not rejection.informational
    assert words in result.rejections[0].reason


@pytest.mark.parametrize("body", [b"42", b"-1.5", b'"a string alert"', b'["one", "two"]'])
def test_json_scalars_are_read_as_text(body: bytes) -> None:
    result = parse(body)
    assert result.rejections == []
    assert result.alerts
    assert {a.parser for a in result.alerts} == {"text"}


def test_a_batch_keeps_its_good_items_and_rejects_the_bad_one() -> None:
    result = parse_doc([CUSTOM, None, {}, "plain text"])
    assert [a.parser for a in result.alerts] == ["custom", "text"]
    assert [r.fragment for r in result.rejections] == [None, {}]


def test_nan_and_infinity_do_not_break_anything() -> None:
    body = b'{"title": "x", "severity": Infinity, "timestamp": NaN, "labels": {"v": -Infinity}}'
    alert = one_alert(parse(body))
    assert alert.severity is Severity.MEDIUM
    assert alert.occurred_at == RECEIVED
    log = with_(LOGS, logEvents=[{"id": "1", "timestamp": 1e400, "message": '{"level": Infinity}'}])
    one_alert(parse(json.dumps(log).encode()))


def test_lone_surrogates_and_odd_unicode() -> None:
    alert = one_alert(parse(b'{"title": "bad \\ud800 surrogate", "message": "\\udfff"}'))
    assert "surrogate" in alert.title
    alert = one_alert(parse(json.dumps(with_(CUSTOM, severity="²", title="⚠️ ünïcode ✓")).encode()))
    assert alert.severity is Severity.MEDIUM


# --- wrong types in every known format ----------------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    [
        with_(ALARM, AlarmName=["a", "list"]),
        with_(ALARM, AlarmName=["a", "list"], AlarmArn=None),
        with_(ALARM, AlarmName={"nested": {"object": 1}}, AlarmArn=42),
        with_(ALARM, Trigger="not an object"),
        with_(
            ALARM, Trigger={"MetricName": ["x"], "Dimensions": "InstanceId=i-1", "Threshold": {}}
        ),
        with_(ALARM, Trigger={"Metrics": [1, "two", {"MetricStat": []}, {"Expression": 5}]}),
        with_(ALARM, StateChangeTime="garbage"),
        with_(ALARM, StateChangeTime=12),
        with_(ALARM, AlarmDescription=["d"], NewStateReason={"r": 1}, Region=7),
        with_(ALARM, AlarmRule=[1, 2]),
        with_(ALARM, AlarmArn="arn:aws:cloudwatch"),
    ],
)
def test_classic_alarm_with_wrong_types_gives_a_best_effort_alert(doc: dict[str, Any]) -> None:
    alert = one_alert(parse_doc(doc))
    assert alert.parser == "cloudwatch_alarm"
    assert alert.status is AlertStatus.FIRING


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        (with_(ALARM, NewStateValue={"value": "ALARM"}), "no known state"),
        (with_(ALARM, NewStateValue="EXPLODED"), "no known state"),
        (with_(ALARM, NewStateValue=None), "no known state"),
        (with_(ALARM, AlarmName="", AlarmArn=""), "without a name or ARN"),
        (with_(ALARM, AlarmName=None, AlarmArn=None), "without a name or ARN"),
    ],
)
def test_classic_alarm_without_state_or_identity_is_refused(
    doc: dict[str, Any], words: str
) -> None:
    assert words in rejected(parse_doc(doc))


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        (with_(EVENTBRIDGE, detail=["not", "an", "object"]), "no known state"),
        (with_(EVENTBRIDGE, detail="x", resources="arn"), "without a name or ARN"),
        (with_(EVENTBRIDGE, detail={"state": {"value": 3}}), "no known state"),
    ],
)
def test_eventbridge_with_wrong_types_is_refused(doc: dict[str, Any], words: str) -> None:
    assert words in rejected(parse_doc(doc))


@pytest.mark.parametrize(
    "doc",
    [
        with_(EVENTBRIDGE, resources=[{"arn": 1}], account=["x"], region={"r": 1}),
        with_(EVENTBRIDGE, detail=with_(DETAIL, configuration="x", previousState=[])),
        with_(EVENTBRIDGE, detail=with_(DETAIL, state=with_(DETAIL["state"], timestamp=[]))),
    ],
)
def test_eventbridge_with_wrong_types_gives_a_best_effort_alert(doc: dict[str, Any]) -> None:
    assert one_alert(parse_doc(doc)).parser == "cloudwatch_alarm_eventbridge"


def test_eventbridge_detail_type_of_the_wrong_type_is_not_an_alert() -> None:
    reason = rejected(parse_doc(with_(EVENTBRIDGE, **{"detail-type": ["x"]})), informational=True)
    assert "only alarm state changes are alerts" in reason


@pytest.mark.parametrize(
    "doc",
    [
        with_(LAMBDA_ACTION, alarmArn=["x"], accountId={"a": 1}),
        with_(
            LAMBDA_ACTION,
            alarmData=with_(LAMBDA_ACTION["alarmData"], configuration={"metrics": "m"}),
        ),
        with_(LAMBDA_ACTION, alarmData="not an object"),
    ],
)
def test_lambda_action_with_wrong_types(doc: dict[str, Any]) -> None:
    one_alert(parse_doc(doc))


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        (with_(LOGS, logEvents="a string"), "without log events"),
        (with_(LOGS, logEvents=[]), "without log events"),
        (with_(LOGS, logEvents={"id": "1"}), "without log events"),
        (with_(LOGS, messageType="CONTROL_MESSAGE"), "control message"),
    ],
)
def test_logs_data_with_wrong_types_is_refused(doc: dict[str, Any], words: str) -> None:
    informational = doc["messageType"] == "CONTROL_MESSAGE"
    assert words in rejected(parse_doc(doc), informational=informational)


@pytest.mark.parametrize(
    "events",
    [
        [1, "two", None, ["x"]],
        [{"id": ["x"], "timestamp": "garbage", "message": {"nested": "object"}}],
        [{"id": 7, "timestamp": -5, "message": None}],
    ],
)
def test_logs_events_of_the_wrong_types_give_best_effort_alerts(events: list[Any]) -> None:
    result = parse_doc(with_(LOGS, logGroup=["g"], logStream=3, logEvents=events))
    assert result.rejections == []
    assert len(result.alerts) == len(events)
    for alert in result.alerts:
        assert alert.parser == "cloudwatch_logs"
        assert alert.title.strip()
        assert alert.occurred_at == RECEIVED


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("not base64 at all!", "not valid base64"),
        ("SGVsbG8", "not valid base64"),
        (base64.b64encode(b"plain bytes, not compressed").decode(), "not gzip or zlib"),
        (base64.b64encode(gzip.compress(b"not json")).decode(), "not JSON"),
        (base64.b64encode(gzip.compress(b'{"logEvents": [')[:-8]).decode(), "truncated"),
        (base64.b64encode(gzip.compress(b"\xff\xfe binary")).decode(), "not JSON"),
        ("", "empty"),
        (12345, "not a base64 string"),
        (None, "not a base64 string"),
        (["H4sI"], "not a base64 string"),
    ],
)
def test_awslogs_data_that_does_not_decode(data: Any, words: str) -> None:
    assert words in rejected(parse_doc({"awslogs": {"data": data}}))


def test_awslogs_gzip_bomb_is_refused_without_inflating_it() -> None:
    bomb = gzip.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]", compresslevel=9)
    assert len(bomb) < MAX_PAYLOAD_BYTES
    reason = rejected(parse_doc(awslogs(bomb)))
    assert "inflates past" in reason
    assert str(cloudwatch_logs.MAX_DECODED_BYTES) in reason


def test_kinesis_data_that_does_not_decode() -> None:
    event = json.loads(json.dumps(KINESIS))
    event["Records"][0]["kinesis"]["data"] = "%%% not base64"
    event["Records"][1]["kinesis"]["data"] = base64.b64encode(b"\x1f\x8b\x08 broken gzip").decode()
    result = parse_doc(event)
    assert result.alerts == []
    assert ["not base64" in r.reason for r in result.rejections] == [True, False]
    assert "gzip" in result.rejections[1].reason or "truncated" in result.rejections[1].reason
    assert [r.fragment for r in result.rejections] == event["Records"]


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        (with_(ALERTMANAGER, alerts=[]), "without alerts"),
        (with_(GRAFANA, alerts=[7]), "grafana alert #0 is not an object"),
    ],
)
def test_alertmanager_groups_without_a_readable_entry_are_refused(
    doc: dict[str, Any], words: str
) -> None:
    assert words in rejected(parse_doc(doc))


def test_each_unreadable_alertmanager_entry_is_rejected_alone() -> None:
    good = ALERTMANAGER["alerts"][0]
    result = parse_doc(with_(ALERTMANAGER, alerts=[1, good, "x"]))

    assert len(result.alerts) == 1
    assert [(r.reason, r.fragment) for r in result.rejections] == [
        ("alertmanager alert #0 is not an object", 1),
        ("alertmanager alert #2 is not an object", "x"),
    ]


@pytest.mark.parametrize(
    "entry",
    [
        {"labels": ["a", "b"], "annotations": "x", "status": 5, "startsAt": "garbage"},
        {"labels": {"alertname": ["x"], "severity": {"s": 1}}, "annotations": {"summary": None}},
        {"labels": {}, "annotations": {}, "startsAt": 1e400, "endsAt": None},
        {"status": "resolved", "labels": {"alertname": "A"}, "endsAt": "not a time"},
        {"labels": {str(i): "v" * 1000 for i in range(200)}},
    ],
)
def test_alertmanager_entries_with_wrong_types_give_best_effort_alerts(
    entry: dict[str, Any],
) -> None:
    alert = one_alert(parse_doc(with_(ALERTMANAGER, alerts=[entry], commonLabels=[])))
    assert alert.parser == "alertmanager"
    assert len(alert.labels) <= 64


def test_alertmanager_alerts_that_is_not_a_list_is_read_as_json() -> None:
    alert = one_alert(parse_doc(with_(ALERTMANAGER, alerts="x")))
    assert alert.parser == "json"


@pytest.mark.parametrize(
    "doc",
    [
        with_(CUSTOM, severity={"level": "critical"}),
        with_(CUSTOM, severity=["HIGH"]),
        with_(CUSTOM, severity=True),
        with_(CUSTOM, timestamp="garbage"),
        with_(CUSTOM, timestamp={"t": 1}),
        with_(CUSTOM, message=["a", "list"]),
        with_(CUSTOM, message=None),
        with_(CUSTOM, source=["s"]),
        with_(CUSTOM, source=""),
        with_(CUSTOM, labels="x", tags=["a"], status=["resolved"]),
        with_(CUSTOM, title="x" * 100_000),
        with_(CUSTOM, title="\n\n   \n", message="second try"),
    ],
)
def test_custom_alert_with_wrong_types_gives_a_best_effort_alert(doc: dict[str, Any]) -> None:
    alert = one_alert(parse_doc(doc))
    assert alert.parser == "custom"
    assert len(alert.title) <= 300


def test_custom_alert_with_nothing_to_say_is_refused() -> None:
    assert "empty title and message" in rejected(parse_doc(with_(CUSTOM, title="  ", message="")))


@pytest.mark.parametrize(
    "doc",
    [
        with_(CUSTOM, title=42),
        with_(CUSTOM, title=None),
        with_(CUSTOM, title=["a"]),
        {"severity": {"x": 1}, "time": [], "status": {}},
        {"a": {"b": {"c": {"d": {"e": {"title": "deep"}}}}}},
        {str(i): i for i in range(10_000)},
    ],
)
def test_other_json_with_wrong_types_gives_a_best_effort_alert(doc: dict[str, Any]) -> None:
    alert = one_alert(parse_doc(doc))
    assert alert.parser == "json"
    assert len(alert.title) <= 300


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        (with_(SNS, Message=42), "without a Message string"),
        (with_(SNS, Message=None), "without a Message string"),
        (with_(SNS, Type="Surprise"), "unknown type"),
        (with_(SNS, Message="   "), "empty message"),
    ],
)
def test_sns_envelope_with_wrong_types_is_refused(doc: dict[str, Any], words: str) -> None:
    assert words in rejected(parse_doc(doc))


def test_sqs_event_with_wrong_record_types() -> None:
    event = json.loads(json.dumps(SQS_EVENT))
    event["Records"][0]["body"] = {"not": "a string"}
    event["Records"][1]["Sns"] = {"Type": "Notification", "MessageId": "m", "Message": 5}
    result = parse_doc(event)
    assert len(result.alerts) == 1
    assert "without a Message string" in result.rejections[0].reason


def test_records_that_are_not_objects_are_read_as_json() -> None:
    alert = one_alert(parse_doc({"Records": [1, "two", None]}))
    assert alert.parser == "json"


def test_decode_is_what_parse_body_refuses_with() -> None:
    with pytest.raises(ParseError, match="empty payload"):
        decode(b"")
    assert decode(b'{"a": 1}') == {"a": 1}
    assert decode(b"plain") == "plain"


@pytest.mark.parametrize(
    "body",
    [
        b"Timeout Caused by: pool exhausted",
        b"Error\n  Caused by: x",
        b"Caused by:",
        b'{"e": "Caused by:"}',
    ],
)
def test_caused_by_anywhere_in_a_text_is_read(body: bytes) -> None:
    """Found by the property tests: `Caused by:` not at a line's start once broke fingerprinting."""
    assert one_alert(parse(body)).fingerprint


def test_a_payload_with_too_many_alerts_is_refused_whole() -> None:
    body = json.dumps(["disk full"] * 5001).encode()

    with pytest.raises(ParseError, match="5001 alerts, over the limit of 5000 per payload"):
        parse_body(body, RECEIVED)


# Lone UTF-16 surrogates: escaped where JSON text enters the parsers, at any envelope depth.

CUT_EMOJI = {"title": "Checkout failing \ud83d", "message": "x", "severity": "HIGH"}


@pytest.mark.parametrize(
    "wrap",
    [
        lambda doc: doc,
        lambda doc: [doc, {"title": "fine", "message": "y"}],
        lambda doc: {
            "Type": "Notification",
            "MessageId": "m-1",
            "TopicArn": "arn:aws:sns:eu-west-1:1:t",
            "Message": json.dumps(doc),
        },
        lambda doc: {"Records": [{"messageId": "s-1", "body": json.dumps(doc)}]},
    ],
    ids=["plain", "batch", "sns", "sqs-in-sns-records"],
)
def test_a_lone_surrogate_becomes_its_escape_and_the_alert_serialises(wrap):
    result = parse_doc(wrap(CUT_EMOJI))

    assert result.alerts[0].title == "Checkout failing \\ud83d"
    for alert in result.alerts:
        alert.model_dump_json()  # what the store does; it raised before


def test_a_lone_surrogate_in_a_key_and_in_cloudwatch_logs_data_is_escaped_too():
    events = {
        "messageType": "DATA_MESSAGE",
        "logGroup": "/aws/lambda/checkout",
        "logStream": "s",
        "logEvents": [{"id": "1", "timestamp": 1, "message": "ERROR cut \udc00 here"}],
    }
    data = base64.b64encode(gzip.compress(json.dumps(events).encode())).decode()

    [alert] = parse_doc({"awslogs": {"data": data}}).alerts
    [keyed] = parse_doc({"title": "t", "message": "m", "labels": {"k\ud800": "v"}}).alerts

    assert "cut \\udc00 here" in alert.message
    alert.model_dump_json()
    keyed.model_dump_json()


def test_a_properly_paired_surrogate_is_the_emoji_itself():
    [alert] = parse(b'{"title": "Checkout failing \\ud83d\\udd25", "message": "x"}').alerts

    assert alert.title == "Checkout failing \U0001f525"


# Content-Encoding, undone by the receiver with a bound.


def test_content_codings_are_undone_last_applied_first_and_bounded():
    body = json.dumps(CUT_EMOJI).encode()

    assert decode_content(zlib.compress(gzip.compress(body)), "gzip, Deflate", 4096) == body
    assert decode_content(body, None, 4096) == body
    with pytest.raises(InflatedTooLargeError):
        decode_content(gzip.compress(b" " * 5000), "gzip", 4096)
    with pytest.raises(ParseError, match="bytes after the end"):
        decode_content(gzip.compress(body) + b"tail", "gzip", 4096)
    with pytest.raises(ParseError, match="not supported"):
        decode_content(body, "br", 4096)
