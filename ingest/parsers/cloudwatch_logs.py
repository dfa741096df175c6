"""CloudWatch Logs subscription data: the `awslogs.data` wrapper (base64 of gzip, or zlib for a
policy-level filter), the same inside a Kinesis record, or already decoded. Every log event
becomes an alert; grouping them is the fingerprint's job, keyed on the log group and the
message's template."""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from typing import Any

from incidents.models import Alert, AlertStatus, Severity
from ingest import fingerprint
from ingest.content_coding import GZIP, InflatedTooLargeError, inflate
from ingest.parsers.base import (
    Envelope,
    NotAnAlertError,
    ParseError,
    as_dict,
    build_alert,
    first_line,
    text,
)
from ingest.severity import severity_from
from ingest.timeparse import parse_time

SOURCE = "cloudwatch-logs"
MAX_DECODED_BYTES = 8 * 1024 * 1024
_LEVEL = re.compile(
    r"\b(FATAL|CRITICAL|CRIT|ERROR|ERR|WARNING|WARN|INFO|DEBUG|Exception|Traceback|panic)\b",
    re.IGNORECASE,
)


def is_logs_data(doc: dict[str, Any]) -> bool:
    return "logEvents" in doc and "messageType" in doc


def decode(data: object) -> Any:
    """Base64, then gzip or zlib, then JSON: bounded, so a compression bomb is refused."""
    if not isinstance(data, str):
        raise ParseError("CloudWatch Logs data is not a base64 string")
    try:
        compressed = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ParseError(f"CloudWatch Logs data is not valid base64: {exc}") from exc
    if not compressed:
        raise ParseError("CloudWatch Logs data is empty")
    window = GZIP if compressed[:2] == b"\x1f\x8b" else zlib.MAX_WBITS
    what = "CloudWatch Logs data"
    try:
        raw = inflate(compressed, window, MAX_DECODED_BYTES, what, "gzip or zlib")
    except InflatedTooLargeError as exc:  # inside a body: unreadable, kept as a dead letter
        raise ParseError(str(exc)) from exc
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"decoded CloudWatch Logs data is not JSON: {exc}") from exc


def parse(doc: dict[str, Any], envelope: Envelope) -> list[Alert]:
    if doc.get("messageType") == "CONTROL_MESSAGE":
        raise NotAnAlertError("CloudWatch Logs control message (destination check), no log events")
    events = doc.get("logEvents")
    if not isinstance(events, list) or not events:
        raise ParseError("CloudWatch Logs data without log events")
    group = text(doc.get("logGroup"), 512)
    stream = text(doc.get("logStream"), 512)
    context = {
        key: doc[key]
        for key in ("owner", "logGroup", "logStream", "subscriptionFilters")
        if key in doc
    }
    labels = {
        k: v
        for k, v in {
            "log_group": group,
            "log_stream": stream,
            "owner": text(doc.get("owner"), 32),
        }.items()
        if v
    }
    alerts = []
    for index, event in enumerate(events):
        entry = as_dict(event)
        message = text(entry.get("message"))
        event_id = text(entry.get("id"), 128)
        alerts.append(
            build_alert(
                source=SOURCE,
                parser="cloudwatch_logs",
                title=first_line(message)[:300] or f"log event in {group or 'unknown group'}",
                message=message,
                severity=_level(message),
                status=AlertStatus.FIRING,
                fingerprint=fingerprint.text_key(SOURCE, group, message),
                envelope=envelope,
                occurred_at=parse_time(entry.get("timestamp")),
                raw={**context, "logEvent": event},
                resource=group or None,
                labels=labels,
                dedup_key=f"logs:{group}:{event_id}"
                if event_id
                else (f"{envelope.dedup_key}:{index}" if envelope.dedup_key else None),
            )
        )
    return alerts


def _level(message: str) -> Severity:
    """The log level the line states; a line caught by an error filter but stating none is
    MEDIUM."""
    head = message[:2000]
    if head.lstrip().startswith("{"):
        try:
            document = json.loads(head)
        except (ValueError, RecursionError):
            document = None
        if isinstance(document, dict):
            for key in ("level", "severity", "levelname", "log_level"):
                found = severity_from(document.get(key))
                if found:
                    return found
    match = _LEVEL.search(head)
    if not match:
        return Severity.MEDIUM
    word = match.group(1).lower()
    if word in ("exception", "traceback", "panic"):
        return Severity.HIGH
    return severity_from(word) or Severity.MEDIUM
