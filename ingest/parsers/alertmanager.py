"""Prometheus Alertmanager webhooks (version 4) and Grafana alerting webhooks, which extend the
same schema. One alert per entry, resolved entries included. An entry's identity is its label
set, as it is for Prometheus itself, so a resolved entry resolves exactly the incident its
firing entry opened."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class Group:
    """What a notification says of all its entries: who sent it and how it was routed."""

    source: str
    parser: str
    status: str
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    identity: tuple[str, str] | None
    context: dict[str, Any]


def group_of(doc: dict[str, Any]) -> Group:
    grafana = is_grafana(doc)
    source, parser = ("grafana", "grafana") if grafana else ("prometheus", "alertmanager")
    entries = doc.get("alerts")
    if not isinstance(entries, list) or not entries:
        raise ParseError(f"{parser} webhook without alerts")
    group_key = text(doc.get("groupKey"), 1000)
    receiver = text(doc.get("receiver"), 200)
    return Group(
        source=source,
        parser=parser,
        status=text(doc.get("status"), 32).lower(),
        common_labels=str_labels(doc.get("commonLabels")),
        common_annotations=str_labels(doc.get("commonAnnotations")),
        identity=(receiver, group_key) if group_key else None,
        context={k: doc[k] for k in ("receiver", "groupKey", "externalURL", "orgId") if k in doc},
    )


def parse_entry(group: Group, index: int, item: Any, envelope: Envelope) -> Alert:
    """One entry. Within a routed group, entries of one alertname are one problem: the
    incident keys on the group and the name, and each entry's label set is a member of it,
    so the incident resolves when its last firing member does. Without a group key, the
    label set alone is the identity, as it is for Prometheus."""
    parser = group.parser
    if not isinstance(item, dict):
        raise ParseError(f"{parser} alert #{index} is not an object")
    if not item:
        raise ParseError(f"{parser} alert #{index} is empty")
    labels = str_labels(item.get("labels")) or group.common_labels
    annotations = str_labels(item.get("annotations"))
    entry_status = text(item.get("status"), 32).lower() or group.status
    status = AlertStatus.RESOLVED if entry_status == "resolved" else AlertStatus.FIRING
    name = labels.get("alertname", "")
    summary = first(annotations, "summary", "title", "message") or name or f"{parser} alert"
    description = first(annotations, "description", "message") or ""
    label_lines = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
    starts = text(item.get("startsAt"), 64)
    identity = fingerprint.of_labels(parser, labels) if labels else None
    member = identity
    problem: str | fingerprint.TextKey
    if group.identity is not None and name:
        problem = fingerprint.of_identity(parser, *group.identity, name)
        common = group.common_annotations.get("summary")
        title = f"{name}: {common}" if common and name not in common else (common or name)
    else:
        problem = member or fingerprint.text_key(
            parser, str(group.context.get("receiver")), summary
        )
        member = None
        title = f"{name}: {summary}" if name and name not in summary else summary
    return build_alert(
        source=group.source,
        parser=parser,
        title=title,
        message="\n".join(
            x
            for x in (summary if summary != title else "", description, f"Labels: {label_lines}")
            if x
        ),
        severity=_severity(labels, group.common_labels),
        status=status,
        fingerprint=problem,
        member=member,
        envelope=envelope,
        occurred_at=parse_time(item.get("endsAt"))
        if status is AlertStatus.RESOLVED
        else parse_time(starts),
        raw={**group.context, "alert": item},
        resource=next((labels[k] for k in _RESOURCE_LABELS if labels.get(k)), None),
        labels=labels,
        dedup_key=f"{parser}:{identity}:{starts}:{status.value}" if starts and identity else None,
    )


def _severity(labels: dict[str, str], common: dict[str, str]) -> Severity:
    for source in (labels, common):
        for key in ("severity", "priority", "level", "urgency"):
            found = severity_from(source.get(key))
            if found:
                return found
    return Severity.MEDIUM
