"""What every parser shares: the error types, the envelope context and bounded text helpers."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from incidents.models import Alert, AlertStatus, Severity
from ingest.fingerprint import TextKey

TITLE_LIMIT = 300
MESSAGE_LIMIT = 16_000
LABEL_LIMIT = 500
MAX_LABELS = 64


class ParseError(ValueError):
    """The payload holds no alert we can read; `reason` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotAnAlertError(ParseError):
    """A well-formed message that is not an alert (an SNS subscription confirmation, an alarm's
    configuration change): kept with its reason, but the sender did nothing wrong."""


@dataclass(frozen=True)
class Envelope:
    """What the wrappers around a message told us before the inner parser sees it."""

    received_at: datetime
    dedup_key: str | None = None
    subject: str | None = None
    via: tuple[str, ...] = ()

    def inner(self, via: str, dedup_key: str | None, subject: str | None = None) -> Envelope:
        return replace(
            self,
            via=(*self.via, via),
            dedup_key=dedup_key or self.dedup_key,
            subject=subject or self.subject,
        )


def text(value: object, limit: int = MESSAGE_LIMIT) -> str:
    """Any JSON value as bounded text: strings as they are, the rest as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        result = value
    elif isinstance(value, bool | int | float):
        result = json.dumps(value)
    else:
        try:
            result = json.dumps(value, ensure_ascii=False, default=str)[: limit + 1]
        except (ValueError, RecursionError):
            result = str(type(value).__name__)
    return result if len(result) <= limit else result[: limit - 1] + "…"


def first(mapping: dict[str, Any], *keys: str) -> Any:
    """The first of `keys` that holds a non-empty value."""
    for key in keys:
        value = mapping.get(key)
        if value not in (None, "", [], {}):
            return value
    return None


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def str_labels(value: object) -> dict[str, str]:
    """Labels as strings, bounded in count and length, whatever types the sender used."""
    labels: dict[str, str] = {}
    for key, item in list(as_dict(value).items())[:MAX_LABELS]:
        labels[text(key, LABEL_LIMIT)] = text(item, LABEL_LIMIT)
    return labels


def first_line(value: str) -> str:
    for line in value.splitlines():
        if line.strip():
            return line.strip()
    return ""


def build_alert(
    *,
    source: str,
    parser: str,
    title: str,
    message: str,
    severity: Severity,
    status: AlertStatus,
    fingerprint: str | TextKey,
    envelope: Envelope,
    occurred_at: datetime | None,
    raw: Any,
    resource: str | None = None,
    labels: dict[str, str] | None = None,
    dedup_key: str | None = None,
    member: str | None = None,
) -> Alert:
    """One place that bounds every text field, so no parser can store an unbounded title.
    A `TextKey` fingerprint brings its template along."""
    key, template = (fingerprint, None) if isinstance(fingerprint, str) else fingerprint
    clean_title = first_line(title) or first_line(message) or f"{source} alert"
    return Alert(
        source=text(source, 100) or "unknown",
        parser=parser,
        title=text(clean_title, TITLE_LIMIT),
        message=text(message),
        severity=severity,
        status=status,
        resource=text(resource, LABEL_LIMIT) if resource else None,
        occurred_at=occurred_at or envelope.received_at,
        received_at=envelope.received_at,
        labels=labels or {},
        fingerprint=key,
        template=template,
        member=member,
        dedup_key=dedup_key if dedup_key is not None else envelope.dedup_key,
        raw=raw,
    )
