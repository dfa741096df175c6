"""The metric graph from moto's GetMetricData over a real socket: a real CloudWatch alarm
payload through the real parser, `read_alarm_metrics` through a real boto3 client (the same
`BotoClients` factory the bot uses, pointed at moto by AWS_ENDPOINT_URL), then the PNG.

moto has no GetMetricWidgetImage, which is why the graph is drawn by us; and its metric math
returns nothing, so a math alarm's graph shows its inputs only, as a real account does when
the expression errors.
"""

from __future__ import annotations

import copy
import io
import socket
import struct
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from PIL import Image
from slack_sdk.web.async_client import AsyncWebClient

from analysis.alarm_metrics import NoDatapointsError, read_alarm_metrics
from analysis.aws_clients import BotoClients, describe_error
from analysis.context import ContextLimits
from analysis.gather import ContextGatherer
from analysis.graph import COMPARED_COLOURS, THRESHOLD_COLOUR, draw_metric_graph
from bot.graphs import MetricGraphs
from bot.settings import Settings
from bot.slack_publisher import SlackPublisher
from incidents.leases import Leases
from incidents.lifecycle import IncidentService
from incidents.sqlite import SqliteStore
from tests.alarms import (
    ALARM,
    CHANGE,
    DIMS,
    EB_MATH,
    INSTANCE,
    classic_alarm,
    fixture,
    parse_one,
    put_cpu,
)
from tests.conftest import ManualClock
from tests.fakes.moto_server import ACCOUNT, REGION, aws, boto3_env, moto_server  # noqa: F401
from tests.fakes.slack_emulator import SlackEmulator

pytestmark = pytest.mark.integration


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def colours(png: bytes) -> set[tuple[int, ...]]:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return {c for _, c in image.getcolors(maxcolors=1 << 20) or [] if isinstance(c, tuple)}


def rgb(hex_colour: str) -> tuple[int, int, int]:
    value = int(hex_colour.lstrip("#"), 16)
    return value >> 16, (value >> 8) & 0xFF, value & 0xFF


@pytest.mark.usefixtures("aws")
def test_graph_of_a_classic_alarm_from_moto_is_a_real_png_of_the_right_size():
    values = put_cpu()
    alert = classic_alarm(evaluation_periods=3)

    metrics = read_alarm_metrics(BotoClients(), alert, ContextLimits())

    assert metrics is not None
    assert metrics.alarm_name == ALARM
    assert (metrics.threshold, metrics.comparison) == (80.0, "GreaterThanThreshold")
    assert metrics.evaluation_window_seconds == 180  # 3 periods of 60 s
    assert metrics.changed_at == CHANGE
    (series,) = metrics.series
    in_window = {t: v for t, v in values.items() if t >= CHANGE - timedelta(minutes=60)}
    assert dict(zip(series.timestamps, series.values, strict=True)) == in_window
    assert len(series.values) == 66

    png = draw_metric_graph(metrics, width_px=1000, height_px=400)

    assert png_size(png) == (1000, 400)
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size) == ("PNG", (1000, 400))
    image.verify()
    drawn = colours(png)
    assert rgb(COMPARED_COLOURS[0]) in drawn  # the series' line
    assert rgb(THRESHOLD_COLOUR) in drawn  # the threshold's
    assert png_size(draw_metric_graph(metrics, width_px=800, height_px=300)) == (800, 300)


@pytest.mark.usefixtures("aws")
async def test_graph_and_analysis_read_the_same_datapoints(store: SqliteStore, clock: ManualClock):
    put_cpu()
    alert = classic_alarm()
    incident = IncidentService(store, clock=clock).record(alert).incident
    assert incident is not None

    context = await ContextGatherer(store).gather(incident, alert)
    for_graph = read_alarm_metrics(BotoClients(), alert)

    assert context.alarm_metrics is not None
    assert for_graph == context.alarm_metrics


@pytest.mark.usefixtures("aws")
def test_metric_math_alarm_graph_shows_its_inputs_when_the_expression_is_empty():
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
                {"MetricName": name, "Dimensions": DIMS, "Timestamp": t, "Value": value}
                for t in (CHANGE - timedelta(minutes=m) for m in range(0, 30, 5))
            ],
        )

    metrics = read_alarm_metrics(BotoClients(), parse_one(doc))

    assert metrics is not None
    assert metrics.threshold == 10000.0
    assert metrics.evaluation_window_seconds == 300  # one of reasonData's recentDatapoints
    expression, network_in, network_out = metrics.series
    assert (expression.compared, expression.values) == (True, [])  # moto's metric-math gap
    assert network_in.values == [1000.0] * 6
    assert network_out.values == [45628.0] * 6
    assert png_size(draw_metric_graph(metrics)) == (1000, 400)


@pytest.mark.usefixtures("aws")
def test_a_metric_with_no_datapoints_skips_the_graph_with_a_clear_error():
    metrics = read_alarm_metrics(BotoClients(), classic_alarm())  # nothing put in moto

    assert metrics is not None
    assert metrics.series[0].values == []
    with pytest.raises(NoDatapointsError, match=f"no datapoints for {ALARM}"):
        draw_metric_graph(metrics)


def test_an_unreachable_cloudwatch_raises_for_the_caller_to_note(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    with socket.socket() as probe:  # a port nothing listens on: refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name, value in boto3_env(f"http://127.0.0.1:{port}", tmp_path / "none").items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)

    with pytest.raises(EndpointConnectionError) as raised:
        read_alarm_metrics(BotoClients(max_attempts=1), classic_alarm())
    assert describe_error(raised.value).startswith("EndpointConnectionError: ")


def test_an_alert_without_a_metric_makes_no_aws_call():
    composite = parse_one(
        fixture(
            "cloudwatch-alarm-sns/rheoceros_sns-lambda_composite-alarm_ALARM_TriggeringChildren.json"
        )
    )

    def no_aws(service: str, region: str | None) -> Any:
        raise AssertionError(f"asked for {service} in {region}")

    assert read_alarm_metrics(no_aws, composite) is None


async def test_the_bot_posts_the_graph_in_the_thread_and_survives_a_refused_upload(
    aws: str,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
):
    put_cpu()
    alert = classic_alarm()
    store = SqliteStore(tmp_path / "graph.db")
    service = IncidentService(store)
    async with SlackEmulator(channels=("C1",)) as emulator:
        settings = Settings(slack_bot_token="xoxb-test", slack_app_token="xapp-test",
                            slack_api_url=emulator.api_url, slack_channel="C1")  # fmt: skip
        client = AsyncWebClient(token="xoxb-test", base_url=emulator.api_url)
        publisher = SlackPublisher(
            client, service, settings, Leases(store, timedelta(seconds=30)), store=store
        )
        graphs = MetricGraphs(BotoClients(), publisher)
        incident = service.record(alert).incident
        assert incident is not None
        await publisher.sync(incident.id)

        assert await graphs.post(incident, alert) is True
        [upload] = emulator.files
        assert png_size(upload.content or b"") == (1000, 400)

        emulator.fail_next("files.completeUploadExternal", error="not_in_channel")
        assert await graphs.post(incident, alert) is False
        emulator.set_down()
        assert await graphs.post(incident, alert) is False
    assert len(emulator.files) == 1
    assert "not uploaded: not_in_channel" in caplog.text
    store.close()
