"""What moto lacks, added to moto itself for the tests that need it: CloudWatch
`DescribeAlarmHistory` and CloudTrail `LookupEvents` (moto answers both with HTTP 500), and
CloudWatch Logs `StopQuery` (moto has none) with Logs Insights queries that keep running.

They are methods on moto's own response classes, so requests and answers go through moto's
and botocore's protocol code like any other operation; the data comes from moto's backends:

- alarm history: each state change made through `SetAlarmState` (moto keeps them on the
  alarm), plus items seeded with `seed_alarm_history` at any time (SetAlarmState can only
  make changes "now");
- CloudTrail events: those seeded with `seed_trail_events`, since moto records no trail;
- Logs Insights: moto runs a query to completion inside StartQuery, so one could never be
  stopped; after `hold_insights_queries()` each new query stays `Running` until StopQuery
  (results come back meanwhile, as AWS gives partial ones). StartQuery also keeps the request's
  `queryLanguage` on the query (`query_language`), which moto ignores.

Seeded data lives on the backend of an account and region, so moto's reset forgets it.
The operations exist only inside `filled_moto_gaps()` (or the `moto_gaps` fixture): other
tests keep seeing moto as it is (tests/integration/test_gather.py relies on the 500).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from moto.cloudtrail.models import cloudtrail_backends
from moto.cloudtrail.responses import CloudTrailResponse
from moto.cloudwatch.models import cloudwatch_backends
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.logs.exceptions import InvalidParameterException, ResourceNotFoundException
from moto.logs.models import logs_backends
from moto.logs.responses import LogsResponse

from incidents.times import as_utc
from tests.fakes.moto_server import ACCOUNT, REGION

_HISTORY = "seeded_alarm_history"
_TRAIL = "seeded_trail_events"
_HELD = "held_insights_queries"
_MOTO_START_QUERY = LogsResponse.start_query
# Lookup keys that match the event field of the same name (the resource keys are matched apart).
LOOKUP_KEYS = frozenset(
    {"EventId", "EventName", "ReadOnly", "Username", "EventSource", "AccessKeyId"}
)


class InvalidLookupAttributesError(ServiceException):
    code = "InvalidLookupAttributesException"


def seed_alarm_history(
    items: list[dict[str, Any]], account: str = ACCOUNT, region: str = REGION
) -> None:
    """Adds DescribeAlarmHistory items, in the API's shape (`AlarmName`, `Timestamp`,
    `HistoryItemType`, `HistorySummary`, `HistoryData`...)."""
    backend = cloudwatch_backends[account][region]
    backend.__dict__.setdefault(_HISTORY, []).extend(items)


def seed_trail_events(
    events: list[dict[str, Any]], account: str = ACCOUNT, region: str = REGION
) -> None:
    """Adds CloudTrail events, in LookupEvents' shape (`EventName`, `EventTime`, `ReadOnly`,
    `EventSource`, `Username`, `Resources`, `CloudTrailEvent`...)."""
    backend = cloudtrail_backends[account][region]
    backend.__dict__.setdefault(_TRAIL, []).extend(events)


def hold_insights_queries(account: str = ACCOUNT, region: str = REGION) -> None:
    """Logs Insights queries started from now on stay `Running` until StopQuery."""
    logs_backends[account][region].__dict__[_HELD] = True


def state_update(name: str, at: datetime, old: str, new: str, reason: str) -> dict[str, Any]:
    """A state-update history item as CloudWatch writes one."""
    data = {
        "version": "1.0",
        "oldState": {"stateValue": old},
        "newState": {"stateValue": new, "stateReason": reason},
    }
    return {
        "AlarmName": name,
        "AlarmType": "MetricAlarm",
        "Timestamp": at,
        "HistoryItemType": "StateUpdate",
        "HistorySummary": f"Alarm updated from {old} to {new}",
        "HistoryData": json.dumps(data),
    }


def _utc(value: Any) -> datetime | None:
    """A request's or an item's time as an aware UTC datetime: botocore's parsers give
    datetimes, epoch seconds or ISO text depending on the protocol; moto keeps naive UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) or str(value).replace(".", "", 1).isdigit():
        moment = datetime.fromtimestamp(float(value), UTC)
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return as_utc(moment)


def _moto_state_changes(backend: Any) -> list[dict[str, Any]]:
    """Each alarm's SetAlarmState changes: moto appends the state being left (value, reason,
    time it was entered) to `alarm.history` before switching."""
    items = []
    for alarm in backend.alarms.values():
        left = [entry for entry in alarm.history if entry[0] == "StateUpdate"]
        states = [entry[3] for entry in left] + [alarm.state_value]
        reasons = [entry[1] for entry in left[1:]] + [alarm.state_reason]
        entered = [entry[4] for entry in left[1:]] + [alarm.state_updated_timestamp]
        for index, old in enumerate(states[:-1]):
            items.append(
                state_update(alarm.name, entered[index], old, states[index + 1], reasons[index])
            )
    return items


def describe_alarm_history(self: CloudWatchResponse) -> ActionResult:
    backend = self.cloudwatch_backend
    name = self._get_param("AlarmName")
    kind = self._get_param("HistoryItemType")
    start, end = _utc(self._get_param("StartDate")), _utc(self._get_param("EndDate"))
    items = [*backend.__dict__.get(_HISTORY, []), *_moto_state_changes(backend)]
    chosen = []
    for item in items:
        at = _utc(item["Timestamp"])
        assert at is not None
        if (
            (not name or item["AlarmName"] == name)
            and (not kind or item["HistoryItemType"] == kind)
            and (start is None or at >= start)
            and (end is None or at <= end)
        ):
            chosen.append({**item, "Timestamp": at})
    newest_first = self._get_param("ScanBy", "TimestampDescending") == "TimestampDescending"
    chosen.sort(key=lambda item: item["Timestamp"], reverse=newest_first)
    limit = int(self._get_param("MaxRecords") or 100)
    return ActionResult({"AlarmHistoryItems": chosen[:limit]})


def lookup_events(self: CloudTrailResponse) -> ActionResult:
    """One lookup attribute at most, as AWS allows; pages of MaxResults (at most 50)."""
    attributes = self._get_param("LookupAttributes") or []
    if len(attributes) > 1:
        raise InvalidLookupAttributesError("You can only specify one lookup attribute.")
    start, end = _utc(self._get_param("StartTime")), _utc(self._get_param("EndTime"))
    chosen = []
    for event in self.cloudtrail_backend.__dict__.get(_TRAIL, []):
        at = _utc(event["EventTime"])
        assert at is not None
        if start is not None and at < start or end is not None and at > end:
            continue
        if attributes and not _matches(event, attributes[0]):
            continue
        chosen.append({**event, "EventTime": at})
    chosen.sort(key=lambda event: event["EventTime"], reverse=True)
    size = min(int(self._get_param("MaxResults") or 50), 50)
    offset = int(self._get_param("NextToken") or 0)
    result: dict[str, Any] = {"Events": chosen[offset : offset + size]}
    if offset + size < len(chosen):
        result["NextToken"] = str(offset + size)
    return ActionResult(result)


def _matches(event: dict[str, Any], attribute: dict[str, Any]) -> bool:
    key, value = attribute.get("AttributeKey"), attribute.get("AttributeValue")
    if key == "ResourceName":
        return any(r.get("ResourceName") == value for r in event.get("Resources", []))
    if key == "ResourceType":
        return any(r.get("ResourceType") == value for r in event.get("Resources", []))
    if key not in LOOKUP_KEYS:
        raise InvalidLookupAttributesError(f"Unknown lookup attribute key {key!r}.")
    return str(event.get(key, "")).lower() == str(value).lower()


def start_query(self: LogsResponse) -> str:
    """moto's StartQuery, then the query held `Running` when asked, and its language kept."""
    answer = _MOTO_START_QUERY(self)
    query = self.logs_backend.queries[json.loads(answer)["queryId"]]
    query.__dict__["query_language"] = self._get_param("queryLanguage")
    if self.logs_backend.__dict__.get(_HELD):
        query.status = "Running"
    return answer


def stop_query(self: LogsResponse) -> str:
    """As AWS: an unknown id is not found, a query that already ended is an error."""
    query = self.logs_backend.queries.get(self._get_param("queryId"))
    if query is None:
        raise ResourceNotFoundException("The specified query does not exist.")
    if query.status not in ("Scheduled", "Running"):
        raise InvalidParameterException("The specified query is not running.")
    query.status = "Cancelled"
    return json.dumps({"success": True})


@contextmanager
def filled_moto_gaps() -> Iterator[None]:
    """moto with the operations above, for the block; moto as it was afterwards."""
    added: tuple[tuple[type, str, Any], ...] = (
        (CloudWatchResponse, "describe_alarm_history", describe_alarm_history),
        (CloudTrailResponse, "lookup_events", lookup_events),
        (LogsResponse, "start_query", start_query),
        (LogsResponse, "stop_query", stop_query),
    )
    before = [cls.__dict__.get(name) for cls, name, _ in added]
    for cls, name, method in added:
        setattr(cls, name, method)
    try:
        yield
    finally:
        for (cls, name, _), original in zip(added, before, strict=True):
            if original is None:
                delattr(cls, name)
            else:
                setattr(cls, name, original)


@pytest.fixture(scope="module")
def moto_gaps() -> Iterator[None]:
    """Module-scoped, like the `moto_server` fixture these operations are served by."""
    with filled_moto_gaps():
        yield
