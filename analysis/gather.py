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
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from analysis.alarm_metrics import AlarmMetrics, metric_queries, read_alarm_metrics, render_metrics
from analysis.aws_clients import (
    BotoClients,
    ClientFactory,
    alert_region,
    describe_error,
    own_log_group,
)
from analysis.context import SECTION_CHARS, AnalysisContext, ContextLimits, ContextSection
from analysis.lessons import lessons_from, lessons_text
from analysis.models import PastLesson, RelatedIncident
from analysis.related import outcome, rank_related
from incidents.models import Alert, Incident, TimelineEvent
from incidents.store import IncidentStore
from incidents.times import as_utc
from ingest.parsers.base import as_dict

log = logging.getLogger(__name__)


ALARM_PARSERS = ("cloudwatch_alarm", "cloudwatch_alarm_eventbridge", "cloudwatch_alarm_lambda")
OWN_LINE = "▶ "
OTHER_LINE = "  "
_NOTE_CHARS = 240
_LOG_LINE_CHARS = 300


class GatheredContext(AnalysisContext):
    """The analysis context plus the raw metric data behind its `metric` section."""

    alarm_metrics: AlarmMetrics | None = None


@dataclass(frozen=True)
class _Found:
    section: ContextSection
    related: tuple[RelatedIncident, ...] = ()
    lessons: tuple[PastLesson, ...] = ()
    alarm_metrics: AlarmMetrics | None = None


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
        group = own_log_group(alert)
        if group:
            jobs.append(("log lines", lambda: self._logs(alert, group)))
        jobs.append(("timeline", lambda: self._timeline(incident)))
        jobs.append(("related incidents", lambda: self._related(incident)))
        results = await asyncio.gather(*(self._bounded(what, job) for what, job in jobs))
        context = GatheredContext()
        for result in results:
            if isinstance(result, str):
                context.notes.append(result)
                continue
            context.sections.append(result.section)
            context.related.extend(result.related)
            context.lessons.extend(result.lessons)
            context.alarm_metrics = result.alarm_metrics or context.alarm_metrics
        if context.lessons:
            text = lessons_text(context.lessons, incident.last_seen_at)
            context.sections.append(_section("confirmed_causes", text, self.limits))
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
        changed = as_utc(alert.occurred_at)
        client = self.clients("cloudwatch", alert_region(alert))
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
            f"{as_utc(item['Timestamp']):%m-%d %H:%M:%S} {item.get('HistorySummary', '')}"
            + _history_reason(item.get("HistoryData"))
            for item in reversed(items)
        ]
        hours = self.limits.history_lookback.total_seconds() / 3600
        text = "\n".join(lines) or f"no state changes in the {hours:g}h before"
        return _Found(_section("alarm_history", text, self.limits))

    def _logs(self, alert: Alert, group: str) -> _Found:
        stream = alert.labels.get("log_stream")
        event = as_dict(as_dict(alert.raw).get("logEvent"))
        stamp = event.get("timestamp")
        at_ms = (
            int(stamp)
            if isinstance(stamp, int | float) and not isinstance(stamp, bool)
            else int(as_utc(alert.occurred_at).timestamp() * 1000)
        )
        client = self.clients("logs", alert_region(alert))
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
        opened = as_utc(incident.opened_at)
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
        """The most similar past incidents with how each ended; and, from further down the
        same ranking, what the team confirmed about the nearest ones (analysis/lessons.py),
        in a section of its own so that Claude reads it as hypotheses to check."""
        candidates = rank_related(
            incident, self.store.list_incidents(limit=self.limits.related_scan)
        )
        # A reopened incident's own confirmation comes first: a reopen is the commonest way
        # a problem comes back.
        own = [(incident, "same alert")] if incident.confirmed else []
        lessons = tuple(lessons_from([*own, *candidates]))
        ranked = candidates[: self.limits.related]
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
            f"{r.incident_id} [{r.status}] opened {as_utc(past.opened_at):%Y-%m-%d %H:%M} "
            f"({why}): {r.title} — {r.outcome}"
            for r, (past, why) in zip(related, ranked, strict=True)
        ]
        text = "\n".join(lines) or "no similar past incidents"
        return _Found(_section("related", text, self.limits), related=related, lessons=lessons)


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
    moment = as_utc(at)
    return f"{moment:%H:%M:%S}" if moment.date() == day.date() else f"{moment:%m-%d %H:%M:%S}"


def _section(name: str, text: str, limits: ContextLimits) -> ContextSection:
    """The section, cut at a line boundary to fit both `limits` and the model's own cap."""
    cap = min(limits.section_chars, SECTION_CHARS)
    if len(text) > cap:
        marker = "\n… (cut)"
        head = text[: cap - len(marker)]
        text = (head[: head.rfind("\n")] if "\n" in head else head) + marker
    return ContextSection(name=name, text=text)
