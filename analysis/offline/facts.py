"""Facts: everything the alert, its incident and the gathered context name, read once.

Every later step (scoring, class modules, command templates) reads names from here instead
of re-parsing the alert, so a sender's quirks are handled in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from analysis.context import AnalysisContext
from analysis.offline.model import (
    CONTEXT_FACTOR,
    HISTORY,
    LINK_CHARS,
    LOOKAHEAD,
    LOOKBACK,
    MATCH_TEXT_CHARS,
    NAME_CHARS,
    QUOTE_CHARS,
    TITLE_CHARS,
    Metric,
)
from incidents.models import Alert, AlertStatus, Incident, Severity
from incidents.times import as_utc

_REGION = re.compile(r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}")
_ACCOUNT = re.compile(r"\d{12}")
_ARN_PLACE = re.compile(
    r"\barn:aws[\w-]*:[\w-]+:([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}):(\d{12})?:"
)
_METRIC_RESOURCE = re.compile(r"(?P<ns>[A-Za-z][\w.:-]*(?:/[\w.:-]+)*)/(?P<name>[\w.-]+)")
_METRIC_IN_TEXT = re.compile(
    r"(?P<ns>AWS/[\w.-]+|ECS/ContainerInsights|CWAgent)/(?P<name>[\w.-]+)(?:\[(?P<dims>[^\]]*)\])?"
)
_LAMBDA_GROUP = re.compile(r"^/aws/lambda/([\w.-]{1,140})$")
_LAMBDA_ARN = re.compile(r"\barn:aws[\w-]*:lambda:[\w-]+:\d{12}:function:([\w-]{1,140})")
_INSTANCE_ID = re.compile(r"\bi-[0-9a-f]{8}(?:[0-9a-f]{9})?\b")
_RDS_ENDPOINT = re.compile(
    r"\b([a-z][a-z0-9-]{0,62})\.(?:cluster-(?:ro-)?)?[a-z0-9]{12}\.[a-z]{2}-[a-z]+-\d\.rds\.amazonaws\.com"
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[_\-.]+")
_LINK_KEYS = ("panelURL", "dashboardURL", "generatorURL")
# What precedes the message on a log line: timestamps, request ids, levels, `Error:`.
LOG_PREFIX = re.compile(
    r"(?:\s*(?:\[?\d{4}-\d\d-\d\d[T ][\d:.,]+(?:Z|[+-]\d\d:?\d\d)?\]?"
    r"|[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}|RequestId:\s*\S+"
    r"|\[?(?:ERROR|WARN(?:ING)?|INFO|FATAL|CRITICAL|DEBUG)\]?|Error:)(?=\s|$))+\s*"
)


@dataclass(frozen=True)
class Source:
    """A text the signals are searched in: `search` may be a normalized copy (a camel-cased
    alarm name split into words) while `quote` is what gets shown, verbatim."""

    search: str
    quote: str | None
    factor: float
    where: str = ""


@dataclass(frozen=True)
class Facts:
    """Everything the playbooks may name, read from the alert, the incident and the context.

    Every name is optional because every sender leaves out something; the playbooks phrase
    around what is missing. Names are clipped so no field echoes long raw text. `text` is the
    alert's own title and message: only the alert may say that users are cut off (see
    `_severity`). `evidence` adds the gathered context, where playbooks also look for names.
    """

    title: str
    source: str
    firing: bool
    severity: Severity
    severity_origin: str
    occurred_at: datetime
    opened_at: datetime
    occurrences: int
    flapping: bool
    text: str
    evidence: str
    sources: tuple[Source, ...]
    related: tuple[str, ...]
    region: str | None = None
    account: str | None = None
    alarm_name: str | None = None
    metric: Metric | None = None
    metrics: tuple[Metric, ...] = ()
    resource: str | None = None
    log_group: str | None = None
    function_name: str | None = None
    instance_id: str | None = None
    db_instance: str | None = None
    db_cluster: str | None = None
    queue_name: str | None = None
    table_name: str | None = None
    load_balancer: str | None = None
    api_name: str | None = None
    ecs_cluster: str | None = None
    ecs_service: str | None = None
    certificate_arn: str | None = None
    host: str | None = None
    job: str | None = None
    pod: str | None = None
    namespace: str | None = None
    link: str | None = None

    @property
    def subject(self) -> str | None:
        """The most specific name of what is failing, as a noun phrase, or None."""
        if self.function_name:
            return f"Lambda function `{self.function_name}`"
        if self.instance_id:
            return f"EC2 instance `{self.instance_id}`"
        if self.db_instance:
            return f"RDS instance `{self.db_instance}`"
        if self.db_cluster:
            return f"Aurora cluster `{self.db_cluster}`"
        if self.queue_name:
            return f"SQS queue `{self.queue_name}`"
        if self.table_name:
            return f"DynamoDB table `{self.table_name}`"
        if self.load_balancer:
            return f"load balancer `{self.load_balancer}`"
        if self.api_name:
            return f"API `{self.api_name}`"
        if self.ecs_service:
            cluster = f" in cluster `{self.ecs_cluster}`" if self.ecs_cluster else ""
            return f"ECS service `{self.ecs_service}`{cluster}"
        if self.pod:
            return f"pod `{self.pod}`" + (
                f" in namespace `{self.namespace}`" if self.namespace else ""
            )
        if self.log_group:
            return f"the service logging to `{self.log_group}`"
        if self.host:
            return f"`{self.host}`" + (f" (job `{self.job}`)" if self.job else "")
        if self.metric:
            # The parser's resource for an alarm is the metric itself; its dimensions name the
            # resource far better than `AWS/X/Metric[...]` does.
            dims = ", ".join(f"{k}={v}" for k, v in self.metric.dimensions.items())
            if dims:
                return f"`{clip(dims, NAME_CHARS)}` in `{self.metric.namespace}`"
            return f"the `{self.metric.namespace}` resources of this account"
        if self.resource:
            return f"`{self.resource}`"
        return None

    @property
    def service(self) -> str:
        return self.subject or f"the service behind this `{self.source}` alert"

    @property
    def since(self) -> str:
        return f"{self.opened_at:%H:%M} UTC"

    @property
    def start(self) -> datetime:
        return (self.occurred_at - LOOKBACK).replace(second=0, microsecond=0)

    @property
    def day_before(self) -> datetime:
        """Where change histories start: slow-burning causes were set up hours earlier."""
        return (self.occurred_at - HISTORY).replace(second=0, microsecond=0)

    @property
    def end(self) -> datetime:
        return (self.occurred_at + LOOKAHEAD).replace(second=0, microsecond=0)


def read_facts(incident: Incident, alert: Alert, context: AnalysisContext) -> Facts:
    """Read every name the playbooks may use, once, from the alert, its incident and the context."""
    labels = alert.labels
    metrics = _metrics(alert)
    dims: dict[str, str] = {}
    for metric in metrics:
        for key, value in metric.dimensions.items():
            dims.setdefault(key, value)
    raw_text = f"{alert.title}\n{alert.message}"[:MATCH_TEXT_CHARS]
    log_group = clean_name(labels.get("log_group"))
    group_match = _LAMBDA_GROUP.match(log_group or "")
    arn_place = _ARN_PLACE.search(f"{labels.get('alarm_arn', '')}\n{raw_text}")
    rds_endpoint = _RDS_ENDPOINT.search(raw_text)
    lambda_arn = _LAMBDA_ARN.search(raw_text)
    instance = _INSTANCE_ID.search(raw_text)
    load_balancer = dims.get("LoadBalancer") or dims.get("LoadBalancerName")
    severity = max(alert.severity, incident.severity, key=lambda s: s.rank)
    return Facts(
        title=clip(alert.title, TITLE_CHARS),
        source=clip(alert.source, NAME_CHARS),
        firing=alert.status is AlertStatus.FIRING,
        severity=severity,
        severity_origin=_severity_origin(alert, severity),
        occurred_at=as_utc(alert.occurred_at),
        opened_at=as_utc(incident.opened_at),
        occurrences=incident.occurrences,
        flapping=incident.flapping,
        text=raw_text,
        evidence="\n".join([raw_text, *(section.text for section in context.sections)]),
        sources=_sources(alert, context),
        related=tuple(
            f"{r.incident_id} ({r.title[:TITLE_CHARS]}, {r.status}) ended with: "
            f"{clip(r.outcome, 120)}"
            for r in context.related[:1]
            if r.outcome.strip()
        ),
        region=_first_valid(
            _REGION, labels.get("region"), arn_place.group(1) if arn_place else None
        ),
        account=_first_valid(
            _ACCOUNT,
            labels.get("account"),
            labels.get("owner"),
            arn_place.group(2) if arn_place else None,
        ),
        alarm_name=clean_name(labels.get("alarm_name")),
        metric=metrics[0] if metrics else None,
        metrics=metrics,
        resource=clean_name(alert.resource or incident.resource),
        log_group=log_group,
        function_name=clean_name(
            (group_match.group(1) if group_match else None)
            or dims.get("FunctionName")
            or (lambda_arn.group(1) if lambda_arn else None)
        ),
        instance_id=clean_name(dims.get("InstanceId") or (instance.group(0) if instance else None)),
        db_instance=clean_name(
            dims.get("DBInstanceIdentifier") or (rds_endpoint.group(1) if rds_endpoint else None)
        ),
        db_cluster=clean_name(dims.get("DBClusterIdentifier")),
        queue_name=clean_name(dims.get("QueueName")),
        table_name=clean_name(dims.get("TableName")),
        load_balancer=clean_name(load_balancer),
        api_name=clean_name(dims.get("ApiName") or dims.get("ApiId")),
        ecs_cluster=clean_name(dims.get("ClusterName")) if "ServiceName" in dims else None,
        ecs_service=clean_name(dims.get("ServiceName")),
        certificate_arn=clean_name(dims.get("CertificateArn"), 2 * NAME_CHARS),
        host=clean_name(labels.get("instance") or labels.get("host") or labels.get("node")),
        job=clean_name(labels.get("job")),
        pod=clean_name(labels.get("pod")),
        namespace=clean_name(labels.get("namespace")),
        link=_link(alert),
    )


def _metrics(alert: Alert) -> tuple[Metric, ...]:
    """The alarm's metrics: its resource first (the parser puts the watched metric there, and
    custom namespaces appear only there), then every AWS metric on the message's Metric line."""
    if not alert.parser.startswith("cloudwatch_alarm"):
        return ()
    found: list[Metric] = []
    candidates = [alert.resource or ""] + [
        line[len("Metric:") :] for line in alert.message.splitlines() if line.startswith("Metric:")
    ]
    for index, candidate in enumerate(candidates):
        if index == 0:
            head, _, dims = candidate.partition("[")
            match = _METRIC_RESOURCE.fullmatch(head.strip())
            if match:
                found.append(Metric(match["ns"], match["name"], _dimensions(dims.rstrip("]"))))
            continue
        for match in _METRIC_IN_TEXT.finditer(candidate):
            found.append(Metric(match["ns"], match["name"], _dimensions(match["dims"] or "")))
    unique: dict[tuple[str, str], Metric] = {}
    for metric in found:
        unique.setdefault((metric.namespace, metric.name), metric)
    return tuple(unique.values())


def _dimensions(text: str) -> dict[str, str]:
    pairs = (part.partition("=") for part in text.split(",") if "=" in part)
    return {key.strip(): value.strip() for key, _, value in pairs if key.strip()}


def _sources(alert: Alert, context: AnalysisContext) -> tuple[Source, ...]:
    """The message without its Metric line (the metric counts once, as a metric); the title as
    it is and split into words (`ServerCpuTooHigh` as `Server Cpu Too High`); the context."""
    spaced = _SEPARATORS.sub(" ", _CAMEL.sub(" ", alert.title))
    message = "\n".join(
        line for line in alert.message.splitlines() if not line.startswith("Metric:")
    )
    sources = [
        Source(message[:MATCH_TEXT_CHARS], None, 1.0),
        Source(alert.title, None, 1.0),
        Source(spaced, clip(alert.title, QUOTE_CHARS), 1.0),
    ]
    sources.extend(
        Source(section.text, None, CONTEXT_FACTOR, f" in the {section.name.replace('_', ' ')}")
        for section in context.sections
    )
    return tuple(sources)


def _severity_origin(alert: Alert, severity: Severity) -> str:
    if severity is not alert.severity:
        return "the incident's severity, set by an earlier and worse alert of the same problem"
    if alert.parser == "custom":
        return "as the sender rated it"
    if alert.parser.startswith("cloudwatch_alarm"):
        return "as the alarm was rated on arrival"
    if alert.parser == "cloudwatch_logs":
        return "from the log line's level"
    if alert.parser in ("alertmanager", "grafana") and "severity" in alert.labels:
        return "from the alert's severity label"
    return "as the alert arrived"


def _link(alert: Alert) -> str | None:
    entry = alert.raw.get("alert") if isinstance(alert.raw, dict) else None
    if not isinstance(entry, dict):
        return None
    for key in _LINK_KEYS:
        value = entry.get(key)
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return value[:LINK_CHARS]
    return None


def _first_valid(pattern: re.Pattern[str], *values: str | None) -> str | None:
    return next((v for v in values if v and pattern.fullmatch(v)), None)


def clean_name(value: str | None, limit: int = NAME_CHARS) -> str | None:
    """A name fit for text and commands: one line, no backticks, clipped, or None when empty."""
    cleaned = " ".join((value or "").split()).replace("`", "'")
    return clip(cleaned, limit) or None


def clip(value: str, limit: int) -> str:
    """Collapse whitespace and cut to `limit` characters with an ellipsis: no field echoes a
    dump of the alert."""
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


# Names several classes read: who a database refused, and how long a caller waited.
DB_ROLE = re.compile(
    r"""(?:for|role|user)\s+["']([\w.@-]{1,63})["']|user '([\w.@-]{1,63})'""", re.IGNORECASE
)
TIMEOUT_AFTER = re.compile(
    r"(?:timed?[\s_-]?out|timeout)\s+(?:after|of)\s+([\d.]+\s*(?:ms|milliseconds?|s|sec(?:onds?)?|"
    r"m|min(?:utes?)?)\b)",
    re.IGNORECASE,
)
