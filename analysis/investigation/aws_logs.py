"""The CloudWatch Logs tools of the investigation: a Logs Insights query, and the raw events
of one log group.

Both read only the alert's own log group or those `INVESTIGATION_LOG_GROUPS` allows, over a
window around the alert no wider than `INVESTIGATION_MAX_WINDOW`, and return at most 100 rows.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from analysis.investigation.arguments import integer, known_arguments, string, strings
from analysis.investigation.aws_scope import (
    MAX_LOG_GROUPS,
    AwsScope,
    aws_tool,
    epoch_ms,
    in_thread,
    iso,
    iso_ms,
    minutes_schema,
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
# How long a query left behind may hold up the tool's answer while StopQuery goes out.
STOP_WAIT = 1.0
# Logs Insights' own query language: the SQL and PPL ones name their log groups in the query.
LANGUAGE = "CWLI"
# `SOURCE logGroups(namePrefix: [...])` chooses log groups inside the query, beside those the
# request names: at the start of the query (or of a line) or as a command after a pipe.
SOURCE_COMMAND = re.compile(r"(?:^|\|)\s*source\b", re.IGNORECASE | re.MULTILINE)

logger = logging.getLogger(__name__)

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


def _own_group(scope: AwsScope, argument: str) -> str:
    """The alert's own log group, each logs tool's default; an alarm has none, so Claude must
    name one of those the allow-list admits."""
    if not scope.own_log_group:
        raise ValueError(
            f"name {argument}: this alert has no log group of its own; readable: "
            f"{', '.join(scope.allowed_groups())}"
        )
    return scope.own_log_group


def _groups(scope: AwsScope, arguments: dict[str, Any]) -> list[str]:
    named = strings(arguments, "log_groups", MAX_LOG_GROUPS) or [_own_group(scope, "log_groups")]
    return [scope.check_group(name) for name in named]


def _query(arguments: dict[str, Any]) -> str:
    """The query, refused when it names its own log groups: a SOURCE command would read groups
    beyond the allow-list (the IAM policy's prefix, empty by default, would not stop it)."""
    query = string(arguments, "query", MAX_QUERY) or ""
    if SOURCE_COMMAND.search(query):
        raise ValueError(
            "the query may not choose its log groups with a SOURCE command: name them in "
            "log_groups instead"
        )
    return query


async def run_insights(scope: AwsScope, arguments: dict[str, Any]) -> dict[str, Any]:
    """StartQuery, then GetQueryResults until the query completes. The waits are the event
    loop's, so that the loop's tool timeout stops the polling too (a thread could not be
    stopped), and a query left behind is stopped rather than run on for up to 60 minutes
    against the account's concurrent-query quota."""
    known_arguments(arguments, INSIGHTS_SCHEMA)
    query = _query(arguments)
    groups = _groups(scope, arguments)
    start, end = scope.window(arguments)
    limit = integer(arguments, "limit", 50, 1, MAX_ROWS)
    client = await in_thread(scope.client, "logs")  # may build one: tens of ms, under a lock
    started = await in_thread(
        client.start_query,
        queryLanguage=LANGUAGE,
        logGroupNames=groups,
        startTime=int(start.timestamp()),
        endTime=int(end.timestamp()),
        queryString=query,
        limit=limit,
    )
    answer = await _results(client, started["queryId"])
    rows = [
        {cell["field"]: cell.get("value", "") for cell in row if cell.get("field") != "@ptr"}
        for row in answer.get("results", [])[:limit]
    ]
    matched = answer.get("statistics", {}).get("recordsMatched", len(rows))
    return {
        "log_groups": groups,
        "from": iso(start),
        "to": iso(end),
        "status": answer["status"],
        "rows": rows,
        "records_matched": int(matched),
    }


async def _results(client: Any, query_id: str) -> dict[str, Any]:
    """GetQueryResults until the query ends; whatever way the polling stops short of that (the
    loop's timeout cancelling it, `MAX_POLLS`, an AWS error), the query is stopped."""
    ended = False
    try:
        for polls in range(MAX_POLLS):
            answer: dict[str, Any] = await in_thread(client.get_query_results, queryId=query_id)
            status = str(answer.get("status", ""))
            answer["status"] = status
            ended = status == DONE or status in FAILED
            if status == DONE:
                return answer
            if ended:
                raise RuntimeError(f"the Logs Insights query ended {status}")
            await asyncio.sleep(POLL_DELAYS[min(polls, len(POLL_DELAYS) - 1)])
        raise TimeoutError(f"the Logs Insights query was still {status} after {MAX_POLLS} polls")
    finally:
        if not ended:
            await _stop(client, query_id)


async def _stop(client: Any, query_id: str) -> None:
    """StopQuery, best effort: in a worker thread, waited for at most `STOP_WAIT` (the call
    goes on without us after that), and never raising, since the tool is already answering
    with its own error or cancellation."""
    try:
        await asyncio.wait_for(asyncio.to_thread(client.stop_query, queryId=query_id), STOP_WAIT)
    except Exception as exc:  # a query already ended, a missing permission, a slow answer
        logger.info("Logs Insights query %s not stopped: %s", query_id, exc)


def filter_events(scope: AwsScope, arguments: dict[str, Any]) -> dict[str, Any]:
    """FilterLogEvents, following a few pages: a page may come back short (or empty) while
    the search goes on, so one page would often miss events that exist."""
    group = scope.check_group(string(arguments, "log_group") or _own_group(scope, "log_group"))
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
