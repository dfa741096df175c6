"""Alerts that follow no vendor schema: the product brief's custom JSON, any other JSON object
(fields found best-effort under the names senders commonly use), and plain text."""

from __future__ import annotations

from collections import deque
from typing import Any

from incidents.models import Alert, AlertStatus, Severity
from ingest import fingerprint
from ingest.parsers.base import Envelope, ParseError, build_alert, first_line, str_labels, text
from ingest.severity import severity_from, severity_marker
from ingest.timeparse import parse_time

_TRANSPORTS = ("sns", "sqs", "kinesis")
SEARCH_DEPTH = 3
SEARCH_NODES = 200
_RESOLVED_WORDS = frozenset(
    "resolved resolve ok closed recovered recovery normal inactive cleared "
    "incident.resolve incident.resolved".split()
)
_TITLE_KEYS = (
    "title",
    "summary",
    "subject",
    "alertname",
    "alert_name",
    "alarmName",
    "name",
    "event",
    "eventName",
    "detail-type",
    "error",
    "message",
    "msg",
    "description",
)
_MESSAGE_KEYS = (
    "message",
    "description",
    "details",
    "detail",
    "body",
    "text",
    "msg",
    "error",
    "reason",
    "output",
)
_SEVERITY_KEYS = ("severity", "level", "priority", "sev", "urgency", "alert_level")
_STATUS_KEYS = ("status", "state", "action", "event_type", "eventType")
_TIME_KEYS = (
    "timestamp",
    "time",
    "@timestamp",
    "date",
    "created_at",
    "createdAt",
    "occurred_at",
    "startsAt",
    "triggered_at",
)
_RESOURCE_KEYS = ("resource", "host", "hostname", "service", "instance", "component", "resource_id")
# Who acted or sent, not what happened: Sentry's `actor` is {"name": "Sentry"}, PagerDuty's
# `agent` is the person who changed the incident. Searched, they would title every alert of a
# sender alike and so merge them all into one incident.
_ACTOR_KEYS = frozenset(
    ("actor", "agent", "user", "assignee", "assignees", "creator", "client", "installation")
)


def is_custom(doc: dict[str, Any]) -> bool:
    """The brief's format: a string title with a message or a severity beside it."""
    return isinstance(doc.get("title"), str) and ("message" in doc or "severity" in doc)


def parse_custom(doc: dict[str, Any], envelope: Envelope) -> list[Alert]:
    source = text(doc.get("source"), 100) if isinstance(doc.get("source"), str) else "custom"
    title = text(doc.get("title"))
    message = text(doc.get("message"))
    if not title.strip() and not message.strip():
        raise ParseError("custom alert with an empty title and message")
    return [
        build_alert(
            source=source or "custom",
            parser="custom",
            title=title,
            message=message,
            severity=severity_from(doc.get("severity")) or Severity.MEDIUM,
            status=_status(doc.get("status") or doc.get("state")),
            fingerprint=fingerprint.text_key("custom", source, title, first_line(message)),
            envelope=envelope,
            occurred_at=parse_time(doc.get("timestamp")),
            raw=doc,
            resource=_scalar(_find(doc, _RESOURCE_KEYS)),
            labels=str_labels(doc.get("labels") or doc.get("tags")),
        )
    ]


def parse_json(doc: dict[str, Any], envelope: Envelope) -> list[Alert]:
    """Any other object: read what it most plausibly means, never refuse it for its shape.
    Only an empty object is refused: it says nothing, and an alert made of it would only be
    noise (a health check posting `{}` must not open an incident)."""
    if not doc:
        raise ParseError("empty JSON object: no alert in it")
    found = _find_all(doc)
    title = _scalar(found.get("title")) or ""
    message = text(found.get("message")) if found.get("message") is not None else ""
    if not title and not message:
        title = f"JSON alert with keys {', '.join(sorted(map(str, doc))[:8])}"
        message = text(doc)
    source_value = doc.get("source")
    source = (
        text(source_value, 100) if isinstance(source_value, str) and source_value else "webhook"
    )
    return [
        build_alert(
            source=source,
            parser="json",
            title=title or first_line(message),
            message=message,
            severity=severity_from(found.get("severity"))
            or severity_marker(title)
            or Severity.MEDIUM,
            status=_status(found.get("status")),
            fingerprint=fingerprint.text_key("json", source, title or first_line(message)),
            envelope=envelope,
            occurred_at=parse_time(found.get("time")),
            raw=doc,
            resource=_scalar(found.get("resource")),
        )
    ]


def parse_text(body: str, envelope: Envelope) -> list[Alert]:
    if not body.strip():
        raise ParseError("empty message")
    title = envelope.subject or first_line(body)
    source = next((via for via in reversed(envelope.via) if via in _TRANSPORTS), "text")
    return [
        build_alert(
            source=source,
            parser="text",
            title=title,
            message=body,
            severity=severity_marker(title, first_line(body)) or Severity.MEDIUM,
            status=AlertStatus.FIRING,
            fingerprint=fingerprint.text_key("text", source, title),
            envelope=envelope,
            occurred_at=None,
            raw=body[:65536],
        )
    ]


def _find_all(doc: dict[str, Any]) -> dict[str, Any]:
    """First value of each field, breadth first: top-level keys beat nested ones, and the walk
    is bounded so a deep or huge document costs little."""
    wanted = {
        "title": _TITLE_KEYS,
        "message": _MESSAGE_KEYS,
        "severity": _SEVERITY_KEYS,
        "status": _STATUS_KEYS,
        "time": _TIME_KEYS,
        "resource": _RESOURCE_KEYS,
    }
    found: dict[str, Any] = {}
    queue: deque[tuple[dict[str, Any], int]] = deque([(doc, 0)])
    visited = 0
    while queue and visited < SEARCH_NODES and len(found) < len(wanted):
        node, depth = queue.popleft()
        visited += 1
        for field, keys in wanted.items():
            if field not in found:
                value = _find(node, keys)
                if value is not None:
                    found[field] = value
        if depth < SEARCH_DEPTH:
            queue.extend(
                (v, depth + 1)
                for k, v in node.items()
                if isinstance(v, dict) and k not in _ACTOR_KEYS
            )
    return found


def _find(node: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = node.get(key)
        if value not in (None, "", [], {}) and not isinstance(value, list | dict):
            return value
        if key in ("message", "detail", "details", "description") and isinstance(value, dict):
            return value
    return None


def _scalar(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return first_line(text(value, 1000)) or None


def _status(value: Any) -> AlertStatus:
    if isinstance(value, str) and value.strip().lower() in _RESOLVED_WORDS:
        return AlertStatus.RESOLVED
    return AlertStatus.FIRING
