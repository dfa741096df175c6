"""Prometheus Alertmanager webhooks (version 4) and Grafana alerting webhooks, which extend the
same schema. One alert per entry, resolved entries included. An entry's identity is its label
set, as it is for Prometheus itself, so a resolved entry resolves exactly the incident its
firing entry opened."""

from __future__ import annotations

from typing import Any

from incidents.models import Alert, AlertStatus, Severity
from ingest import fingerprint
from ingest.parsers.base import (
    Envelope,
    ParseError,
    build_alert,
    first,
    str_labels,
    text,
)
from ingest.severity import severity_from
from ingest.timeparse import parse_time

_GRAFANA_ENTRY_KEYS = ("silenceURL", "dashboardURL", "panelURL", "values", "valueString")
_RESOURCE_LABELS = ("instance", "pod", "service", "host", "node", "job", "namespace")


def is_alert_group(doc: dict[str, Any]) -> bool:
    return isinstance(doc.get("alerts"), list) and ("version" in doc or "receiver" in doc)


def is_grafana(doc: dict[str, Any]) -> bool:
    alerts = doc.get("alerts")
    entries = [e for e in alerts if isinstance(e, dict)] if isinstance(alerts, list) else []
    return "orgId" in doc or any(key in e for e in entries for key in _GRAFANA_ENTRY_KEYS)


def parse(doc: dict[str, Any], envelope: Envelope) -> list[Alert]:
    grafana = is_grafana(doc)
    source, parser = ("grafana", "grafana") if grafana else ("prometheus", "alertmanager")
    entries = doc.get("alerts")
    if not isinstance(entries, list) or not entries:
        raise ParseError(f"{parser} webhook without alerts")
    group_status = text(doc.get("status"), 32).lower()
    common_labels = str_labels(doc.get("commonLabels"))
    context = {k: doc[k] for k in ("receiver", "groupKey", "externalURL", "orgId") if k in doc}
    alerts = []
    for index, item in enumerate(entries):
        if not isinstance(item, dict):
            raise ParseError(f"{parser} alert #{index} is not an object")
        if not item:
            raise ParseError(f"{parser} alert #{index} is empty")
        entry = item
        labels = str_labels(entry.get("labels")) or common_labels
        annotations = str_labels(entry.get("annotations"))
        entry_status = text(entry.get("status"), 32).lower() or group_status
        status = AlertStatus.RESOLVED if entry_status == "resolved" else AlertStatus.FIRING
        name = labels.get("alertname", "")
        title = first(annotations, "summary", "title", "message") or name or f"{parser} alert"
        description = first(annotations, "description", "message") or ""
        label_lines = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
        starts = text(entry.get("startsAt"), 64)
        alerts.append(
            build_alert(
                source=source,
                parser=parser,
                title=f"{name}: {title}" if name and name not in title else title,
                message="\n".join(x for x in (description, f"Labels: {label_lines}") if x),
                severity=_severity(labels, common_labels),
                status=status,
                fingerprint=fingerprint.of_labels(parser, labels)
                if labels
                else fingerprint.of_text(parser, text(doc.get("receiver"), 200), title),
                envelope=envelope,
                occurred_at=parse_time(entry.get("endsAt"))
                if status is AlertStatus.RESOLVED
                else parse_time(starts),
                raw={**context, "alert": entry},
                resource=next((labels[k] for k in _RESOURCE_LABELS if labels.get(k)), None),
                labels=labels,
                dedup_key=f"{parser}:{fingerprint.of_labels(parser, labels)}:{starts}:"
                f"{status.value}"
                if starts and labels
                else None,
            )
        )
    return alerts


def _severity(labels: dict[str, str], common: dict[str, str]) -> Severity:
    for source in (labels, common):
        for key in ("severity", "priority", "level", "urgency"):
            found = severity_from(source.get(key))
            if found:
                return found
    return Severity.MEDIUM
