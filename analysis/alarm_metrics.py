"""An alarm's metric, read once for both the analysis context and the metric graph.

From any of the three alarm shapes (the classic SNS notification's `Trigger`, the
`configuration.metrics` of the EventBridge event and of the Lambda alarm action), what to ask
GetMetricData for, the threshold and evaluation window, the datapoints around the state change,
and their text rendering for the prompt. One reader, so that the graph and the analysis always
show the same datapoints.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from analysis.aws_clients import ClientFactory, alert_region
from analysis.context import ContextLimits
from incidents.models import Alert
from incidents.times import as_utc
from ingest.parsers.base import as_dict, first

_QUERY_ID = re.compile(r"^[a-z][A-Za-z0-9_]*$")


_STATS = {
    "AVERAGE": "Average",
    "SUM": "Sum",
    "MINIMUM": "Minimum",
    "MAXIMUM": "Maximum",
    "SAMPLE_COUNT": "SampleCount",
    "SAMPLECOUNT": "SampleCount",
}


_METRIC_PAGES = 3


@dataclass(frozen=True)
class MetricQuery:
    """One entry of an alarm's metric definition: a metric with its statistic, or a metric-math
    expression over the entries' ids. `compared` marks what the alarm compares to its threshold
    (its ReturnData), as opposed to the inputs of an expression."""

    id: str
    namespace: str = ""
    metric_name: str = ""
    dimensions: tuple[tuple[str, str], ...] = ()
    stat: str = "Average"
    period: int = 60
    expression: str = ""
    label: str = ""
    compared: bool = True

    def describe(self, period: int) -> str:
        """How the prompt names it: `AWS/EC2 CPUUtilization InstanceId=i-1 (Average, 60s)`."""
        if self.expression:
            return f"{self.label or self.id} = {self.expression} ({period}s)"
        dims = " ".join(f"{name}={value}" for name, value in self.dimensions)
        return " ".join(
            part
            for part in (self.namespace, self.metric_name, dims, f"({self.stat}, {period}s)")
            if part
        )

    def api(self, period: int) -> dict[str, Any]:
        """The GetMetricData query. Every entry returns data, the inputs of an expression too:
        they show which component moved, and they still come back when the math does not."""
        if self.expression:
            return {"Id": self.id, "Expression": self.expression, "ReturnData": True}
        metric: dict[str, Any] = {"Namespace": self.namespace, "MetricName": self.metric_name}
        if self.dimensions:
            metric["Dimensions"] = [{"Name": n, "Value": v} for n, v in self.dimensions]
        return {
            "Id": self.id,
            "MetricStat": {"Metric": metric, "Period": period, "Stat": self.stat},
            "ReturnData": True,
        }


class MetricSeries(BaseModel):
    """The datapoints of one query, oldest first, in UTC: what a graph draws."""

    id: str
    label: str
    compared: bool
    timestamps: list[datetime] = Field(default_factory=list)
    values: list[float] = Field(default_factory=list)


class AlarmMetrics(BaseModel):
    """An alarm's metric data around its state change, kept whole (the rendered section shows
    at most `metric_points` of each series) so that a graph can be drawn from it later."""

    alarm_name: str
    start: datetime
    end: datetime
    changed_at: datetime
    period: int
    threshold: float | None = None
    comparison: str = ""
    series: list[MetricSeries] = Field(default_factory=list)
    evaluation_window_seconds: int = 0
    """How long before `changed_at` the alarm looked at when it changed state (evaluation
    periods × period, see `evaluation_window`); 0 when unknown, which a graph reads as one
    `period`."""


def read_alarm_metrics(
    clients: ClientFactory, alert: Alert, limits: ContextLimits | None = None
) -> AlarmMetrics | None:
    """The alarm's metric data from `limits.metric_before` before its state change to
    `limits.metric_after` after, with its threshold and evaluation window; None when the alert
    names no metric (a composite alarm, or not an alarm at all), without any AWS call.

    One reader for both the analysis context and the metric graph, so that the two show the
    same datapoints. Synchronous (boto3 is): call it in a worker thread. AWS errors propagate
    (botocore's `ClientError`, connection and timeout errors) for the caller to turn into a
    note with `describe_error`."""
    queries = metric_queries(alert)
    if not queries:
        return None
    limits = limits or ContextLimits()
    changed = as_utc(alert.occurred_at)
    start, end = changed - limits.metric_before, changed + limits.metric_after
    alarm_period = _alarm_period(queries)
    period = choose_period(alarm_period, end - start, limits.metric_points)
    client = clients("cloudwatch", alert_region(alert))
    threshold, comparison = alarm_threshold(alert)
    return AlarmMetrics(
        alarm_name=alert.labels.get("alarm_name", alert.title),
        start=start,
        end=end,
        changed_at=changed,
        period=period,
        threshold=threshold,
        comparison=comparison,
        series=fetch_metric_series(client, queries, start, end, period),
        evaluation_window_seconds=evaluation_window(alert, alarm_period),
    )


def metric_queries(alert: Alert) -> list[MetricQuery]:
    """What to ask GetMetricData for, from any of the three alarm shapes: the classic
    notification's `Trigger` (one metric, or `Trigger.Metrics` for metric math), and the
    `configuration.metrics` of the EventBridge event and of the Lambda alarm action. Empty for
    composite alarms and for anything that is not a metric alarm."""
    raw = as_dict(alert.raw)
    if alert.parser == "cloudwatch_alarm":
        trigger = as_dict(raw.get("Trigger"))
        if not trigger.get("MetricName"):
            return _entries(trigger.get("Metrics"))
        stat = (
            trigger.get("ExtendedStatistic")
            if trigger.get("StatisticType") == "ExtendedStatistic"
            else trigger.get("Statistic")
        )
        return [
            MetricQuery(
                id="m1",
                namespace=str(trigger.get("Namespace") or ""),
                metric_name=str(trigger["MetricName"]),
                dimensions=_dimension_pairs(trigger.get("Dimensions")),
                stat=_stat(stat),
                period=_seconds(trigger.get("Period")),
            )
        ]
    if alert.parser == "cloudwatch_alarm_eventbridge":
        return _entries(as_dict(as_dict(raw.get("detail")).get("configuration")).get("metrics"))
    if alert.parser == "cloudwatch_alarm_lambda":
        data = as_dict(raw.get("alarmData"))
        return _entries(as_dict(data.get("configuration")).get("metrics"))
    return []


def alarm_threshold(alert: Alert) -> tuple[float | None, str]:
    """The threshold and comparison operator, where the payload says them: the classic
    notification has both; the other shapes carry the threshold only in the state's
    `reasonData`, and anomaly-detection alarms have none."""
    raw = as_dict(alert.raw)
    if alert.parser == "cloudwatch_alarm":
        trigger = as_dict(raw.get("Trigger"))
        return _number(trigger.get("Threshold")), str(trigger.get("ComparisonOperator") or "")
    detail = as_dict(raw.get("detail") or raw.get("alarmData"))
    reason = _reason_data(as_dict(detail.get("state")).get("reasonData"))
    return _number(reason.get("threshold")), ""


def evaluation_window(alert: Alert, alarm_period: int | None = None) -> int:
    """How many seconds of data the alarm evaluated when it changed state: its evaluation
    periods times its period, where the payload says them.

    - The classic notification: `Trigger.EvaluationPeriods` × `Trigger.Period`.
    - The EventBridge event and the Lambda alarm action: `configuration.evaluationPeriods`
      where given (update and deletion events carry it; state changes do not), else one period
      per datapoint the state's `reasonData` lists as evaluated (`evaluatedDatapoints`, or the
      older `recentDatapoints`), from the new state's reason, else the previous state's.
    - Otherwise one period: what any alarm looks at, at least.

    `alarm_period` is the period of the alarm's metrics (the largest, for metric math), used
    where the payload gives no period of its own; default: read from `metric_queries`."""
    period = alarm_period or _alarm_period(metric_queries(alert))
    raw = as_dict(alert.raw)
    if alert.parser == "cloudwatch_alarm":
        trigger = as_dict(raw.get("Trigger"))
        periods = _number(trigger.get("EvaluationPeriods"))
        own = _number(trigger.get("Period"))
        return int(
            (periods if periods and periods > 0 else 1) * (own if own and own > 0 else period)
        )
    detail = as_dict(raw.get("detail") or raw.get("alarmData"))
    configured = _number(as_dict(detail.get("configuration")).get("evaluationPeriods"))
    if configured and configured > 0:
        return int(configured * period)
    for state in ("state", "previousState"):
        reason = _reason_data(as_dict(detail.get(state)).get("reasonData"))
        points = reason.get("evaluatedDatapoints") or reason.get("recentDatapoints")
        if isinstance(points, list) and points:
            own = _number(reason.get("period"))
            return len(points) * int(own if own and own > 0 else period)
    return period


def choose_period(alarm_period: int, window: timedelta, max_points: int) -> int:
    """The alarm's own period, so the datapoints are the ones it evaluated; coarsened to whole
    minutes only when the window would hold more than twice `max_points` (a 10-second
    high-resolution alarm), so that the rendered newest `max_points` still cover at least half
    of the window."""
    seconds = window.total_seconds()
    period = max(1, alarm_period)
    if seconds / period <= 2 * max_points:
        return period
    return 60 * math.ceil(seconds / (2 * max_points) / 60)


def fetch_metric_series(
    client: Any,
    queries: Sequence[MetricQuery],
    start: datetime,
    end: datetime,
    period: int,
) -> list[MetricSeries]:
    """One GetMetricData request (following at most a few pages), one series per query."""
    found: dict[str, list[tuple[datetime, float]]] = {q.id: [] for q in queries}
    token: str | None = None
    for _ in range(_METRIC_PAGES):
        response = client.get_metric_data(
            MetricDataQueries=[q.api(period) for q in queries],
            StartTime=start,
            EndTime=end,
            ScanBy="TimestampAscending",
            **({"NextToken": token} if token else {}),
        )
        for result in response.get("MetricDataResults", []):
            pairs = zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
            found.setdefault(result["Id"], []).extend((as_utc(t), float(v)) for t, v in pairs)
        token = response.get("NextToken")
        if not token:
            break
    series = []
    for query in queries:
        points = sorted(found[query.id])
        series.append(
            MetricSeries(
                id=query.id,
                label=query.describe(period),
                compared=query.compared,
                timestamps=[t for t, _ in points],
                values=[v for _, v in points],
            )
        )
    return series


class NoDatapointsError(Exception):
    """No series holds a single finite datapoint: there is nothing to draw, so the caller
    posts a note instead (moto's metric math, a metric that stopped reporting, a missing
    permission answered with an empty result)."""


def require_datapoints(metrics: AlarmMetrics) -> None:
    """Raise `NoDatapointsError` unless some series has a finite value to draw."""
    if not any(math.isfinite(v) for series in metrics.series for v in series.values):
        raise NoDatapointsError(
            f"no datapoints for {metrics.alarm_name} between {as_utc(metrics.start):%H:%M} and "
            f"{as_utc(metrics.end):%H:%M} UTC"
        )


def render_metrics(metrics: AlarmMetrics, max_points: int) -> str:
    """One line per series, newest `max_points` points, the threshold after the series the
    alarm compares: `AWS/EC2 CPUUtilization InstanceId=i-1 (Average, 60s): 07:01 41.2, ...`."""
    threshold = ""
    if metrics.threshold is not None:
        threshold = f" | threshold {_format(metrics.threshold)} {metrics.comparison}".rstrip()
    lines = [
        f"window {metrics.start:%Y-%m-%d %H:%M}-{metrics.end:%H:%M} UTC, "
        f"state change at {metrics.changed_at:%H:%M:%S}"
    ]
    for series in metrics.series:
        points = list(zip(series.timestamps, series.values, strict=True))
        shown = ", ".join(f"{t:%H:%M} {_format(v)}" for t, v in points[-max_points:])
        cut = "… " if len(points) > max_points else ""
        body = f"{cut}{shown}" if points else "no datapoints"
        lines.append(f"{series.label}: {body}{threshold if series.compared else ''}")
    return "\n".join(lines)


def _entries(metrics: Any) -> list[MetricQuery]:
    """The `Metrics` / `metrics` list of a metric-math or EventBridge/Lambda alarm. Entries
    whose id GetMetricData would refuse (EventBridge uses UUIDs for a lone metric) are renamed;
    no expression can refer to such an id anyway."""
    if not isinstance(metrics, list):
        return []
    queries = []
    for index, entry in enumerate(m for m in metrics[:10] if isinstance(m, dict)):
        given = str(first(entry, "Id", "id") or "")
        query_id = given if _QUERY_ID.match(given) else f"q{index}"
        returns = first(entry, "ReturnData", "returnData")
        compared = returns is not False
        label = str(first(entry, "Label", "label") or "")
        expression = first(entry, "Expression", "expression")
        if expression:
            queries.append(
                MetricQuery(id=query_id, expression=str(expression), label=label, compared=compared)
            )
            continue
        stat = as_dict(first(entry, "MetricStat", "metricStat"))
        metric = as_dict(first(stat, "Metric", "metric"))
        name = first(metric, "MetricName", "name")
        if not name:
            continue
        queries.append(
            MetricQuery(
                id=query_id,
                namespace=str(first(metric, "Namespace", "namespace") or ""),
                metric_name=str(name),
                dimensions=_dimension_pairs(first(metric, "Dimensions", "dimensions")),
                stat=_stat(first(stat, "Stat", "stat")),
                period=_seconds(first(stat, "Period", "period")),
                label=label,
                compared=compared,
            )
        )
    return queries


def _alarm_period(queries: Sequence[MetricQuery]) -> int:
    """The period the alarm evaluates at: its metrics' (the largest, for metric math)."""
    return max((q.period for q in queries if not q.expression), default=60)


def _reason_data(value: Any) -> dict[str, Any]:
    """A state's `reasonData`: a JSON document inside a string, or nothing usable."""
    try:
        parsed = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        return {}
    return as_dict(parsed)


def _dimension_pairs(dims: Any) -> tuple[tuple[str, str], ...]:
    """Dimensions as the classic notification lists them (`[{"name", "value"}]`) or as the
    EventBridge and Lambda shapes map them (`{"InstanceId": "i-1"}`)."""
    if isinstance(dims, dict):
        return tuple((str(k), str(v)) for k, v in dims.items())
    if isinstance(dims, list):
        return tuple(
            (str(first(d, "name", "Name")), str(first(d, "value", "Value")))
            for d in dims
            if isinstance(d, dict) and first(d, "name", "Name")
        )
    return ()


def _stat(value: Any) -> str:
    """The API's spelling of a statistic: the classic notification writes `AVERAGE`."""
    text = str(value or "").strip()
    return _STATS.get(text.upper(), text) or "Average"


def _seconds(value: Any) -> int:
    number = _number(value)
    return int(number) if number and number > 0 else 60


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value)) if value is not None else None
    except ValueError:
        return None


def _format(value: float) -> str:
    """Short, and without exponents for the byte and request counts metrics often hold."""
    if abs(value) >= 1e4:
        return f"{value:.0f}"
    return f"{value:.4g}"
