"""Context gathering against moto's server over a real socket, with a real SQLite store.

Alerts are parsed from the real payloads in tests/fixtures/payloads, adjusted in code to name
the alarm, metric, log group and time that the test created in moto. moto's gaps show here as
they would against a real account missing a permission: DescribeAlarmHistory answers 500 and
metric math returns no datapoints, and both degrade to what the context says about them.
"""

from __future__ import annotations

import asyncio
import copy
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from analysis.alarm_metrics import metric_queries
from analysis.context import SECTION_CHARS, ContextLimits, Gatherer
from analysis.gather import OWN_LINE, ContextGatherer, GatheredContext
from analysis.related import rank_related
from incidents.lifecycle import IncidentService
from incidents.models import Alert, AlertStatus, Incident
from incidents.sqlite import SqliteStore
from ingest import fingerprint
from tests.alarms import (
    ALARM,
    CHANGE,
    CLASSIC,
    EB_MATH,
    INSTANCE,
    classic_alarm,
    fixture,
    parse_one,
)
from tests.conftest import ManualClock, make_alert
from tests.fakes.moto_server import ACCOUNT, REGION, aws, moto_server  # noqa: F401

pytestmark = pytest.mark.integration

LOGS = "cloudwatch-logs-subscription/DERIVED_decoded_powertools-py_cloudWatchLogEvent.json"
GROUP = "/aws/lambda/checkout"
STREAM = "2026/11/24/[$LATEST]0123abcd"
ERROR_LINE = "ERROR payment gateway timeout after 30s"


# --- helpers ---------------------------------------------------------------------------------


def logs_alert(at_ms: int) -> Alert:
    doc = fixture(LOGS)
    doc.update(logGroup=GROUP, logStream=STREAM)
    doc["logEvents"] = [{"id": "sub-1", "timestamp": at_ms, "message": ERROR_LINE}]
    return parse_one(doc)


def incident_for(store: SqliteStore, clock: ManualClock, alert: Alert) -> Incident:
    recorded = IncidentService(store, clock=clock).record(alert).incident
    assert recorded is not None
    return recorded


def minute(at: datetime) -> str:
    return f"{at:%H:%M}"


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A server that accepts connections and never answers: a hung AWS endpoint."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


class NoAws:
    """A client factory for tests that must not reach AWS: records each request and refuses."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    def __call__(self, service: str, region: str | None) -> Any:
        self.calls.append((service, region))
        raise RuntimeError("no AWS in this test")


# --- metric alarms ---------------------------------------------------------------------------


@pytest.mark.usefixtures("aws")
async def test_alarm_datapoints_come_back_rendered_and_history_degrades(
    store: SqliteStore, clock: ManualClock
):
    cloudwatch = boto3.client("cloudwatch")
    dims = [{"Name": "InstanceId", "Value": INSTANCE}]
    cloudwatch.put_metric_alarm(
        AlarmName=ALARM,
        Namespace="AWS/EC2",
        MetricName="CPUUtilization",
        Dimensions=dims,
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=80.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    # One datapoint a minute from 70 min before the change to 5 min after; the spike is at
    # the minute before the change and at the change itself.
    values = {
        CHANGE + timedelta(minutes=m): 97.5 if m in (-1, 0) else 40.0 + m % 3 for m in range(-70, 6)
    }
    cloudwatch.put_metric_data(
        Namespace="AWS/EC2",
        MetricData=[
            {"MetricName": "CPUUtilization", "Dimensions": dims, "Timestamp": t, "Value": v}
            for t, v in values.items()
        ],
    )
    alert = classic_alarm()
    gatherer: Gatherer = ContextGatherer(store)  # what the analysis engine takes
    context = await gatherer.gather(incident_for(store, clock, alert), alert)
    assert isinstance(context, GatheredContext)

    metric = context.section("metric")
    assert metric is not None, context.notes
    header, line = metric.text.splitlines()
    assert header.startswith(f"window {CHANGE - timedelta(minutes=60):%Y-%m-%d %H:%M}-")
    assert line.startswith(f"AWS/EC2 CPUUtilization InstanceId={INSTANCE} (Average, 60s): … ")
    assert f"{minute(CHANGE - timedelta(minutes=1))} 97.5, {minute(CHANGE)} 97.5" in line
    assert line.endswith(
        f"{minute(CHANGE + timedelta(minutes=5))} 42 | threshold 80 GreaterThanThreshold"
    )
    assert len(line.split("): ", 1)[1].split(", ")) == 60  # the newest 60 of the window's 66

    assert context.alarm_metrics is not None
    (series,) = context.alarm_metrics.series
    in_window = {t: v for t, v in values.items() if CHANGE - timedelta(minutes=60) <= t}
    assert dict(zip(series.timestamps, series.values, strict=True)) == in_window
    assert context.alarm_metrics.threshold == 80.0

    # moto has no DescribeAlarmHistory: a 500, which becomes a note, not a missing analysis.
    assert context.section("alarm_history") is None
    assert context.notes == ["alarm history unavailable: 500 Internal Server Error"]
    assert [s.name for s in context.sections] == ["metric", "timeline", "related"]


@pytest.mark.usefixtures("aws")
async def test_metric_math_alarm_queries_the_expression_with_its_metrics(
    store: SqliteStore, clock: ManualClock
):
    doc = copy.deepcopy(fixture(EB_MATH))
    doc["resources"] = [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:net-high"]
    doc["detail"]["alarmName"] = "net-high"
    doc["detail"]["state"]["timestamp"] = CHANGE.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    for metric in doc["detail"]["configuration"]["metrics"][1:]:
        metric["metricStat"]["metric"]["dimensions"] = {"InstanceId": INSTANCE}
    cloudwatch = boto3.client("cloudwatch")
    for name, value in (("NetworkIn", 1000.0), ("NetworkOut", 45628.0)):
        cloudwatch.put_metric_data(
            Namespace="AWS/EC2",
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": "InstanceId", "Value": INSTANCE}],
                    "Timestamp": CHANGE - timedelta(minutes=m),
                    "Value": value,
                }
                for m in range(0, 30, 5)
            ],
        )
    alert = parse_one(doc)
    context = await ContextGatherer(store).gather(incident_for(store, clock, alert), alert)

    metric = context.section("metric")
    assert metric is not None, context.notes
    expression, network_in, network_out = metric.text.splitlines()[1:]
    # moto's gap: metric math returns nothing, so only the inputs carry data here.
    assert expression == (
        "Total Network Traffic = SUM(METRICS()) (300s): no datapoints | threshold 10000"
    )
    assert network_in.startswith(f"AWS/EC2 NetworkIn InstanceId={INSTANCE} (Maximum, 300s): ")
    assert network_in.count(" 1000") == 6
    assert network_out.endswith(f"{minute(CHANGE)} 45628")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (CLASSIC, [("m1", "", "AWS/EC2 NetworkOut InstanceId=TestInstance (Average, 60s)")]),
        (
            "cloudwatch-alarm-sns/lambda-go_cloudwatch-alarm-sns-payload-multiple-metrics"
            "_metricmath.json",
            [
                ("e1", "m1*1", "Expression1 = m1*1 (60s)"),
                ("m1", "", "AWS/EC2 NetworkOut InstanceId=TestInstance (Average, 60s)"),
            ],
        ),
        (
            "cloudwatch-alarm-eventbridge/awsdocs-cw-guide_state-change-for-a-single-metric"
            "-alarm.json",
            [("q0", "", "AWS/EC2 CPUUtilization InstanceId=i-12345678901234567 (Average, 300s)")],
        ),
        (
            "cloudwatch-alarm-lambda-action/powertools-py_cloudWatchAlarmEventSingleMetric"
            "_metricmath.json",
            [
                ("e1", "m1/m2", "Expression1 = m1/m2 (60s)"),
                ("m1", "", "AWS/Lambda Invocations (SampleCount, 60s)"),
                ("m2", "", "AWS/Lambda Duration (SampleCount, 60s)"),
            ],
        ),
        (
            "cloudwatch-alarm-lambda-action/rust-runtime_example-cloudwatch-alarm-metric.json",
            [("q0", "", "AWS/Logs CallCount InstanceId=i-12345678 (Average, 60s)")],
        ),
        (
            "cloudwatch-alarm-sns/rheoceros_sns-lambda_composite-alarm_ALARM_TriggeringChildren.json",
            [],
        ),
    ],
)
def test_metric_queries_from_every_alarm_shape(name: str, expected: list[tuple[str, str, str]]):
    queries = metric_queries(parse_one(fixture(name)))
    assert [(q.id, q.expression, q.describe(q.period)) for q in queries] == expected


# --- logs ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("aws")
async def test_log_alert_gets_its_neighbouring_lines_with_its_own_marked(
    store: SqliteStore, clock: ManualClock
):
    at = CHANGE - timedelta(minutes=5)
    at_ms = int(at.timestamp() * 1000)
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=GROUP)
    for stream in (STREAM, "other-stream"):
        logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    # A line every 10 s from 5 min before to 3 min after; the alert's line at 0 s.
    logs.put_log_events(
        logGroupName=GROUP,
        logStreamName=STREAM,
        logEvents=[
            {"timestamp": at_ms + s * 1000, "message": ERROR_LINE if s == 0 else f"INFO tick {s}"}
            for s in range(-300, 181, 10)
        ],
    )
    logs.put_log_events(
        logGroupName=GROUP,
        logStreamName="other-stream",
        logEvents=[{"timestamp": at_ms + 5000, "message": "INFO another stream"}],
    )
    alert = logs_alert(at_ms)
    incident = incident_for(store, clock, alert)

    context = await ContextGatherer(store).gather(incident, alert)

    section = context.section("logs")
    assert section is not None, context.notes
    header, *lines = section.text.splitlines()
    assert (
        header == f"{GROUP}/{STREAM} {at - timedelta(minutes=2):%H:%M:%S}.000-"
        f"{at + timedelta(minutes=1):%H:%M:%S}.000 UTC, 19 lines"
    )
    assert [line.split()[-1] for line in lines] == [
        *(str(s) for s in range(-120, 0, 10)),
        "30s",
        *(str(s) for s in range(10, 61, 10)),
    ]
    assert lines[12] == f"{OWN_LINE}{at:%H:%M:%S}.000 {ERROR_LINE}"
    assert sum(line.startswith(OWN_LINE) for line in lines) == 1
    assert context.notes == []

    # Bounded to 6 lines: the nearest on each side, and the header says older ones were left.
    small = ContextGatherer(store, limits=ContextLimits(log_events=6))
    section = (await small.gather(incident, alert)).section("logs")
    assert section is not None
    header, *lines = section.text.splitlines()
    assert header.endswith("6 lines, older lines omitted")
    assert [line.split()[-1] for line in lines] == ["-30", "-20", "-10", "30s", "10", "20"]


# --- failures degrade, never block -----------------------------------------------------------


@pytest.mark.usefixtures("aws")
async def test_dead_endpoint_degrades_every_aws_gatherer_quickly(
    store: SqliteStore,
    clock: ManualClock,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port}")
    service = IncidentService(store, clock=clock)
    service.record(classic_alarm(changed=CHANGE - timedelta(days=2)))
    clock.advance(minutes=12)
    service.record(classic_alarm("OK", changed=CHANGE - timedelta(days=2) + timedelta(minutes=12)))
    clock.advance(days=2)
    alarm = classic_alarm()
    alarm_incident = incident_for(store, clock, alarm)
    log_alert = logs_alert(int(CHANGE.timestamp() * 1000))
    log_incident = incident_for(store, clock, log_alert)
    gatherer = ContextGatherer(store, timeout=1.0)

    started = time.monotonic()
    alarm_context, log_context = await asyncio.gather(
        gatherer.gather(alarm_incident, alarm), gatherer.gather(log_incident, log_alert)
    )
    elapsed = time.monotonic() - started

    assert elapsed < 1.5
    assert [note.split(":")[0] for note in alarm_context.notes] == [
        "metric datapoints unavailable",
        "alarm history unavailable",
    ]
    assert [note.split(":")[0] for note in log_context.notes] == ["log lines unavailable"]
    for note in [*alarm_context.notes, *log_context.notes]:
        assert "EndpointConnectionError" in note or "timed out after 1s" in note, note
    assert [s.name for s in alarm_context.sections] == ["timeline", "related"]
    assert [r.outcome for r in alarm_context.related] == ["resolved by alert:cloudwatch after 12m"]
    timeline = alarm_context.section("timeline")
    assert timeline is not None
    assert (
        timeline.text.splitlines()[1] == f"{clock.now:%H:%M:%S} opened by alert:cloudwatch — "
        f"HIGH: {ALARM}"
    )


@pytest.mark.usefixtures("aws")
async def test_hung_endpoint_times_out_to_a_note(
    store: SqliteStore,
    clock: ManualClock,
    silent_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("AWS_ENDPOINT_URL", silent_endpoint)
    alert = classic_alarm()
    incident = incident_for(store, clock, alert)

    started = time.monotonic()
    context = await ContextGatherer(store, timeout=0.5).gather(incident, alert)

    assert time.monotonic() - started < 1.0
    assert context.notes == [
        "metric datapoints unavailable: timed out after 0.5s",
        "alarm history unavailable: timed out after 0.5s",
    ]
    assert [s.name for s in context.sections] == ["timeline", "related"]


async def test_non_aws_alert_makes_no_aws_call(store: SqliteStore, clock: ManualClock):
    alert = make_alert()
    no_aws = NoAws()

    context = await ContextGatherer(store, no_aws).gather(incident_for(store, clock, alert), alert)

    assert no_aws.calls == []
    assert context.notes == []
    assert [s.name for s in context.sections] == ["timeline", "related"]

    # The same factory with an AWS alert: asked for the alarm's region, and refused into notes.
    alarm = classic_alarm()
    context = await ContextGatherer(store, no_aws).gather(incident_for(store, clock, alarm), alarm)
    assert no_aws.calls == [("cloudwatch", REGION), ("cloudwatch", REGION)]
    assert context.notes == [
        "metric datapoints unavailable: RuntimeError: no AWS in this test",
        "alarm history unavailable: RuntimeError: no AWS in this test",
    ]


# --- related incidents -----------------------------------------------------------------------


async def test_related_incidents_same_alert_first_then_similar_titles(
    store: SqliteStore, clock: ManualClock
):
    service = IncidentService(store, clock=clock)
    title = "Checkout latency p99 above 1800ms on web-9"

    def open_(text: str, problem: str | None = None) -> Incident:
        opened = service.record(make_alert(text, problem=problem)).incident
        assert opened is not None
        clock.advance(minutes=5)
        return opened

    earlier_same = open_(title, problem="checkout")
    clock.advance(minutes=7)
    service.record(make_alert(title, problem="checkout", status=AlertStatus.RESOLVED))
    clock.advance(hours=3)  # past the reopen window: the next one opens a new incident
    resolved_alike = open_("Checkout latency p99 above 2500ms on web-2")
    service.resolve(resolved_alike.id, "U777")
    loosely_alike = open_("Checkout latency above threshold")
    acked_alike = open_("Checkout latency p99 above 2000ms on web-7")
    service.acknowledge(acked_alike.id, "U123")
    open_("Disk full on db-2")
    other_source = make_alert(title).model_copy(
        update={"source": "grafana", "fingerprint": fingerprint.of_identity("grafana", title)}
    )
    service.record(other_source)
    clock.advance(minutes=5)
    current = open_(title, problem="checkout")
    open_("Checkout latency p99 above 3000ms on web-1")  # opened after: not a past incident

    context = await ContextGatherer(store, NoAws()).gather(current, make_alert(title))

    assert [(r.incident_id, r.status, r.outcome) for r in context.related] == [
        (earlier_same.id, "resolved", "resolved by alert:test after 12m"),
        (acked_alike.id, "acknowledged", "acknowledged by U123, still open"),
        (resolved_alike.id, "resolved", "resolved by U777 after 5m"),
    ]
    section = context.section("related")
    assert section is not None
    assert section.text.splitlines()[0].startswith(f"{earlier_same.id} [resolved] opened ")
    assert "(same alert): Checkout latency" in section.text
    assert "(similar title 1.00)" in section.text
    # Past the cap of three, the loosest match still ranks; other sources never do.
    ranked = rank_related(current, store.list_incidents(limit=50))
    assert [(i.id, why) for i, why in ranked] == [
        (earlier_same.id, "same alert"),
        (acked_alike.id, "similar title 1.00"),
        (resolved_alike.id, "similar title 1.00"),
        (loosely_alike.id, "similar title 0.50"),
    ]


async def test_sections_are_capped(store: SqliteStore, clock: ManualClock):
    service = IncidentService(store, clock=clock)
    alert = make_alert()
    incident = service.record(alert).incident
    assert incident is not None
    for _ in range(60):
        clock.advance(minutes=1)
        service.acknowledge(incident.id, "U" + "1" * 200)
        clock.advance(minutes=1)
        incident = service.resolve(incident.id, "U2")
        incident = service.record(alert).incident
        assert incident is not None

    context = await ContextGatherer(
        store, NoAws(), limits=ContextLimits(section_chars=1000)
    ).gather(incident, alert)

    timeline = context.section("timeline")
    assert timeline is not None
    assert len(timeline.text) <= 1000 < SECTION_CHARS
    assert timeline.text.endswith("… (cut)")
