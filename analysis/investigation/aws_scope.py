"""What every built-in AWS tool shares: the incident's scope, and its time window.

Arguments are read strictly (`analysis/investigation/arguments.py`, shared with the tools that
are not AWS's). Time windows are anchored at the alert's time, never at "now", and capped, so
that a tool cannot be talked into scanning days of logs.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from analysis.alarm_metrics import MetricQuery, metric_queries
from analysis.aws_clients import ClientFactory, alert_region, describe_error, own_log_group
from analysis.investigation.arguments import integer, known_arguments
from analysis.investigation.registry import Tool
from incidents.models import Alert
from incidents.times import as_utc

T = TypeVar("T")

MAX_LOG_GROUPS = 10
MAX_MINUTES = 7 * 24 * 60  # each side of a window; their sum is then held to the cap


class AwsError(Exception):
    """An AWS call of a tool failed; the message is `describe_error`'s one line
    (`ResourceNotFoundException: The specified log group does not exist.`)."""


@dataclass(frozen=True)
class AwsToolLimits:
    """What the AWS tools may read beyond the alert's own resources (settings
    `INVESTIGATION_LOG_GROUPS` and `INVESTIGATION_MAX_WINDOW`)."""

    log_groups: Sequence[str] = ()
    """Log groups readable besides the alert's own: exact names, or `prefix*`."""
    max_window: timedelta = timedelta(hours=6)
    """The widest time range one logs or metrics call may cover."""


@dataclass(frozen=True)
class AwsScope:
    """One incident's view of AWS: its region, alarm, own log group and time."""

    clients: ClientFactory
    limits: AwsToolLimits
    at: datetime
    region: str | None = None
    alarm_name: str | None = None
    own_log_group: str | None = None
    alarm_metrics: tuple[MetricQuery, ...] = field(default=())

    @classmethod
    def of(cls, clients: ClientFactory, limits: AwsToolLimits, alert: Alert) -> AwsScope:
        return cls(
            clients=clients,
            limits=limits,
            at=as_utc(alert.occurred_at),
            region=alert_region(alert),
            alarm_name=alert.labels.get("alarm_name") or None,
            own_log_group=own_log_group(alert),
            alarm_metrics=tuple(metric_queries(alert)),
        )

    def client(self, service: str) -> Any:
        return self.clients(service, self.region)

    def allowed_groups(self) -> list[str]:
        """The log groups and patterns this incident may read, the alert's own first."""
        own = [self.own_log_group] if self.own_log_group else []
        return own + [g for g in self.limits.log_groups if g != self.own_log_group]

    def check_group(self, name: str) -> str:
        """`name` when this incident may read it, else a ValueError naming what it may read:
        the alert's own group and the allow-list are the only way to widen what Claude
        reads, so that an alert's text cannot steer it to another team's logs."""
        if name == self.own_log_group or any(
            name == entry or (entry.endswith("*") and name.startswith(entry[:-1]))
            for entry in self.limits.log_groups
        ):
            return name
        allowed = ", ".join(self.allowed_groups()) or "none"
        raise ValueError(
            f"log group {name!r} is not readable here; the readable ones are: {allowed} "
            "(INVESTIGATION_LOG_GROUPS widens this)"
        )

    def window(
        self, arguments: dict[str, Any], before: int = 60, after: int = 10
    ) -> tuple[datetime, datetime]:
        """[at - minutes_before, at + minutes_after], refused beyond `max_window`."""
        cap = self.limits.max_window
        limit = int(cap.total_seconds() // 60)
        minutes_before = integer(arguments, "minutes_before", before, 0, MAX_MINUTES)
        minutes_after = integer(arguments, "minutes_after", after, 0, MAX_MINUTES)
        span = timedelta(minutes=minutes_before + minutes_after)
        if span > cap:
            raise ValueError(
                f"the window of {minutes_before + minutes_after} minutes is wider than the cap "
                f"of {limit} minutes (INVESTIGATION_MAX_WINDOW): narrow minutes_before or "
                "minutes_after"
            )
        return self.at - timedelta(minutes=minutes_before), self.at + timedelta(
            minutes=minutes_after
        )


def aws_tool(
    name: str,
    description: str,
    schema: dict[str, Any],
    call: Callable[[AwsScope, dict[str, Any]], T],
    scope: AwsScope,
) -> Tool:
    """A tool whose arguments are checked against `schema`'s names, then `call` runs in a
    worker thread (boto3 is synchronous), its botocore errors told in one line."""

    async def run(arguments: dict[str, Any]) -> T:
        known_arguments(arguments, schema)
        return await in_thread(call, scope, arguments)

    return Tool(name, description, schema, run)


async def in_thread(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`call` in a worker thread; an AWS failure becomes an `AwsError` in one line."""
    try:
        return await asyncio.to_thread(functools.partial(call, *args, **kwargs))
    except Exception as exc:
        if type(exc).__module__.startswith("botocore"):
            raise AwsError(describe_error(exc)) from exc
        raise


def iso(moment: datetime) -> str:
    """A compact UTC ISO time: `2026-12-07T22:15:00Z`."""
    utc = as_utc(moment)
    text = utc.isoformat(timespec="milliseconds" if utc.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def iso_ms(epoch_ms: int) -> str:
    return iso(datetime.fromtimestamp(epoch_ms / 1000, UTC))


def epoch_ms(moment: datetime) -> int:
    return int(as_utc(moment).timestamp() * 1000)


def minutes_schema(before: int, after: int) -> dict[str, Any]:
    """The schema of the window arguments, defaults stated for Claude."""
    return {
        "minutes_before": {
            "type": "integer",
            "minimum": 0,
            "description": f"Start this many minutes before the alert (default {before}).",
        },
        "minutes_after": {
            "type": "integer",
            "minimum": 0,
            "description": f"End this many minutes after the alert (default {after}).",
        },
    }
