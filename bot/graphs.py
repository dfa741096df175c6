"""The metric graph in the thread of a new CloudWatch-alarm incident.

It runs beside the analysis, never before it: the data is read with GetMetricData and drawn
with matplotlib in a worker thread while Claude works, so a slow or forbidden CloudWatch
delays only the picture. When the metric cannot be read or has no datapoints, the thread
says why in one line instead of showing an empty graph.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from analysis.alarm_metrics import metric_queries, read_alarm_metrics, require_datapoints
from analysis.aws_clients import ClientFactory, describe_error
from analysis.context import ContextLimits
from analysis.gather import ALARM_PARSERS
from analysis.runbooks import alarm_name
from blocks.kit import Message
from blocks.thread import graph_comment, graph_skipped_note
from bot.slack_pacing import Priority
from incidents.models import Alert, Incident

logger = logging.getLogger(__name__)

WIDTH_PX = 1000
HEIGHT_PX = 400
# Reading and drawing together; past this the graph is skipped with a note.
DRAW_TIMEOUT = 20.0


class ThreadFiles(Protocol):
    """What the Slack publisher offers for a graph: an upload and a note in the thread."""

    async def upload_to_thread(
        self, incident_id: str, filename: str, content: bytes | str, *, title: str, comment: str
    ) -> bool: ...

    async def thread_note(
        self, incident_id: str, message: Message, priority: Priority = Priority.CHANGE
    ) -> None: ...


class MetricGraphs:
    def __init__(
        self,
        clients: ClientFactory,
        thread: ThreadFiles,
        *,
        limits: ContextLimits | None = None,
        timeout: float = DRAW_TIMEOUT,
    ) -> None:
        self.clients = clients
        self.thread = thread
        self.limits = limits or ContextLimits()
        self.timeout = timeout

    @staticmethod
    def applies(alert: Alert) -> bool:
        """Only metric alarms have a metric to draw; nothing else costs an AWS call."""
        return alert.parser in ALARM_PARSERS and bool(metric_queries(alert))

    async def post(self, incident: Incident, alert: Alert) -> bool:
        """Draw and upload the graph; True when it reached the thread. Never raises: a
        failure is a note in the thread (and the log)."""
        if not self.applies(alert):
            return False
        try:
            png = await asyncio.wait_for(asyncio.to_thread(self.draw, alert), self.timeout)
        except TimeoutError:
            reason = f"reading and drawing took over {self.timeout:g}s"
        except Exception as exc:  # any failure only costs the picture, which the note explains
            reason = describe_error(exc)
        else:
            if png is None:
                return False
            name = alarm_name(alert)
            return await self.thread.upload_to_thread(
                incident.id,
                f"{incident.id}-metric.png",
                png,
                title=f"{name}: metric around the alarm",
                comment=graph_comment(name),
            )
        logger.info("metric graph of %s skipped: %s", incident.id, reason)
        # Only a picture missing: behind the posts of new incidents in Slack's pace.
        await self.thread.thread_note(incident.id, graph_skipped_note(reason), Priority.NOTE)
        return False

    def draw(self, alert: Alert) -> bytes | None:
        """Blocking: GetMetricData, then matplotlib. None when the alarm names no metric."""
        metrics = read_alarm_metrics(self.clients, alert, self.limits)
        if metrics is None:
            return None
        require_datapoints(metrics)
        # matplotlib costs 0.6 s of CPU to import: paid by the first graph drawn, not by
        # every process start (a console run, a CLI command, each replica), nor by a metric
        # with nothing to draw.
        from analysis.graph import draw_metric_graph

        return draw_metric_graph(metrics, width_px=WIDTH_PX, height_px=HEIGHT_PX)
