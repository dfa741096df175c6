"""Gathering the evidence an analysis gets beside the alert.

For a CloudWatch alarm: the metric's datapoints around the state change (GetMetricData) and
the alarm's recent state history (DescribeAlarmHistory). For a CloudWatch Logs alert: the log
lines around the event (FilterLogEvents). For every incident: its timeline, and up to three
similar past incidents with how they ended.

Every gatherer is bounded: in time by `timeout` (each runs in a worker thread under
`asyncio.wait_for`, since boto3 is synchronous), and in size by `ContextLimits`. They run
concurrently, and a gatherer that times out or fails becomes a one-line note on the context
("metric datapoints unavailable: AccessDenied: ..."): a missing permission or a slow AWS API
makes the analysis poorer, never late or absent. Alerts that did not come from AWS cause no
AWS call at all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from analysis.context import SECTION_CHARS, AnalysisContext, ContextSection
from analysis.models import RelatedIncident
from incidents.lifecycle import short_duration
from incidents.models import Alert, Incident, IncidentStatus, TimelineEvent, TimelineKind
from incidents.store import IncidentStore
from ingest.parsers.base import as_dict, first

log = logging.getLogger(__name__)

ClientFactory = Callable[[str, str | None], Any]
"""`(service, region) -> boto3 client`; region None: the factory's default region."""

ALARM_PARSERS = ("cloudwatch_alarm", "cloudwatch_alarm_eventbridge", "cloudwatch_alarm_lambda")
LOGS_PARSER = "cloudwatch_logs"
# Titles whose word sets overlap at least this much (Jaccard) are "the same kind of problem":
# "High CPU on web-1" and "High CPU on web-2" match, "High CPU" and "Disk full" do not.
SIMILAR_TITLE = 0.5
OWN_LINE = "▶ "
OTHER_LINE = "  "
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_QUERY_ID = re.compile(r"^[a-z][A-Za-z0-9_]*$")
_WORD = re.compile(r"[a-z0-9]+")
_HTML_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_STATS = {
    "AVERAGE": "Average",
    "SUM": "Sum",
    "MINIMUM": "Minimum",
    "MAXIMUM": "Maximum",
    "SAMPLE_COUNT": "SampleCount",
    "SAMPLECOUNT": "SampleCount",
}
_METRIC_PAGES = 3
_NOTE_CHARS = 240
_LOG_LINE_CHARS = 300


@dataclass(frozen=True)
class ContextLimits:
    """How far around the alert each gatherer looks, and how much it may bring back."""

    metric_before: timedelta = timedelta(minutes=60)
    metric_after: timedelta = timedelta(minutes=10)
    metric_points: int = 60
    history_lookback: timedelta = timedelta(hours=24)
    history_items: int = 10
    logs_before: timedelta = timedelta(minutes=2)
    logs_after: timedelta = timedelta(minutes=1)
    log_events: int = 50
    log_pages: int = 5
    timeline_events: int = 40
    related: int = 3
    related_scan: int = 200
    section_chars: int = SECTION_CHARS


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


class GatheredContext(AnalysisContext):
    """The analysis context plus the raw metric data behind its `metric` section."""

    alarm_metrics: AlarmMetrics | None = None


@dataclass(frozen=True)
class _Found:
    section: ContextSection
    related: tuple[RelatedIncident, ...] = ()
    alarm_metrics: AlarmMetrics | None = None


class BotoClients:
    """A `ClientFactory` over one boto3 Session, creating each client on first use (never at
    import, and only for alerts that need AWS) and reusing it, since creating one costs tens of
    milliseconds. A client asked for no region gets `region`: the bot passes `AWS_REGION` (or
    `AWS_DEFAULT_REGION`) here, since botocore does not read `AWS_REGION`; None leaves botocore
    to its own default. Endpoint and credentials come from the environment as boto3 reads them
    (`AWS_ENDPOINT_URL` included); a Session is not thread-safe, so creation is serialized."""

    def __init__(
        self,
        session: Any | None = None,
        *,
        region: str | None = None,
        connect_timeout: float = 2.0,
        read_timeout: float = 3.0,
        max_attempts: int = 3,
    ) -> None:
        self._session = session
        self._region = region
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_attempts = max_attempts
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str, region: str | None) -> Any:
        region = region or self._region
        with self._lock:
            client = self._clients.get((service, region))
            if client is None:
                # Imported here: boto3 is needed only once an AWS alert asks for context.
                import boto3
                from botocore.config import Config

                if self._session is None:
                    self._session = boto3.Session()
                client = self._session.client(
                    service,
                    region_name=region,
                    config=Config(
                        retries={"mode": "standard", "max_attempts": self._max_attempts},
                        connect_timeout=self._connect_timeout,
                        read_timeout=self._read_timeout,
                    ),
                )
                self._clients[(service, region)] = client
            return client


class ContextGatherer:
    """Collects the context of one alert of one incident; see the module docstring."""

    def __init__(
        self,
        store: IncidentStore,
        clients: ClientFactory | None = None,
        *,
        timeout: float = 3.0,
        limits: ContextLimits | None = None,
    ) -> None:
        self.store = store
        self.clients: ClientFactory = clients or BotoClients(read_timeout=timeout)
        self.timeout = timeout
        self.limits = limits or ContextLimits()

    async def gather(self, incident: Incident, alert: Alert) -> GatheredContext:
        """Every applicable gatherer, concurrently; never raises for a failing one."""
        jobs: list[tuple[str, Callable[[], _Found]]] = []
        if alert.parser in ALARM_PARSERS:
            if metric_queries(alert):
                jobs.append(("metric datapoints", lambda: self._metric(alert)))
            if alert.labels.get("alarm_name"):
                jobs.append(("alarm history", lambda: self._alarm_history(alert)))
        if alert.parser == LOGS_PARSER and (alert.labels.get("log_group") or alert.resource):
            jobs.append(("log lines", lambda: self._logs(alert)))
        jobs.append(("timeline", lambda: self._timeline(incident)))
        jobs.append(("related incidents", lambda: self._related(incident)))
        outcomes = await asyncio.gather(*(self._bounded(what, job) for what, job in jobs))
        context = GatheredContext()
        for outcome in outcomes:
            if isinstance(outcome, str):
                context.notes.append(outcome)
                continue
            context.sections.append(outcome.section)
            context.related.extend(outcome.related)
            context.alarm_metrics = outcome.alarm_metrics or context.alarm_metrics
        return context

    async def _bounded(self, what: str, job: Callable[[], _Found]) -> _Found | str:
        """The job's result, or the note that replaces it. A timed-out job's thread is left to
        finish on its own (threads cannot be cancelled); the client's own connect and read
        timeouts bound how long it lingers."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(job), self.timeout)
        except TimeoutError:
            reason = f"timed out after {self.timeout:g}s"
        except Exception as exc:  # any failure of one gatherer only degrades the context
            reason = describe_error(exc)
            if not type(exc).__module__.startswith("botocore"):
                log.warning("context gatherer %r failed", what, exc_info=exc)
        note = f"{what} unavailable: {reason}"[:_NOTE_CHARS]
        log.info("context: %s", note)
        return note

    def _metric(self, alert: Alert) -> _Found:
        metrics = read_alarm_metrics(self.clients, alert, self.limits)
        if metrics is None:  # gather() only asks for alerts with metric queries
            raise ValueError("the alarm names no metric")
        text = render_metrics(metrics, self.limits.metric_points)
        return _Found(_section("metric", text, self.limits), alarm_metrics=metrics)

    def _alarm_history(self, alert: Alert) -> _Found:
        changed = _utc(alert.occurred_at)
        client = self.clients("cloudwatch", _region(alert))
        response = client.describe_alarm_history(
            AlarmName=alert.labels["alarm_name"],
            AlarmTypes=["MetricAlarm", "CompositeAlarm"],
            HistoryItemType="StateUpdate",
            StartDate=changed - self.limits.history_lookback,
            # As far past the change as the metric window, so the change itself is included.
            EndDate=changed + self.limits.metric_after,
            MaxRecords=self.limits.history_items,
            ScanBy="TimestampDescending",
        )
        items = list(response.get("AlarmHistoryItems", []))[: self.limits.history_items]
        lines = [
            f"{_utc(item['Timestamp']):%m-%d %H:%M:%S} {item.get('HistorySummary', '')}"
            + _history_reason(item.get("HistoryData"))
            for item in reversed(items)
        ]
        hours = self.limits.history_lookback.total_seconds() / 3600
        text = "\n".join(lines) or f"no state changes in the {hours:g}h before"
        return _Found(_section("alarm_history", text, self.limits))

    def _logs(self, alert: Alert) -> _Found:
        group = alert.labels.get("log_group") or alert.resource or ""
        stream = alert.labels.get("log_stream")
        event = as_dict(as_dict(alert.raw).get("logEvent"))
        stamp = event.get("timestamp")
        at_ms = (
            int(stamp)
            if isinstance(stamp, int | float) and not isinstance(stamp, bool)
            else int(_utc(alert.occurred_at).timestamp() * 1000)
        )
        client = self.clients("logs", _region(alert))
        scope: dict[str, Any] = {"logGroupName": group}
        if stream:
            scope["logStreamNames"] = [stream]
        limit = self.limits.log_events
        before: deque[dict[str, Any]] = deque(maxlen=limit)
        start_ms = at_ms - int(self.limits.logs_before.total_seconds() * 1000)
        end_ms = at_ms + int(self.limits.logs_after.total_seconds() * 1000)
        token: str | None = None
        seen = 0
        # The API returns oldest first, so the lines nearest before the event are the last
        # ones: page through (a bounded number of pages) keeping only the newest `limit`.
        for _ in range(self.limits.log_pages):
            page = client.filter_log_events(
                **scope,
                startTime=start_ms,
                endTime=at_ms - 1,
                limit=limit,
                **({"nextToken": token} if token else {}),
            )
            events = page.get("events", [])
            seen += len(events)
            before.extend(events)
            token = page.get("nextToken")
            if not token:
                break
        # Oldest first again: the first page after the event holds the nearest lines.
        page = client.filter_log_events(**scope, startTime=at_ms, endTime=end_ms, limit=limit)
        after = page.get("events", [])
        take_after = min(len(after), max(limit - len(before), limit // 2))
        take_before = min(len(before), limit - take_after)
        shown = [*list(before)[len(before) - take_before :], *after[:take_after]]
        owns = [_is_own_line(e, event, at_ms) for e in shown]
        lines = [
            _log_line(e, own, show_stream=not stream) for e, own in zip(shown, owns, strict=True)
        ]
        header = (
            f"{group}{'/' + stream if stream else ''} "
            f"{_ms_clock(start_ms)}-{_ms_clock(end_ms)} UTC, {len(shown)} lines"
        )
        if token or seen > take_before:
            header += ", older lines omitted"
        if not any(owns):
            header += "; the alert's own line was not found"
        return _Found(_section("logs", "\n".join([header, *lines]), self.limits))

    def _timeline(self, incident: Incident) -> _Found:
        events = self.store.timeline(incident.id)
        limit = self.limits.timeline_events
        opened = _utc(incident.opened_at)
        header = (
            f"{incident.id} {incident.status.value}, {incident.occurrences} alert(s), opened "
            f"{opened:%Y-%m-%d %H:%M:%S} UTC, last seen {_clock(incident.last_seen_at, opened)}"
        )
        lines = [_timeline_line(e, opened) for e in events]
        if len(lines) > limit:
            omitted = len(lines) - limit
            lines = [
                *lines[: limit // 2],
                f"… {omitted} events omitted …",
                *lines[len(lines) - (limit - limit // 2) :],
            ]
        return _Found(_section("timeline", "\n".join([header, *lines]), self.limits))

    def _related(self, incident: Incident) -> _Found:
        ranked = rank_related(incident, self.store.list_incidents(limit=self.limits.related_scan))[
            : self.limits.related
        ]
        related = tuple(
            RelatedIncident(
                incident_id=past.id,
                title=past.title,
                status=past.status.value,
                outcome=outcome(past, self.store.timeline(past.id)),
            )
            for past, _ in ranked
        )
        lines = [
            f"{r.incident_id} [{r.status}] opened {_utc(past.opened_at):%Y-%m-%d %H:%M} "
            f"({why}): {r.title} — {r.outcome}"
            for r, (past, why) in zip(related, ranked, strict=True)
        ]
        text = "\n".join(lines) or "no similar past incidents"
        return _Found(_section("related", text, self.limits), related=related)


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
    changed = _utc(alert.occurred_at)
    start, end = changed - limits.metric_before, changed + limits.metric_after
    alarm_period = _alarm_period(queries)
    period = choose_period(alarm_period, end - start, limits.metric_points)
    client = clients("cloudwatch", _region(alert))
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
            found.setdefault(result["Id"], []).extend((_utc(t), float(v)) for t, v in pairs)
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
            f"no datapoints for {metrics.alarm_name} between {_utc(metrics.start):%H:%M} and "
            f"{_utc(metrics.end):%H:%M} UTC"
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


def title_words(title: str) -> frozenset[str]:
    """The words of a title without the ones holding digits (ids, counts, times), which vary
    between occurrences of one kind of problem."""
    return frozenset(
        word for word in _WORD.findall(title.lower()) if len(word) > 1 and not _has_digit(word)
    )


def similarity(a: str, b: str) -> float:
    """Jaccard overlap of the two titles' `title_words`."""
    left, right = title_words(a), title_words(b)
    if not left or not right:
        return 0.0
    return len(left & right) / len(left | right)


def rank_related(incident: Incident, candidates: Iterable[Incident]) -> list[tuple[Incident, str]]:
    """Earlier incidents of the same fingerprint (newest first), then earlier incidents of the
    same source whose title is similar (most similar first, then newest), each with why it
    was picked."""
    opened = _utc(incident.opened_at)
    earlier = [c for c in candidates if c.id != incident.id and _utc(c.opened_at) <= opened]
    earlier.sort(key=lambda c: c.opened_at, reverse=True)
    same = [(c, "same alert") for c in earlier if c.fingerprint == incident.fingerprint]
    scored = [
        (similarity(incident.title, c.title), c)
        for c in earlier
        if c.fingerprint != incident.fingerprint and c.source == incident.source
    ]
    alike = sorted(
        ((score, c) for score, c in scored if score >= SIMILAR_TITLE),
        key=lambda pair: pair[0],
        reverse=True,
    )
    return [*same, *((c, f"similar title {score:.2f}") for score, c in alike)]


def outcome(incident: Incident, events: Sequence[TimelineEvent]) -> str:
    """How an incident ended, or where it stands: `resolved by alert:cloudwatch after 12m`,
    `acknowledged by U123, still open`. The timeline names who acted; the incident's own
    fields stand in when its timeline lacks the event."""
    opened = _utc(incident.opened_at)
    if incident.status is IncidentStatus.RESOLVED:
        event = _last(events, TimelineKind.RESOLVED)
        actor = event.actor if event else incident.resolved_by or "unknown"
        at = event.at if event else incident.resolved_at
        text = f"resolved by {actor}" + (
            f" after {short_duration(_utc(at) - opened)}" if at else ""
        )
    elif incident.status is IncidentStatus.ACKNOWLEDGED:
        event = _last(events, TimelineKind.ACKNOWLEDGED)
        actor = event.actor if event else incident.acknowledged_by or "unknown"
        text = f"acknowledged by {actor}, still open"
    else:
        text = "unacknowledged, still open"
    extras = [
        f"{incident.occurrences} alerts" if incident.occurrences > 1 else "",
        f"reopened {incident.reopen_count}x" if incident.reopen_count else "",
        "flapping" if incident.flapping else "",
    ]
    shown = ", ".join(e for e in extras if e)
    return f"{text} ({shown})" if shown else text


def describe_error(exc: BaseException) -> str:
    """One line naming what went wrong: the AWS error code and message of a ClientError
    (`AccessDenied: User ... is not authorized`), else the exception's type and text."""
    response = getattr(exc, "response", None)
    error = as_dict(as_dict(response).get("Error"))
    if error.get("Code"):
        code, message = str(error["Code"]), str(error.get("Message") or "")
        title = _HTML_TITLE.search(message)
        if title or message.lstrip().startswith("<"):
            message = title.group(1) if title else "(HTML error page)"
        text = message if message.startswith(code) else f"{code}: {message}".rstrip(": ")
    else:
        text = f"{type(exc).__name__}: {exc}".rstrip(": ")
    return " ".join(text.split())


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


def _region(alert: Alert) -> str | None:
    """The alert's own region when it names a real one (the classic notification may carry
    `US East (N. Virginia)`); None leaves the client factory to the bot's configured region."""
    region = alert.labels.get("region", "")
    return region if _REGION.match(region) else None


def _history_reason(data: Any) -> str:
    try:
        parsed = json.loads(data) if isinstance(data, str) else None
    except ValueError:
        return ""
    reason = as_dict(as_dict(parsed).get("newState")).get("stateReason")
    return f": {' '.join(str(reason).split())[:200]}" if reason else ""


def _is_own_line(found: dict[str, Any], event: dict[str, Any], at_ms: int) -> bool:
    """The alert's own event: the same id where the subscription kept it, else the same time
    and message (a local or replayed delivery may carry other ids)."""
    if event.get("id") and found.get("eventId") == event.get("id"):
        return True
    return (
        found.get("timestamp") == at_ms
        and str(found.get("message", "")).strip() == str(event.get("message", "")).strip()
    )


def _log_line(found: dict[str, Any], own: bool, *, show_stream: bool) -> str:
    message = " ⏎ ".join(
        line.strip() for line in str(found.get("message", "")).splitlines() if line.strip()
    )
    stream = f"[{found.get('logStreamName', '')}] " if show_stream else ""
    stamp = found.get("timestamp")
    clock = _ms_clock(int(stamp)) if isinstance(stamp, int) else "?"
    return f"{OWN_LINE if own else OTHER_LINE}{clock} {stream}{message[:_LOG_LINE_CHARS]}"


def _ms_clock(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return f"{moment:%H:%M:%S}.{moment.microsecond // 1000:03d}"


def _timeline_line(event: TimelineEvent, day: datetime) -> str:
    detail = f" — {event.detail}" if event.detail else ""
    return f"{_clock(event.at, day)} {event.kind.value} by {event.actor}{detail}"


def _clock(at: datetime, day: datetime) -> str:
    """The time of day, with the date only when it differs from `day`'s."""
    moment = _utc(at)
    return f"{moment:%H:%M:%S}" if moment.date() == day.date() else f"{moment:%m-%d %H:%M:%S}"


def _last(events: Sequence[TimelineEvent], kind: TimelineKind) -> TimelineEvent | None:
    return next((e for e in reversed(events) if e.kind is kind), None)


def _has_digit(word: str) -> bool:
    return any(ch.isdigit() for ch in word)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _section(name: str, text: str, limits: ContextLimits) -> ContextSection:
    """The section, cut at a line boundary to fit both `limits` and the model's own cap."""
    cap = min(limits.section_chars, SECTION_CHARS)
    if len(text) > cap:
        marker = "\n… (cut)"
        head = text[: cap - len(marker)]
        text = (head[: head.rfind("\n")] if "\n" in head else head) + marker
    return ContextSection(name=name, text=text)
