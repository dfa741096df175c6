"""The metric graph drawn from constructed AlarmMetrics, and the alarm's evaluation window as
each real payload shape gives it."""

from __future__ import annotations

import io
import json
import struct
import threading
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from analysis.alarm_metrics import AlarmMetrics, MetricSeries, NoDatapointsError, evaluation_window
from analysis.graph import (
    COMPARED_COLOURS,
    THRESHOLD_COLOUR,
    draw_metric_graph,
    threshold_label,
)
from ingest.normalize import parse_body
from tests.conftest import FIXTURES

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANGED = datetime(2026, 11, 24, 8, 0, 30, tzinfo=UTC)


def cpu_metrics(**overrides: object) -> AlarmMetrics:
    """CPU at 40% for 50 minutes, then 95% up to and past the change."""
    start = CHANGED - timedelta(minutes=60)
    times = [start.replace(second=0) + timedelta(minutes=m) for m in range(1, 71)]
    fields: dict[str, object] = {
        "alarm_name": "web-cpu-high",
        "start": start,
        "end": CHANGED + timedelta(minutes=10),
        "changed_at": CHANGED,
        "period": 60,
        "threshold": 80.0,
        "comparison": "GreaterThanThreshold",
        "evaluation_window_seconds": 180,
        "series": [
            MetricSeries(
                id="m1",
                label="AWS/EC2 CPUUtilization InstanceId=i-1 (Average, 60s)",
                compared=True,
                timestamps=times,
                values=[40.0 if t < CHANGED - timedelta(minutes=10) else 95.0 for t in times],
            )
        ],
    }
    fields.update(overrides)
    return AlarmMetrics.model_validate(fields)


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which the PNG format puts first."""
    assert png[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", png[8:16])
    assert (length, kind) == (13, b"IHDR")
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def colours(png: bytes) -> set[tuple[int, ...]]:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return {c for _, c in image.getcolors(maxcolors=1 << 20) or [] if isinstance(c, tuple)}


def rgb(hex_colour: str) -> tuple[int, int, int]:
    value = int(hex_colour.lstrip("#"), 16)
    return value >> 16, (value >> 8) & 0xFF, value & 0xFF


def test_draws_a_png_of_exactly_the_default_size_with_line_and_threshold():
    png = draw_metric_graph(cpu_metrics())

    assert png_size(png) == (1000, 400)
    image = Image.open(io.BytesIO(png))
    image.verify()  # a well-formed PNG, every chunk's CRC included
    drawn = colours(png)
    assert rgb(COMPARED_COLOURS[0]) in drawn
    assert rgb(THRESHOLD_COLOUR) in drawn


@pytest.mark.parametrize(("width", "height"), [(640, 360), (1001, 333), (1200, 500), (480, 240)])
def test_any_size_comes_out_exact(width: int, height: int):
    assert png_size(draw_metric_graph(cpu_metrics(), width_px=width, height_px=height)) == (
        width,
        height,
    )


def test_too_small_a_size_is_refused():
    with pytest.raises(ValueError, match="below"):
        draw_metric_graph(cpu_metrics(), width_px=100, height_px=50)


def test_same_metrics_same_bytes_with_no_software_or_time_stamp():
    first, second = draw_metric_graph(cpu_metrics()), draw_metric_graph(cpu_metrics())

    assert first == second
    assert b"tEXt" not in first
    assert b"matplotlib" not in first.lower()


def test_without_a_threshold_no_threshold_line():
    png = draw_metric_graph(cpu_metrics(threshold=None, comparison=""))

    assert png_size(png) == (1000, 400)
    assert rgb(THRESHOLD_COLOUR) not in colours(png)


def test_no_datapoint_in_any_series_raises_a_clear_error():
    empty = cpu_metrics(
        series=[
            MetricSeries(id="e1", label="Total = SUM(METRICS()) (300s)", compared=True),
            MetricSeries(id="m1", label="AWS/EC2 NetworkIn", compared=False),
        ]
    )

    with pytest.raises(NoDatapointsError, match="no datapoints for web-cpu-high between"):
        draw_metric_graph(empty)
    with pytest.raises(NoDatapointsError):
        draw_metric_graph(cpu_metrics(series=[]))


def test_only_non_finite_values_count_as_no_datapoints():
    series = MetricSeries(
        id="m1", label="x", compared=True, timestamps=[CHANGED] * 2, values=[float("nan"), 1e999]
    )
    with pytest.raises(NoDatapointsError):
        draw_metric_graph(cpu_metrics(series=[series]))


def test_expression_inputs_on_another_scale_are_drawn_beside_the_compared_series():
    base = cpu_metrics().series[0]
    ratio = base.model_copy(update={"id": "e1", "label": "Duration per call = m2/m1"})
    calls = base.model_copy(
        update={"id": "m1", "label": "Invocations", "compared": False, "values": [5e4] * 70}
    )
    # An input with no data (moto's metric math leaves the expression empty the same way).
    silent = MetricSeries(id="m2", label="Duration", compared=False)

    png = draw_metric_graph(cpu_metrics(series=[ratio, calls, silent]))

    assert png_size(png) == (1000, 400)
    assert rgb(COMPARED_COLOURS[0]) in colours(png)


def test_inputs_alone_are_drawn_when_the_expression_returned_nothing():
    base = cpu_metrics().series[0]
    expression = MetricSeries(id="e1", label="Total = SUM(METRICS())", compared=True)
    network_in = base.model_copy(update={"id": "m1", "label": "NetworkIn", "compared": False})

    png = draw_metric_graph(cpu_metrics(series=[expression, network_in], threshold=10000.0))

    assert png_size(png) == (1000, 400)


def test_a_window_longer_than_the_graph_and_a_naive_timestamp_still_draw():
    metrics = cpu_metrics(evaluation_window_seconds=86400, changed_at=CHANGED.replace(tzinfo=None))
    assert png_size(draw_metric_graph(metrics)) == (1000, 400)


def test_draws_concurrently_from_worker_threads():
    """The bot draws in worker threads: with the object API (no pyplot) they do not clash."""
    expected = draw_metric_graph(cpu_metrics())
    results: list[bytes] = []
    lock = threading.Lock()

    def draw() -> None:
        png = draw_metric_graph(cpu_metrics())
        with lock:
            results.append(png)

    threads = [threading.Thread(target=draw) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [expected] * 6


@pytest.mark.parametrize(
    ("comparison", "label"),
    [
        ("GreaterThanThreshold", "threshold > 80"),
        ("LessThanOrEqualToThreshold", "threshold ≤ 80"),
        ("", "threshold 80"),
    ],
)
def test_threshold_label_names_the_comparison(comparison: str, label: str):
    assert threshold_label(cpu_metrics(comparison=comparison)) == label


@pytest.mark.parametrize(
    ("name", "seconds"),
    [
        # Classic SNS notification: Trigger.EvaluationPeriods x Trigger.Period.
        ("cloudwatch-alarm-sns/lambda-go_cloudwatch-alarm-sns-payload-single-metric.json", 60),
        ("cloudwatch-alarm-sns/rust-test-fixture_sns-envelope_ELB-UnHealthyHostCount_OK.json", 300),
        ("cloudwatch-alarm-sns/rheoceros_sns-lambda_metric-alarm_ALARM.json", 300),
        # EventBridge: one period per datapoint in reasonData.recentDatapoints.
        (
            "cloudwatch-alarm-eventbridge/awsdocs-cw-guide_state-change-for-a-single-metric"
            "-alarm.json",
            300,
        ),
        # Lambda action: reasonData.evaluatedDatapoints, here the previous state's five.
        ("cloudwatch-alarm-lambda-action/rust-runtime_example-cloudwatch-alarm-metric.json", 300),
        (
            "cloudwatch-alarm-lambda-action/powertools-py_cloudWatchAlarmEventSingleMetric"
            "_metricmath.json",
            60,
        ),
    ],
)
def test_evaluation_window_from_real_payloads(name: str, seconds: int):
    body = (FIXTURES / "payloads" / name).read_bytes()
    (alert,) = parse_body(body, datetime.now(UTC)).alerts

    assert evaluation_window(alert) == seconds


def test_evaluation_window_multiplies_the_classic_trigger():
    name = "cloudwatch-alarm-sns/lambda-go_cloudwatch-alarm-sns-payload-single-metric.json"
    envelope = json.loads((FIXTURES / "payloads" / name).read_text())
    sns = envelope["Records"][0]["Sns"]
    doc = json.loads(sns["Message"])
    doc["Trigger"].update(EvaluationPeriods=4, Period=300)
    sns["Message"] = json.dumps(doc)
    (alert,) = parse_body(json.dumps(envelope).encode(), datetime.now(UTC)).alerts

    assert evaluation_window(alert) == 1200


def test_evaluation_window_reads_eventbridge_configuration_and_falls_back_to_a_period():
    name = "cloudwatch-alarm-eventbridge/awsdocs-cw-guide_state-change-for-a-single-metric-alarm"
    doc = json.loads((FIXTURES / "payloads" / f"{name}.json").read_text())
    doc["detail"]["configuration"]["evaluationPeriods"] = 3
    (configured,) = parse_body(json.dumps(doc).encode(), datetime.now(UTC)).alerts
    del doc["detail"]["configuration"]["evaluationPeriods"]
    del doc["detail"]["state"]["reasonData"]
    (bare,) = parse_body(json.dumps(doc).encode(), datetime.now(UTC)).alerts

    assert evaluation_window(configured) == 900
    assert evaluation_window(bare) == 300  # one period of the alarm's metric
