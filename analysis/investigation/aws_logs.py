"""The CloudWatch Logs tools of the investigation: a Logs Insights query, and the raw events
of one log group.

Both read only the alert's own log group or those `INVESTIGATION_LOG_GROUPS` allows, over a
window around the alert no wider than `INVESTIGATION_MAX_WINDOW`, and return at most 100 rows.
"""

from __future__ import annotations

import asyncio
from typing import Any

from analysis.investigation.aws_scope import (
    MAX_LOG_GROUPS,
    AwsScope,
    aws_tool,
    epoch_ms,
    in_thread,
    integer,
    iso,
    iso_ms,
    known_arguments,
    minutes_schema,
    string,
    strings,
)
from analysis.investigation.registry import Tool

INSIGHTS = "logs_insights_query"
EVENTS = "log_events"
MAX_ROWS = 100
MAX_QUERY = 10_000
MESSAGE_CHARS = 2000
EVENT_PAGES = 5
# The first answers come within a second for a small window; then poll less often. The
# loop's tool timeout cancels the wait between two polls.
POLL_DELAYS = (0.2, 0.3, 0.5, 1.0)
MAX_POLLS = 120  # about two minutes: a bound for callers without the loop's timeout
DONE = "Complete"
FAILED = ("Failed", "Cancelled", "Timeout", "Unknown")

_LIMIT = {
    "type": "integer",
    "minimum": 1,
    "maximum": MAX_ROWS,
    "description": f"At most this many rows (default 50, at most {MAX_ROWS}).",
}

INSIGHTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {
            "type": "string",
            "maxLength": MAX_QUERY,
            "description": "A CloudWatch Logs Insights query, e.g. `fields @timestamp, @message "
            "| filter @message like /ERROR/ | sort @timestamp desc | limit 20`.",
        },
        "log_groups": {
            "type": "array",
            "items": {"type": "string"},
            "maxItems": MAX_LOG_GROUPS,
            "description": "Log group names (default: the alert's own log group).",
        },
        **minutes_schema(60, 10),
        "limit": _LIMIT,
    },
    "required": ["query"],
    "additionalProperties": False,
}

EVENTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "log_group": {
            "type": "string",
            "description": "The log group (default: the alert's own log group).",
        },
        "filter_pattern": {
            "type": "string",
            "maxLength": 1024,
            "description": 'A CloudWatch Logs filter pattern, e.g. `ERROR` or `"connection '
            'refused"`; default: every event.',
        },
        **minutes_schema(60, 10),
        "limit": _LIMIT,
    },
    "additionalProperties": False,
}


def logs_tools(scope: AwsScope) -> list[Tool]:
    """Both logs tools, or none when this incident may read no log group at all: a tool that
    could only fail would cost Claude a step."""
    if not scope.allowed_groups():
        return []
    readable = ", ".join(scope.allowed_groups())
    insights = Tool(
        INSIGHTS,
        "Run a CloudWatch Logs Insights query over log groups in a window around the alert "
        f"(readable log groups: {readable}). Returns the result rows. Read-only.",
        INSIGHTS_SCHEMA,
        lambda arguments: run_insights(scope, arguments),
    )
    events = aws_tool(
        EVENTS,
        "Read the raw events of one log group in a window around the alert, oldest first, "
        f"optionally matching a filter pattern (readable log groups: {readable}). Read-only.",
        EVENTS_SCHEMA,
        filter_events,
        scope,
    )
    return [insights, events]


def _groups(scope: AwsScope, arguments: dict[str, Any]) -> list[str]:
    named = strings(arguments, "log_groups", MAX_LOG_GROUPS)
    if named is None:
        if not scope.own_log_group:
            raise ValueError(
                f"name log_groups: this alert has no log group of its own; readable: "
                f"{', '.join(scope.allowed_groups())}"
            )
        named = [scope.own_log_group]
    return [scope.check_group(name) for name in named]


async def run_insights(scope: AwsScope, arguments: dict[str, Any]) -> dict[str, Any]:
    """StartQuery, then GetQueryResults until the query completes. The waits are the event
    loop's, so that the loop's tool timeout stops the polling too (a thread could not be
    stopped); a query left running ends on its own at AWS's 60-minute limit."""
    known_arguments(arguments, INSIGHTS_SCHEMA)
    query = string(arguments, "query", MAX_QUERY)
    groups = _groups(scope, arguments)
    start, end = scope.window(arguments)
    limit = integer(arguments, "limit", 50, 1, MAX_ROWS)
    client = scope.client("logs")
    started = await in_thread(
        client.start_query,
        logGroupNames=groups,
        startTime=int(start.timestamp()),
        endTime=int(end.timestamp()),
        queryString=query,
        limit=limit,
    )
    for polls in range(MAX_POLLS):
        answer = await in_thread(client.get_query_results, queryId=started["queryId"])
        status = str(answer.get("status", ""))
        if status == DONE:
            break
        if status in FAILED:
            raise RuntimeError(f"the Logs Insights query ended {status}")
        await asyncio.sleep(POLL_DELAYS[min(polls, len(POLL_DELAYS) - 1)])
    else:
        raise TimeoutError(f"the Logs Insights query was still {status} after {polls + 1} polls")
    rows = [
        {cell["field"]: cell.get("value", "") for cell in row if cell.get("field") != "@ptr"}
        for row in answer.get("results", [])[:limit]
    ]
    matched = answer.get("statistics", {}).get("recordsMatched", len(rows))
    return {
        "log_groups": groups,
        "from": iso(start),
        "to": iso(end),
        "status": status,
        "rows": rows,
        "records_matched": int(matched),
    }


def filter_events(scope: AwsScope, arguments: dict[str, Any]) -> dict[str, Any]:
    """FilterLogEvents, following a few pages: a page may come back short (or empty) while
    the search goes on, so one page would often miss events that exist."""
    named = string(arguments, "log_group")
    if named is None and not scope.own_log_group:
        raise ValueError(
            "name log_group: this alert has no log group of its own; readable: "
            f"{', '.join(scope.allowed_groups())}"
        )
    group = scope.check_group(named or scope.own_log_group or "")
    pattern = string(arguments, "filter_pattern", 1024)
    start, end = scope.window(arguments)
    limit = integer(arguments, "limit", 50, 1, MAX_ROWS)
    client = scope.client("logs")
    request: dict[str, Any] = {
        "logGroupName": group,
        "startTime": epoch_ms(start),
        "endTime": epoch_ms(end),
    }
    if pattern:
        request["filterPattern"] = pattern
    events: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(EVENT_PAGES):
        page = client.filter_log_events(
            **request, limit=limit - len(events), **({"nextToken": token} if token else {})
        )
        events += page.get("events", [])
        token = page.get("nextToken")
        if not token or len(events) >= limit:
            break
    result: dict[str, Any] = {
        "log_group": group,
        "from": iso(start),
        "to": iso(end),
        "events": [
            {
                "at": iso_ms(int(event.get("timestamp", 0))),
                "stream": event.get("logStreamName", ""),
                "message": str(event.get("message", "")).rstrip()[:MESSAGE_CHARS],
            }
            for event in events[:limit]
        ],
    }
    if token:
        result["truncated"] = "more events match: narrow the window or the filter pattern"
    return result
