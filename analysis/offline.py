"""The offline analyzer: a rule base that diagnoses an incident when Claude cannot.

It runs when no ANTHROPIC_API_KEY is set or Claude is unavailable, and it is the first analysis
a quick-start user ever sees, so it has to read like a calm senior SRE's first take: specific
to the alert (real alarm, function, instance and role names in the text and in the commands),
concrete (commands that paste as they are), and honest about how little a rule knows
(confidence 0.2-0.55, 0.1 when nothing matched).

How it decides. Each `FailureClass` scores the evidence: its `Signal`s (regular expressions
weighted 3 when the text names the failure outright, 1.5-2 for a strong hint, 1 for a word
that only points its way) searched in the alert's title and message at full weight and in the
gathered context at half weight, plus the CloudWatch metric the alarm watches (weight 3). The
score is the strongest hit plus half of the others, so one clear line outweighs many vague
words. Generic classes (timeouts, 5xx, CPU, queue backlog) are usually symptoms of something
else, so a specific class whose failure is named outright beats them whatever their score:
"too many connections" explains the timeout that came with it, not the other way round.

Each class renders its text through a `playbook` function rather than format strings: the
prose has to phrase around facts the alert does not carry (no role, no region, no instance id)
instead of leaving placeholders, and only code can do that readably.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from analysis.context import AnalysisContext
from analysis.models import Alternative, Diagnosis, RemediationStep
from incidents.models import Alert, AlertStatus, Incident, Severity

# Scoring. A metric match is as strong as a line that names the failure outright: the alarm
# measures exactly that condition.
STRONG = 3.0
METRIC_WEIGHT = STRONG
CONTEXT_FACTOR = 0.5
MAX_SCORE = 8.0
# Below this a class is a lead, not a diagnosis: one vague word does not name a failure.
MIN_SCORE = 1.5
# Confidence: the class's base plus this much per point of score, within the honest band.
CONFIDENCE_PER_POINT = 0.05
MIN_CONFIDENCE = 0.2
MAX_CONFIDENCE = 0.55
UNKNOWN_CONFIDENCE = 0.1
# A runner-up this close (same tier) makes the call a coin toss, and the confidence says so.
AMBIGUITY_RATIO = 0.75
AMBIGUITY_PENALTY = 0.05

# How much alert text may be echoed: quotes are one line, cut around the match.
QUOTE_CHARS = 100
QUOTE_LEAD = 25
TITLE_CHARS = 80
NAME_CHARS = 100
LINK_CHARS = 200
MATCH_TEXT_CHARS = 8000

# What the evidence window around the alert spans in the commands.
LOOKBACK = timedelta(hours=1)
LOOKAHEAD = timedelta(minutes=15)
HISTORY = timedelta(days=1)


# --- the rule model ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Signal:
    """A pattern and what a match says about its class (see the module docstring's weights)."""

    pattern: re.Pattern[str]
    weight: float


def _signal(weight: float, *alternatives: str) -> Signal:
    return Signal(re.compile("|".join(alternatives), re.IGNORECASE), weight)


@dataclass(frozen=True)
class Metric:
    """One CloudWatch metric an alarm watches, as the parsers render it:
    `AWS/EC2/CPUUtilization[InstanceId=i-0abc]`."""

    namespace: str
    name: str
    dimensions: dict[str, str]


@dataclass(frozen=True)
class Hit:
    """One piece of evidence: its weight where it was found, whether its signal names the
    failure outright (wherever it was found), how to quote it, and the whole line it is on
    (two classes quoting one line differently still found the same line)."""

    weight: float
    strong: bool
    quote: str
    line: str


@dataclass(frozen=True)
class Evidence:
    """What a class found: its score, and its hits strongest first, already phrased for text."""

    score: float
    hits: tuple[Hit, ...]

    @property
    def lead(self) -> str:
        return self.hits[0].quote

    @property
    def named_outright(self) -> bool:
        return any(hit.strong for hit in self.hits)


@dataclass(frozen=True)
class Playbook:
    """The rendered text of one class for one alert.

    `hypothesis` is the one-line version used when the class is only the runner-up; `stakes`
    says why the failure matters to users (the severity justification quotes it); `outage`
    marks failures that stop user requests by themselves, the only ones whose severity may be
    raised (see `_severity`).
    """

    root_cause: str
    hypothesis: str
    impact: str
    stakes: str
    outage: bool
    steps: tuple[RemediationStep, ...]
    check_first: tuple[str, ...]


@dataclass(frozen=True)
class FailureClass:
    """One failure class of the rule base.

    `specific` classes name a cause; the others (timeouts, 5xx, CPU, backlog) are usually a
    symptom, and `symptom_note` says why when one of them is the runner-up.
    """

    name: str
    label: str
    signals: tuple[Signal, ...]
    metrics: frozenset[str]
    base_confidence: float
    specific: bool
    playbook: Callable[[Facts, Evidence], Playbook]
    symptom_note: str = ""


# --- facts: what the alert says, read once ----------------------------------------------------

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
_LOG_PREFIX = re.compile(
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
                return f"`{_clip(dims, NAME_CHARS)}` in `{self.metric.namespace}`"
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


def _facts(incident: Incident, alert: Alert, context: AnalysisContext) -> Facts:
    labels = alert.labels
    metrics = _metrics(alert)
    dims: dict[str, str] = {}
    for metric in metrics:
        for key, value in metric.dimensions.items():
            dims.setdefault(key, value)
    raw_text = f"{alert.title}\n{alert.message}"[:MATCH_TEXT_CHARS]
    log_group = _name(labels.get("log_group"))
    group_match = _LAMBDA_GROUP.match(log_group or "")
    arn_place = _ARN_PLACE.search(f"{labels.get('alarm_arn', '')}\n{raw_text}")
    rds_endpoint = _RDS_ENDPOINT.search(raw_text)
    lambda_arn = _LAMBDA_ARN.search(raw_text)
    instance = _INSTANCE_ID.search(raw_text)
    load_balancer = dims.get("LoadBalancer") or dims.get("LoadBalancerName")
    severity = max(alert.severity, incident.severity, key=lambda s: s.rank)
    return Facts(
        title=_clip(alert.title, TITLE_CHARS),
        source=_clip(alert.source, NAME_CHARS),
        firing=alert.status is AlertStatus.FIRING,
        severity=severity,
        severity_origin=_severity_origin(alert, severity),
        occurred_at=_utc(alert.occurred_at),
        opened_at=_utc(incident.opened_at),
        occurrences=incident.occurrences,
        flapping=incident.flapping,
        text=raw_text,
        evidence="\n".join([raw_text, *(section.text for section in context.sections)]),
        sources=_sources(alert, context),
        related=tuple(
            f"{r.incident_id} ({r.title[:TITLE_CHARS]}, {r.status}) ended with: "
            f"{_clip(r.outcome, 120)}"
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
        alarm_name=_name(labels.get("alarm_name")),
        metric=metrics[0] if metrics else None,
        metrics=metrics,
        resource=_name(alert.resource or incident.resource),
        log_group=log_group,
        function_name=_name(
            (group_match.group(1) if group_match else None)
            or dims.get("FunctionName")
            or (lambda_arn.group(1) if lambda_arn else None)
        ),
        instance_id=_name(dims.get("InstanceId") or (instance.group(0) if instance else None)),
        db_instance=_name(
            dims.get("DBInstanceIdentifier") or (rds_endpoint.group(1) if rds_endpoint else None)
        ),
        db_cluster=_name(dims.get("DBClusterIdentifier")),
        queue_name=_name(dims.get("QueueName")),
        table_name=_name(dims.get("TableName")),
        load_balancer=_name(load_balancer),
        api_name=_name(dims.get("ApiName") or dims.get("ApiId")),
        ecs_cluster=_name(dims.get("ClusterName")) if "ServiceName" in dims else None,
        ecs_service=_name(dims.get("ServiceName")),
        certificate_arn=_name(dims.get("CertificateArn"), 2 * NAME_CHARS),
        host=_name(labels.get("instance") or labels.get("host") or labels.get("node")),
        job=_name(labels.get("job")),
        pod=_name(labels.get("pod")),
        namespace=_name(labels.get("namespace")),
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
        Source(spaced, _clip(alert.title, QUOTE_CHARS), 1.0),
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


def _name(value: str | None, limit: int = NAME_CHARS) -> str | None:
    cleaned = " ".join((value or "").split()).replace("`", "'")
    return _clip(cleaned, limit) or None


def _clip(value: str, limit: int) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- scoring --------------------------------------------------------------------------------


def _evidence(rule: FailureClass, facts: Facts) -> Evidence | None:
    """Each signal counts once, where it is found first. The metric goes first among equals:
    for an alarm, the metric it watches says more than words in its name."""
    hits: list[Hit] = []
    metric = next((m for m in facts.metrics if m.name.lower() in rule.metrics), None)
    if metric:
        alarm = f"alarm `{facts.alarm_name}` on " if facts.alarm_name else "the alarm on "
        quote = f"{alarm}`{metric.name}`"
        hits.append(Hit(METRIC_WEIGHT, True, quote, quote))
    for signal in rule.signals:
        for source in facts.sources:
            match = signal.pattern.search(source.search)
            if match:
                quote = source.quote or _snippet(source.search, match)
                hits.append(
                    Hit(
                        signal.weight * source.factor,
                        signal.weight >= STRONG,
                        f"`{quote}`{source.where}",
                        _line(source.search, match) + source.where,
                    )
                )
                break
    if not hits:
        return None
    hits.sort(key=lambda hit: hit.weight, reverse=True)
    score = hits[0].weight + 0.5 * sum(hit.weight for hit in hits[1:])
    return Evidence(min(score, MAX_SCORE), tuple(hits))


def _line_bounds(text: str, match: re.Match[str]) -> tuple[int, int]:
    end = text.find("\n", match.end())
    return text.rfind("\n", 0, match.start()) + 1, len(text) if end < 0 else end


def _line(text: str, match: re.Match[str]) -> str:
    start, end = _line_bounds(text, match)
    return text[start:end].strip()


def _snippet(text: str, match: re.Match[str]) -> str:
    """The line of the match without its log prefix (time, request id, level), cut to
    QUOTE_CHARS from a little before the match: enough to recognise, never a dump."""
    start, end = _line_bounds(text, match)
    prefix = _LOG_PREFIX.match(text, start, end)
    if prefix and prefix.end() <= match.start():
        start = prefix.end()
    cut_start = max(start, match.start() - QUOTE_LEAD) if end - start > QUOTE_CHARS else start
    cut_end = min(end, cut_start + QUOTE_CHARS)
    # Cut between words, never inside one (nor inside the match).
    if cut_start > start and not text[cut_start - 1].isspace():
        space = text.find(" ", cut_start, match.start())
        cut_start = space + 1 if space >= 0 else cut_start
    if cut_end < end and not text[cut_end].isspace():
        space = text.rfind(" ", match.end(), cut_end)
        cut_end = space if space >= 0 else cut_end
    line = text[cut_start:cut_end].strip()
    line = ("…" if cut_start > start else "") + line + ("…" if cut_end < end else "")
    return " ".join(line.split()).replace("`", "'")


def _rank(rule: FailureClass, evidence: Evidence) -> tuple[int, float]:
    """Specific classes whose failure is named outright come first; then the score."""
    return (1 if rule.specific and evidence.named_outright else 0, evidence.score)


def _confidence(
    rule: FailureClass,
    evidence: Evidence,
    runner: tuple[FailureClass, Evidence] | None,
) -> float:
    confidence = rule.base_confidence + CONFIDENCE_PER_POINT * evidence.score
    if runner is not None:
        runner_rank = _rank(*runner)
        best_rank = _rank(rule, evidence)
        if runner_rank[0] == best_rank[0] and runner_rank[1] >= AMBIGUITY_RATIO * best_rank[1]:
            confidence -= AMBIGUITY_PENALTY
    return round(min(MAX_CONFIDENCE, max(MIN_CONFIDENCE, confidence)), 2)


# --- shared command builders -------------------------------------------------------------------


def _q(value: str) -> str:
    return shlex.quote(value)


def _iso(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _region(facts: Facts) -> str:
    return f" --region {facts.region}" if facts.region else ""


def _dim(name: str, value: str) -> str:
    return _q(f"Name={name},Value={value}")


def _metric_command(
    facts: Facts, namespace: str, metric: str, dimension: str, statistic: str = "Maximum"
) -> str:
    """`dimension` is already quoted `Name=...,Value=...` pairs (see `_dim`), one that expands
    a shell variable when the alert does not name the resource, or empty for none."""
    dimensions = f"--dimensions {dimension} " if dimension else ""
    return (
        f"aws cloudwatch get-metric-statistics --namespace {_q(namespace)} --metric-name "
        f"{_q(metric)} {dimensions}--start-time {_iso(facts.start)} --end-time {_iso(facts.end)} "
        f"--period 60 --statistics {statistic}{_region(facts)}"
    )


def _logs_command(facts: Facts, group: str, pattern: str) -> str:
    return (
        f"aws logs filter-log-events --log-group-name {_q(group)} --start-time {_ms(facts.start)} "
        f"--end-time {_ms(facts.end)} --filter-pattern {_q(pattern)}{_region(facts)}"
    )


def _insights_command(facts: Facts, group: str, query: str) -> str:
    return (
        f"aws logs start-query --log-group-name {_q(group)} "
        f"--start-time {int(facts.start.timestamp())} --end-time {int(facts.end.timestamp())} "
        f"--query-string {_q(query)}{_region(facts)}"
    )


def _ssm_command(facts: Facts, instance: str, commands: list[str]) -> str:
    parameters = json.dumps({"commands": commands})
    return (
        f"aws ssm send-command --instance-ids {_q(instance)} --document-name AWS-RunShellScript "
        f"--parameters {_q(parameters)}{_region(facts)}"
    )


def _alarm_history_step(facts: Facts) -> RemediationStep | None:
    if not facts.alarm_name:
        return None
    return RemediationStep(
        action=(
            f"Read the state history of alarm `{facts.alarm_name}`: whether it flaps or has "
            "been climbing for hours changes how urgent this is."
        ),
        command=(
            f"aws cloudwatch describe-alarm-history --alarm-name {_q(facts.alarm_name)} "
            f"--history-item-type StateUpdate --start-date {_iso(facts.day_before)} "
            f"--max-records 20{_region(facts)}"
        ),
    )


def _recent_changes_step(facts: Facts) -> RemediationStep:
    return RemediationStep(
        action=(
            "List what changed in the account in the hour before the alert (deploys, "
            "configuration and IAM changes): most incidents start with a change."
        ),
        command=(
            f"aws cloudtrail lookup-events --start-time {_iso(facts.start)} "
            f"--end-time {_iso(facts.occurred_at)} --lookup-attributes "
            "AttributeKey=ReadOnly,AttributeValue=false --max-results 50 "
            f"--query 'Events[].[EventTime,EventName,Username]' --output table{_region(facts)}"
        ),
    )


def _link_step(facts: Facts) -> RemediationStep | None:
    if not facts.link:
        return None
    return RemediationStep(
        action="Open the alert's source graph to see the expression and when it started.",
        command=facts.link,
    )


def _steps(*steps: RemediationStep | None) -> tuple[RemediationStep, ...]:
    return tuple(step for step in steps if step is not None)


def _step(action: str, command: str | None = None) -> RemediationStep:
    return RemediationStep(action=action, command=command)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _find(pattern: re.Pattern[str], text: str, limit: int = NAME_CHARS) -> str | None:
    """The first non-empty group of the first match, as a clean name."""
    match = pattern.search(text)
    if not match:
        return None
    return _name(next((g for g in match.groups() if g), None), limit)


# --- connection-pool exhaustion -------------------------------------------------------------

_POSTGRES = re.compile(
    r"postgres|psql|libpq|\bpg[_ ]|sqlstate 53300|remaining connection slots|too many clients",
    re.IGNORECASE,
)
_MYSQL = re.compile(r"mysql|mariadb|ER_CON_COUNT|max_user_connections", re.IGNORECASE)
_DB_ROLE = re.compile(
    r"""(?:for|role|user)\s+["']([\w.@-]{1,63})["']|user '([\w.@-]{1,63})'""", re.IGNORECASE
)
_SERVER_LIMIT = re.compile(
    r"too many (?:client )?connections|too many clients|remaining connection slots|"
    r"ER_CON_COUNT|max_user_connections|max number of clients",
    re.IGNORECASE,
)
_CODE_LOCATION = re.compile(
    r"\bat\s+(?:[\w.$<>]+\s?\()?(?:[^\s()]*/)?([\w.-]+\.(?:js|mjs|cjs|ts|java|kt|py|go|rb|cs|php):\d+)"
    r"|File \"(?:[^\"]*/)?([\w.-]+\.py)\", line (\d+)"
)


@dataclass(frozen=True)
class Engine:
    """The SQL that answers "who holds the connections" on one database engine."""

    name: str
    sessions: str
    limits: str
    idle_cleanup: str
    proxy: str


def _engine(text: str, role: str | None) -> Engine | None:
    who = f"'{role}'" if role else None
    if _POSTGRES.search(text):
        role_filter = f"usename = {who} AND " if who else ""
        return Engine(
            name="PostgreSQL",
            sessions="SELECT count(*), usename, state FROM pg_stat_activity GROUP BY 2,3;",
            limits=(
                f"SELECT rolname, rolconnlimit FROM pg_roles WHERE rolname = {who}; "
                "SHOW max_connections;"
                if who
                else "SHOW max_connections; SHOW superuser_reserved_connections;"
            ),
            idle_cleanup=(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {role_filter}"
                "state = 'idle in transaction' AND state_change < now() - interval '5 minutes';"
            ),
            proxy="RDS Proxy or pgbouncer (transaction pooling)",
        )
    if _MYSQL.search(text):
        user_filter = f"user = {who} AND " if who else ""
        return Engine(
            name="MySQL",
            sessions=(
                "SELECT user, command, COUNT(*) FROM information_schema.processlist "
                "GROUP BY user, command;"
            ),
            limits=(
                "SHOW VARIABLES LIKE 'max%connections'; SHOW STATUS LIKE 'Max_used_connections';"
            ),
            idle_cleanup=(
                "SELECT CONCAT('KILL ', id, ';') FROM information_schema.processlist WHERE "
                f"{user_filter}command = 'Sleep' AND time > 300;"
            ),
            proxy="RDS Proxy or ProxySQL",
        )
    return None


def _code_location(text: str) -> str | None:
    match = _CODE_LOCATION.search(text)
    if not match:
        return None
    if match.group(1):
        return _name(match.group(1))
    return _name(f"{match.group(2)}:{match.group(3)}")


def _connection_pool(f: Facts, ev: Evidence) -> Playbook:
    role = _find(_DB_ROLE, f.evidence, 63)
    engine = _engine(f.evidence, role)
    db = engine.name if engine else "the database"
    db_kind = engine.name if engine else "database"
    as_role = f" as `{role}`" if role else ""
    of_role = f"`{role}` " if role else ""
    location = _code_location(f.evidence)
    rds = f.db_instance or f.db_cluster
    after = _find(_TIMEOUT_AFTER, f.evidence, 30)
    call = f"the connect call at `{location}`" if location else "each new connection attempt"
    gives_up = f"the caller gives up after {after}" if after else "callers see errors or timeouts"
    server_side = bool(_SERVER_LIMIT.search(f.evidence))
    watched = any(m.name.lower() == "databaseconnections" for m in f.metrics)
    if watched and not server_side:
        where = f"`{rds}`" if rds else "the database"
        root = (
            f"{_cap(f.subject or 'the database')} holds more connections than its alarm "
            f"allows ({ev.lead}): it is heading for max_connections, after which it refuses "
            "new ones and every request that needs one fails. Connections that leak or idle "
            "in pools, pools that together exceed the limit, or a scale-out that multiplied "
            "them are the usual causes."
        )
        impact = (
            f"Nothing is refused yet if the count is still below max_connections; once it "
            f"reaches it, every client of {where} that needs a new connection fails, whichever "
            "service it belongs to."
        )
        stakes = (
            "at max_connections every request that needs a new connection fails, for every "
            "service on the database"
        )
    elif server_side:
        limit = f" for role `{role}`: the role's connection limit" if role else ": its limit"
        root = (
            f"{_cap(db)} is refusing new connections{limit} is used up ({ev.lead}), so {call} "
            f"fails and {gives_up}. This is connection-pool exhaustion, most often from "
            "connections the application leaks (checked out, never returned), pools that "
            "together exceed the limit, or a scale-out that multiplied the pools."
        )
        impact = (
            f"Requests that need a new {db_kind} connection{as_role} fail or wait until one is "
            f"released, so {f.service} returns errors or stalls. Anything else that connects"
            f"{as_role} to the same database is refused too, so the blast radius can reach "
            "beyond this service."
        )
        stakes = (
            f"while {db} refuses new connections, every request that needs one fails, so users "
            "see errors now rather than later"
        )
    else:
        root = (
            f"The application's {db_kind} connection pool is exhausted ({ev.lead}): every "
            f"connection is checked out, so {call} waits and {gives_up}. Connections are held "
            "too long (slow queries, long transactions, leaks) or the pool is too small for the "
            "load."
        )
        impact = (
            f"Requests to {f.service} that need a {db_kind} connection queue behind the pool "
            "and fail once they wait too long; the database itself may be healthy, so other "
            "services are unlikely to be affected unless they share the same pool settings."
        )
        stakes = (
            "while the pool has no free connection, every request that needs one waits and then "
            "fails"
        )
    if rds:
        rds_action = f"Graph DatabaseConnections on `{rds}` for the hour around the alert"
        dimension = _dim("DBInstanceIdentifier" if f.db_instance else "DBClusterIdentifier", rds)
    else:
        rds_action = (
            "If the database runs on RDS, graph DatabaseConnections for the hour around the "
            "alert (set DB_INSTANCE from `aws rds describe-db-instances --query "
            "'DBInstances[].DBInstanceIdentifier'`)"
        )
        dimension = 'Name=DBInstanceIdentifier,Value="$DB_INSTANCE"'
    role_limit = role and engine and engine.name == "PostgreSQL"
    steps = _steps(
        _step(
            "Connect with an admin role and count sessions by role and state: many `idle` or "
            f"`idle in transaction` sessions{' for `' + role + '`' if role else ''} mean "
            "connections are held but not used.",
            engine.sessions,
        )
        if engine
        else _step(
            "List the database's sessions by user and state (PostgreSQL: pg_stat_activity; "
            "MySQL: information_schema.processlist) to see who holds the connections."
        ),
        _step(
            "Compare them with the limits that produced the error: "
            + (
                "the role's own connection limit and the server's max_connections."
                if role_limit
                else "the server's connection limits."
            ),
            engine.limits,
        )
        if engine
        else None,
        _step(
            f"{rds_action}: a plateau at the limit confirms exhaustion, a sudden step points "
            "at a deploy or a scale-out.",
            _metric_command(f, "AWS/RDS", "DatabaseConnections", dimension),
        ),
        _step(
            f"Relieve the pressure now: end {of_role}sessions that have sat idle in a "
            "transaction for over five minutes; they hold connections and locks and do no work.",
            engine.idle_cleanup,
        )
        if engine
        else None,
        _step(
            "Look for a connection leak: a connection checked out and not released on an error "
            "path"
            + (f", starting at `{location}` where this failure was raised" if location else "")
            + "; every checkout must be released in a finally block or a context manager."
        ),
        _step(
            "Size the pools: pool size × instances (× concurrent Lambda invocations, if Lambda "
            f"connects) must stay below {'the role' if role_limit else 'the server'}'s limit, "
            "with headroom for admin sessions and migrations."
        ),
        _step(
            f"Put {engine.proxy if engine else 'RDS Proxy or a pooler such as pgbouncer'} in "
            "front of the database so application pools share a bounded set of server "
            "connections.",
            "RDS console → Proxies → Create proxy",
        ),
    )
    return Playbook(
        root_cause=root,
        hypothesis=f"Connection-pool exhaustion: {db} has no free connection to give{as_role}.",
        impact=impact,
        stakes=stakes,
        outage=True,
        steps=_steps(*steps, _alarm_history_step(f)),
        check_first=(
            f"{'`' + role + '` sessions' if role else 'Sessions'} by state: how many, and how many "
            "idle or idle in transaction?",
            f"DatabaseConnections on {'`' + rds + '`' if rds else 'the RDS instance, if it is one'}"
            ": flat at the limit, or a sudden step?",
            "Whether a deploy or scale-out (more tasks, pods or Lambda concurrency) came just "
            f"before {f.since}",
            f"Whether other services that share {'`' + role + '`' if role else 'the database'} "
            "are failing too",
        ),
    )


# --- timeouts ---------------------------------------------------------------------------------

_TIMEOUT_AFTER = re.compile(
    r"(?:timed?[\s_-]?out|timeout)\s+(?:after|of)\s+([\d.]+\s*(?:ms|milliseconds?|s|sec(?:onds?)?|"
    r"m|min(?:utes?)?)\b)",
    re.IGNORECASE,
)
_TIMEOUT_TARGET = re.compile(
    r"host=['\"]([\w.-]+)['\"]|E(?:SOCKET)?TIMEDOUT\s+([\w.:-]+)|upstream: \"?https?://([\w.:-]+)"
    r"|(?:connect(?:ing)?|calling|request) to ([\w.-]+(?::\d+)?)",
    re.IGNORECASE,
)


def _reach_command(target: str) -> str:
    """HTTPS for a bare name (or ports 80/443), a plain TCP connect for any other port."""
    host, _, port = target.rpartition(":")
    if port.isdigit() and port not in ("80", "443"):
        return f"nc -vz -w 5 {_q(host)} {port}"
    name = host if port.isdigit() else target
    return f"curl -sS -o /dev/null -m 10 -w '%{{http_code}} %{{time_total}}s\\n' https://{name}/"


def _timeouts(f: Facts, ev: Evidence) -> Playbook:
    after = _find(_TIMEOUT_AFTER, f.evidence, 30)
    target = _find(_TIMEOUT_TARGET, f.evidence)
    waiting = f" waiting on `{target}`" if target else ""
    if f.function_name:
        group = f.log_group or f"/aws/lambda/{f.function_name}"
        root = (
            f"Lambda function `{f.function_name}` is running into its configured timeout "
            f"({ev.lead}): invocations wait{waiting} on something slower than the timeout "
            "allows. The usual culprit is a downstream call (database, HTTP API, another AWS "
            "service) without a shorter timeout of its own; a VPC cold start or too little "
            "memory, and so CPU, can add to it."
        )
        steps = _steps(
            _step(
                "Read the timed-out invocations and the lines just before each: the last line "
                "before the timeout shows the call that never returned.",
                _logs_command(f, group, '"Task timed out"'),
            ),
            _step(
                "Check the configured timeout and memory: Lambda gives CPU in proportion to "
                "memory, so a starved function is also a slow one.",
                f"aws lambda get-function-configuration --function-name {_q(f.function_name)} "
                "--query '{Timeout:Timeout,MemorySize:MemorySize,VpcSubnets:VpcConfig.SubnetIds}'"
                f"{_region(f)}",
            ),
            _step(
                "Graph Duration against the timeout: a flat line at the timeout means calls "
                "hang; a rising trend means a dependency is slowing down.",
                _metric_command(f, "AWS/Lambda", "Duration", _dim("FunctionName", f.function_name)),
            ),
            _step(
                "If tracing is on, find the slow segment in the trace map.",
                "CloudWatch console → X-Ray traces → Trace map",
            ),
            _step(
                "Give every outbound call a timeout shorter than the function's, with retries "
                "and backoff, so one slow dependency fails fast instead of burning the "
                "invocation."
            ),
            _step(
                "Raise the timeout or memory only once you know the work legitimately takes "
                "longer; otherwise it only hides the stall."
            ),
        )
    else:
        after_text = f" after {after}" if after else ""
        root = (
            f"{_cap(f.service)} is timing out{after_text}{waiting} ({ev.lead}): a call takes "
            "longer than its caller will wait. A timeout is usually a symptom: a slow or "
            "saturated dependency, a network path that drops packets (security group, NACL, "
            "NAT), or lock contention."
        )
        steps = _steps(
            _link_step(f),
            _step(
                f"Read the errors around {f.occurred_at:%H:%M} UTC and find which call timed out.",
                _logs_command(f, f.log_group, "?timeout ?timed ?Timeout ?ETIMEDOUT")
                if f.log_group
                else None,
            ),
            _step(
                f"Check that `{target}` answers from where the caller runs, and how fast.",
                _reach_command(target),
            )
            if target
            else _step(
                "Identify the slow dependency: compare the latency of every downstream call in "
                "the same minutes (traces, or the dependency's own latency metric)."
            ),
            _step(
                f"Graph TargetResponseTime on `{f.load_balancer}` to see whether the targets "
                "themselves are slow.",
                _metric_command(
                    f,
                    "AWS/ApplicationELB",
                    "TargetResponseTime",
                    _dim("LoadBalancer", f.load_balancer),
                ),
            )
            if f.load_balancer
            else None,
            _step(
                "Check the dependency's saturation (CPU, connections, locks) and any recent "
                "change to it or to the network path (security groups, NACLs, NAT gateway)."
            ),
            _step(
                "Set client timeouts shorter than the caller's own deadline and retry with "
                "backoff and jitter, so slowness fails fast instead of piling up."
            ),
        )
    return Playbook(
        root_cause=root,
        hypothesis=(
            f"A plain timeout{waiting}: a dependency answers more slowly than "
            f"{'the ' + after + ' ' if after else ''}its caller allows."
        ),
        impact=(
            f"Requests to {f.service} that hit the timeout fail after making the caller wait "
            "the full time; retries multiply the load on whatever is slow, and threads or "
            "connections held while waiting can starve everything else the service does."
        ),
        stakes="requests that time out fail after making users wait the full timeout",
        outage=True,
        steps=_steps(*steps, _alarm_history_step(f)),
        check_first=(
            f"Which downstream call the timing-out requests were waiting on{waiting}",
            "Whether latency rose gradually (saturation) or jumped at once (a change, an "
            "outage downstream)",
            f"Deploys or configuration changes just before {f.since}",
        ),
    )


# --- out of memory / killed -----------------------------------------------------------------


_OOM_KILLED = re.compile(
    r"out of memory|OutOfMemory|\bOOM[\s_-]?kill(?:ed|er)?\b|OOMKilled|cannot allocate memory"
    r"|\bMemoryError\b|heap out of memory|signal: killed|exit code 137|killed process \d+"
    r"|memory (?:limit )?exceeded|GC overhead limit exceeded|\bENOMEM\b",
    re.IGNORECASE,
)


def _ecs_steps(f: Facts, metric: str) -> tuple[RemediationStep, ...]:
    """An ECS service's own view of memory or CPU: the service metric and why tasks stopped."""
    if not f.ecs_service:
        return ()
    cluster = _q(f.ecs_cluster or "default")
    service = _q(f.ecs_service)
    dimensions = " ".join(
        [_dim("ServiceName", f.ecs_service)]
        + ([_dim("ClusterName", f.ecs_cluster)] if f.ecs_cluster else [])
    )
    stopped = (
        f"aws ecs list-tasks --cluster {cluster} --service-name {service} --desired-status "
        f"STOPPED --query 'taskArns[:10]' --output text{_region(f)}"
    )
    return (
        _step(
            f"Graph {metric} of ECS service `{f.ecs_service}` (a share of what its tasks "
            "reserve): a steady climb is a leak or growing load, a step is a deploy.",
            _metric_command(f, "AWS/ECS", metric, dimensions),
        ),
        _step(
            "Read why recent tasks stopped (OutOfMemoryError and failed health checks show there).",
            f"aws ecs describe-tasks --cluster {cluster} --tasks $({stopped}) --query "
            f"'tasks[].[stoppedReason,containers[0].reason]'{_region(f)}",
        ),
        _step(
            "If the load is real, add tasks (set NEW_COUNT) while the cause is found.",
            f"aws ecs update-service --cluster {cluster} --service {service} --desired-count "
            f'"$NEW_COUNT"{_region(f)}',
        ),
    )


def _oom(f: Facts, ev: Evidence) -> Playbook:
    """A kill (in the text) is an outage of the work in flight; a memory alarm or a "high
    memory" alert is pressure, which only slows things until it becomes a kill."""
    killed = bool(_OOM_KILLED.search(f.evidence))
    if f.function_name and killed:
        group = f.log_group or f"/aws/lambda/{f.function_name}"
        root = (
            f"Lambda function `{f.function_name}` is running out of memory ({ev.lead}): an "
            "invocation needed more than its configured memory and the runtime was killed. "
            "Either the payloads grew, something holds memory across invocations in the "
            "execution environment, or the setting was always tight."
        )
        steps = _steps(
            _step(
                "Compare Max Memory Used with the configured size in the REPORT lines (then "
                "read the rows with `aws logs get-query-results` and the returned queryId).",
                _insights_command(
                    f,
                    group,
                    'filter @type = "REPORT" | stats max(@maxMemoryUsed / 1000 / 1000) as '
                    "max_used_mb, max(@memorySize / 1000 / 1000) as size_mb by bin(5m)",
                ),
            ),
            _step(
                "Read the killed invocations to see which input triggered them.",
                _logs_command(
                    f, group, '?"signal: killed" ?"Runtime.OutOfMemory" ?"out of memory"'
                ),
            ),
            _step(
                "If the function simply needs more, raise its memory (set NEW_MEMORY_MB to about "
                "twice the Max Memory Used); CPU grows with it.",
                f"aws lambda update-function-configuration --function-name {_q(f.function_name)} "
                f'--memory-size "$NEW_MEMORY_MB"{_region(f)}',
            ),
            _step(
                "If usage grows invocation after invocation, look for state cached in globals "
                "(module-level lists, caches without bounds) and release it."
            ),
        )
        where = f"Lambda function `{f.function_name}`"
    elif killed and (f.pod or re.search(r"OOMKilled|exit code 137", f.evidence, re.I)):
        pod = f.pod or "the pod"
        ns = f"-n {_q(f.namespace)} " if f.namespace else ""
        root = (
            f"The container in {f.subject if f.pod else 'the pod'} was OOM-killed ({ev.lead}): "
            "it crossed its memory limit and the kernel ended it, so it restarts and drops "
            "the work in flight. Either the limit is below what the workload needs, or "
            "memory leaks until it hits the limit."
        )
        steps = _steps(
            _step(
                "Confirm the kill and count restarts: Last State should read OOMKilled, exit "
                "code 137.",
                f"kubectl {ns}describe pod {_q(pod)}" if f.pod else None,
            ),
            _step(
                "See what the pods use now against their limits.",
                f"kubectl {ns}top pod --sort-by=memory",
            ),
            _step(
                "Read the container's limits and requests.",
                f"kubectl {ns}get pod {_q(pod)} -o jsonpath='{{.spec.containers[*].resources}}'"
                if f.pod
                else None,
            ),
            _step(
                "If usage climbs steadily until the kill, it is a leak: take a heap profile "
                "before the limit is reached. If it is flat but high, raise the limit."
            ),
        )
        where = f.subject or "the pod"
    else:
        host_checks = [
            "free -m",
            "ps aux --sort=-rss | head -15",
            "dmesg -T | grep -iE 'killed process|out of memory' | tail -20",
        ]
        root = (
            f"Memory on {f.service} is under pressure ({ev.lead}). When it runs out, the "
            "kernel's OOM killer ends the largest process (or the runtime throws out-of-memory "
            "errors), so the thing to find is which process grows and whether it ever stops."
        )
        promql = (
            f'node_memory_MemAvailable_bytes{{instance="{f.host}"}} / '
            f'node_memory_MemTotal_bytes{{instance="{f.host}"}}'
        )
        restart = _step(
            "Restart the process that grows if it is close to the limit, to buy time; then "
            "take a heap profile of the next instance before it reaches the same point."
        )
        steps = (
            _steps(*_ecs_steps(f, "MemoryUtilization"), _link_step(f), restart)
            if f.ecs_service
            else _steps(
                _step(
                    "See the biggest processes and any OOM kills on the host.",
                    _ssm_command(f, f.instance_id, host_checks),
                )
                if f.instance_id
                else _step(
                    "On the host, see the biggest processes and any OOM kills.",
                    "; ".join(host_checks),
                ),
                _step(
                    f"Graph available memory on `{f.host}` over the last day: a steady climb is a "
                    "leak, a step is a change in load or a deploy.",
                    promql,
                )
                if f.host
                else _step(
                    "Graph memory for the hour around the alert: a steady climb is a leak, a step "
                    "is a change in load or a deploy.",
                    _metric_command(
                        f, "CWAgent", "mem_used_percent", _dim("InstanceId", f.instance_id)
                    )
                    if f.instance_id
                    else None,
                ),
                _link_step(f),
                restart,
                _step(
                    "Right-size the host or container only once you know it is load, not a leak."
                ),
            )
        )
        where = f.service
    return Playbook(
        root_cause=root,
        hypothesis=f"Memory exhaustion on {where}: the process is killed or fails to allocate.",
        impact=(
            f"Each kill on {where} drops the requests in flight and pays a restart (or a cold "
            "start); while memory is tight, garbage collection and swapping slow everything "
            "else down too."
            if killed
            else f"While memory on {where} is tight, garbage collection and swapping slow its "
            "requests down; if it runs out, the largest process is killed and the requests in "
            "flight are lost."
        ),
        stakes=(
            "each kill drops the work in flight, and it repeats until memory is fixed"
            if killed
            else "memory pressure slows requests now and ends in killed processes if it grows"
        ),
        outage=killed,
        steps=_steps(*steps, _alarm_history_step(f)),
        check_first=(
            "Memory used against the limit: close to it on every run, or climbing over time?",
            "Whether a deploy or a larger input started it",
            f"How often it has happened since {f.since}",
        ),
    )


# --- disk full --------------------------------------------------------------------------------


def _disk_full(f: Facts, ev: Evidence) -> Playbook:
    if f.db_instance:
        db = _q(f.db_instance)
        root = (
            f"RDS instance `{f.db_instance}` is running out of storage ({ev.lead}). At zero it "
            "goes into storage-full and stops accepting writes. On RDS the usual growth is "
            "data itself, write-ahead logs kept by an inactive replication slot, or logs and "
            "temporary files from a heavy query."
        )
        steps = _steps(
            _step(
                "Graph FreeStorageSpace to see how fast it falls and so how much time is left.",
                _metric_command(
                    f,
                    "AWS/RDS",
                    "FreeStorageSpace",
                    _dim("DBInstanceIdentifier", f.db_instance),
                    "Minimum",
                ),
            ),
            _step(
                "Read the allocated storage and whether storage autoscaling is on "
                "(MaxAllocatedStorage).",
                f"aws rds describe-db-instances --db-instance-identifier {db} --query "
                "'DBInstances[0].{Allocated:AllocatedStorage,Max:MaxAllocatedStorage,"
                f"Type:StorageType}}'{_region(f)}",
            ),
            _step(
                "If it will fill before the cause is fixed, grow it now (set NEW_GB above the "
                "current allocation) and turn on autoscaling with a ceiling.",
                f"aws rds modify-db-instance --db-instance-identifier {db} --allocated-storage "
                f'"$NEW_GB" --max-allocated-storage "$((NEW_GB * 2))" --apply-immediately'
                f"{_region(f)}",
            ),
            _step(
                "On PostgreSQL, check for a replication slot holding WAL back: an inactive slot "
                "keeps every log segment since it stopped.",
                "SELECT slot_name, active, pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), "
                "restart_lsn)) AS retained FROM pg_replication_slots;",
            ),
            _step(
                "Find the largest tables and indexes, and whether one grew suddenly.",
                "SELECT relname, pg_size_pretty(pg_total_relation_size(relid)) FROM "
                "pg_catalog.pg_statio_user_tables ORDER BY pg_total_relation_size(relid) DESC "
                "LIMIT 10;",
            ),
        )
        stakes_where = f"`{f.db_instance}`"
    elif f.function_name:
        root = (
            f"Lambda function `{f.function_name}` filled its /tmp ({ev.lead}): files written "
            "there survive between invocations of the same execution environment, so anything "
            "not cleaned up accumulates until writes fail."
        )
        steps = _steps(
            _step(
                "Read the failing invocations to see what was being written.",
                _logs_command(
                    f, f.log_group or f"/aws/lambda/{f.function_name}", '"No space left on device"'
                ),
            ),
            _step(
                "Delete temporary files at the end of each invocation (or use a fresh "
                "tempfile.TemporaryDirectory per invocation)."
            ),
            _step(
                "If the work needs more scratch space, raise the function's ephemeral storage "
                "(up to 10240 MB).",
                f"aws lambda update-function-configuration --function-name {_q(f.function_name)} "
                f"--ephemeral-storage '{{\"Size\": 2048}}'{_region(f)}",
            ),
        )
        stakes_where = f"`{f.function_name}`"
    else:
        checks = ["df -h", "df -i", "du -xh / 2>/dev/null | sort -rh | head -20"]
        root = (
            f"A filesystem on {f.service} is full or nearly full ({ev.lead}). When it fills, "
            "writes fail: logs stop, databases refuse transactions, uploads and temp files "
            "error out. The usual culprits are logs without rotation, core dumps, a runaway "
            "temp directory, or data that simply grew."
        )
        steps = _steps(
            _step(
                "See which filesystem is full (space and inodes) and what fills it.",
                _ssm_command(f, f.instance_id, checks) if f.instance_id else "; ".join(checks),
            ),
            _step(
                "Free space safely first: rotate or compress logs, remove old core dumps and "
                "temp files; do not delete files a running process still holds open (check with "
                "`lsof +L1`)."
            ),
            _step(
                f"If the data legitimately grew, enlarge the volume attached to `{f.instance_id}` "
                "and then the filesystem (growpart, resize2fs or xfs_growfs).",
                f"aws ec2 describe-volumes --filters Name=attachment.instance-id,Values="
                f"{_q(f.instance_id)} --query 'Volumes[].[VolumeId,Size,Attachments[0].Device]'"
                f"{_region(f)}",
            )
            if f.instance_id
            else _step(
                "If the data legitimately grew, enlarge the volume and then the filesystem."
            ),
            _step("Add log rotation or retention for whatever filled it, so it does not recur."),
        )
        stakes_where = f.service
    return Playbook(
        root_cause=root,
        hypothesis=f"Storage exhaustion on {stakes_where}: writes fail once it fills.",
        impact=(
            f"Once storage on {stakes_where} is full, every write fails: requests that store "
            "anything error out, and logs stop just when they are needed. Until then it is a "
            "countdown, and the trend says how long."
        ),
        stakes=(
            "a full disk stops writes outright; until it fills it is a countdown, and the "
            "trend says how long"
        ),
        outage=False,
        steps=_steps(*steps, _alarm_history_step(f)),
        check_first=(
            "How much space is left and how fast it falls: hours or weeks?",
            "What grew: data, logs, WAL, temp files?",
            "Whether writes are already failing",
        ),
    )


# --- throttling and rate limits -------------------------------------------------------------

_AWS_OPERATION = re.compile(r"when calling the (\w{2,64}) operation")


def _throttling(f: Facts, ev: Evidence) -> Playbook:
    operation = _find(_AWS_OPERATION, f.evidence, 64)
    if f.function_name and not operation:
        fn = _q(f.function_name)
        root = (
            f"Lambda function `{f.function_name}` is being throttled ({ev.lead}): invocations "
            "exceed the concurrency available to it, its reserved concurrency or the account's "
            "regional limit that every function shares. A burst of events, a retry storm or "
            "slower invocations (each holding concurrency longer) all lead here."
        )
        steps = _steps(
            _step(
                "Read its reserved concurrency and the account limit.",
                f"aws lambda get-function-concurrency --function-name {fn}{_region(f)} && "
                f"aws lambda get-account-settings --query AccountLimit{_region(f)}",
            ),
            _step(
                "Graph ConcurrentExecutions against Throttles: at the ceiling means demand, "
                "below it means a reserved-concurrency cap.",
                _metric_command(
                    f, "AWS/Lambda", "ConcurrentExecutions", _dim("FunctionName", f.function_name)
                ),
            ),
            _step(
                "Check whether Duration rose at the same time: slower invocations hold "
                "concurrency longer and throttle at the same traffic.",
                _metric_command(f, "AWS/Lambda", "Duration", _dim("FunctionName", f.function_name)),
            ),
            _step(
                "Raise reserved concurrency if the function is capped below its demand (set "
                "NEW_LIMIT); for the account limit, request a quota increase.",
                f"aws lambda put-function-concurrency --function-name {fn} "
                f'--reserved-concurrent-executions "$NEW_LIMIT"{_region(f)}',
            ),
            _step(
                "If the account limit is what binds, request a higher concurrency quota.",
                "Service Quotas console → AWS Lambda → Concurrent executions",
            ),
        )
        where = f"Lambda function `{f.function_name}`"
    elif f.table_name:
        table = _q(f.table_name)
        root = (
            f"DynamoDB table `{f.table_name}` is throttling requests ({ev.lead}): reads or "
            "writes exceed its provisioned capacity, or traffic concentrates on a few hot "
            "partition keys that hit the per-partition limit even when the table has capacity."
        )
        steps = _steps(
            _step(
                "Read the table's billing mode and provisioned capacity.",
                f"aws dynamodb describe-table --table-name {table} --query "
                "'Table.{Billing:BillingModeSummary.BillingMode,Throughput:ProvisionedThroughput}'"
                f"{_region(f)}",
            ),
            _step(
                "Compare consumed with provisioned write capacity in the same minutes.",
                _metric_command(
                    f,
                    "AWS/DynamoDB",
                    "ConsumedWriteCapacityUnits",
                    _dim("TableName", f.table_name),
                    "Sum",
                ),
            ),
            _step(
                "Turn on Contributor Insights to see the hottest keys.",
                f"aws dynamodb update-contributor-insights --table-name {table} "
                f"--contributor-insights-action ENABLE{_region(f)}",
            ),
            _step(
                "If the load is real and spiky, switch to on-demand capacity (possible once per "
                "24 hours) or raise the provisioned capacity and its autoscaling maximum.",
                f"aws dynamodb update-table --table-name {table} --billing-mode PAY_PER_REQUEST"
                f"{_region(f)}",
            ),
        )
        where = f"DynamoDB table `{f.table_name}`"
    else:
        api = f"the AWS API operation `{operation}`" if operation else "an API"
        root = (
            f"Calls to {api} from {f.service} are being throttled ({ev.lead}): the caller sends "
            "requests faster than the provider's rate limit allows. Bursts of parallel "
            "workers and retries without backoff are the usual reasons; the limit itself is "
            "rarely the thing that changed."
        )
        steps = _steps(
            _step(
                f"Find who calls `{operation}` and how often, in CloudTrail.",
                f"aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventName,"
                f"AttributeValue={operation} --start-time {_iso(f.start)} --end-time "
                f"{_iso(f.end)} --max-results 50 --query 'Events[].[EventTime,Username]' "
                f"--output table{_region(f)}",
            )
            if operation
            else _step(
                "Find which caller sends the burst and to which endpoint (request logs, the "
                "provider's rate-limit headers)."
            ),
            _step(
                "Make clients back off: AWS SDKs adapt their rate with the adaptive retry mode; "
                "other APIs need Retry-After honoured and exponential backoff with jitter.",
                "export AWS_RETRY_MODE=adaptive AWS_MAX_ATTEMPTS=10" if operation else None,
            ),
            _step(
                "Cut the call volume: cache results, batch calls, or cap the number of parallel "
                "workers."
            ),
            _step(
                "If the traffic is legitimate, ask for a higher quota.",
                "Service Quotas console → the service → its request-rate quota"
                if operation
                else None,
            ),
        )
        where = f.service
    return Playbook(
        root_cause=root,
        hypothesis=f"Throttling of {where}: requests exceed a rate or concurrency limit.",
        impact=(
            f"Throttled requests to {where} fail or are retried later, so work is delayed or "
            "lost depending on the caller; retries add to the very load that is being "
            "throttled."
        ),
        stakes="throttled requests fail or are delayed until demand drops under the limit",
        outage=True,
        steps=_steps(*steps, _alarm_history_step(f)),
        check_first=(
            "Is demand up (traffic, a batch job, a retry storm) or did capacity go down?",
            "Which caller produces most of the requests",
            f"Changes to limits, reserved concurrency or capacity just before {f.since}",
        ),
    )


# --- 5xx spikes -------------------------------------------------------------------------------


def _http_5xx(f: Facts, ev: Evidence) -> Playbook:
    if f.load_balancer:
        lb_name = f.load_balancer.split("/")[1] if "/" in f.load_balancer else f.load_balancer
        alb = f.load_balancer.startswith("app/")
        namespace = "AWS/ApplicationELB" if alb else "AWS/ELB"
        dimension = _dim("LoadBalancer" if alb else "LoadBalancerName", f.load_balancer)
        target_metric, lb_metric = (
            ("HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count")
            if alb
            else ("HTTPCode_Backend_5XX", "HTTPCode_ELB_5XX")
        )
        alarmed = f.metric.name.lower() if f.metric else ""
        if "target" in alarmed or "backend" in alarmed:
            origin = (
                "the targets themselves answer with errors, so the failure is in the "
                f"application behind it, not in the load balancer; {lb_metric} shows whether "
                "the load balancer adds its own"
            )
        elif "elb" in alarmed:
            origin = (
                "the load balancer itself could not get an answer from a target (502: the "
                "target closed the connection, 503: no healthy target, 504: the target timed "
                "out), so look at target health before application errors"
            )
        else:
            origin = (
                f"{target_metric} counts errors the targets answered (an application failure), "
                f"{lb_metric} those the load balancer produced because it got no answer "
                "(502, 503, 504), and which of the two rose says where to look"
            )
        root = f"Load balancer `{lb_name}` is returning 5xx responses ({ev.lead}): {origin}."
        steps = _steps(
            _step(
                "See whether the errors come from the targets.",
                _metric_command(f, namespace, target_metric, dimension, "Sum"),
            ),
            _step(
                "…or from the load balancer itself (no healthy targets, timeouts).",
                _metric_command(f, namespace, lb_metric, dimension, "Sum"),
            ),
            _step(
                "Check target health: unhealthy or draining targets point at crashes, failed "
                "health checks or a bad deploy.",
                f"EC2 console → Load Balancers → {lb_name} → Resource map",
            ),
            _step(
                "Read the application logs of the targets for the same minutes: the first "
                "error after a quiet period is usually the cause."
            ),
            _step("If a deploy preceded the spike, roll it back first and investigate after."),
        )
    elif f.api_name:
        root = (
            f"API `{f.api_name}` is returning 5xx responses ({ev.lead}). API Gateway counts "
            "integration failures as 5XXError: Lambda errors or throttles, integrations that "
            "exceed the 29-second limit, and malformed integration responses."
        )
        steps = _steps(
            _step(
                "Graph 5XXError with IntegrationLatency: latency near 29 s means integration "
                "timeouts.",
                _metric_command(
                    f, "AWS/ApiGateway", "5XXError", _dim("ApiName", f.api_name), "Sum"
                ),
            ),
            _step(
                "Read the execution and access logs for the failing requests.",
                f"API Gateway console → APIs → {f.api_name} → Stages → Logs and tracing",
            ),
            _step(
                "Check the errors and throttles of the Lambda function or service behind the "
                "failing routes."
            ),
            _step("If a deploy preceded the spike, roll it back first and investigate after."),
        )
    else:
        root = (
            f"{_cap(f.service)} is answering with server errors ({ev.lead}). A 5xx spike says "
            "that requests fail inside the service or behind it, not why: the cause is in the "
            "application's own errors, a failing dependency, or a recent change."
        )
        steps = _steps(
            _link_step(f),
            _step(
                f"Read the application's errors around {f.occurred_at:%H:%M} UTC and find the "
                "first new error type.",
                _logs_command(f, f.log_group, '?ERROR ?Exception ?" 500 " ?" 502 " ?" 503 "')
                if f.log_group
                else None,
            ),
            _step(
                "Split the errors by status and route: 502/504 point at upstream failures, 500 "
                "at the application, 503 at capacity or health checks."
            ),
            _step(
                "Check the health of the dependencies the failing routes call (database, "
                "queues, third-party APIs)."
            ),
            _step("If a deploy preceded the spike, roll it back first and investigate after."),
        )
    return Playbook(
        root_cause=root,
        hypothesis=f"A 5xx spike on {f.service}: requests fail inside the service or behind it.",
        impact=(
            f"Every 5xx is a failed user request to {f.service}; clients that retry add load, "
            "and anything downstream of these calls degrades with it."
        ),
        stakes="every 5xx is a failed user request",
        outage=True,
        steps=_steps(*steps, _alarm_history_step(f)),
        check_first=(
            "The share of requests failing, not just the count",
            "Whether the targets or the load balancer (or gateway) produce the errors",
            f"Deploys just before {f.since}",
        ),
    )


# --- authentication and permission denied -----------------------------------------------------

_IAM_DENIAL = re.compile(
    r"User: (arn:aws[\w-]*:(?:iam|sts)::\d{12}:[\w+=,.@/-]{1,200}) is not authorized to perform: "
    r"([\w-]+:\w+)(?: on resource: \"?(arn:[^\s\"]{1,200}))?"
)
_ASSUMED_ROLE = re.compile(r"^arn:(aws[\w-]*):sts::(\d{12}):assumed-role/([\w+=,.@-]+)/")
_EXPIRED = re.compile(r"ExpiredToken|token (?:included in the request )?is expired", re.IGNORECASE)
_DB_PASSWORD = re.compile(r"password authentication failed|Access denied for user", re.IGNORECASE)


def _auth(f: Facts, ev: Evidence) -> Playbook:
    denial = _IAM_DENIAL.search(f.evidence)
    checks: tuple[str, ...] = (
        "The exact principal, credential and action that were refused",
        f"IAM, secret or key-policy changes just before {f.since}",
        "Whether it fails for every request or only for some resources",
    )
    if denial:
        principal = denial.group(1)
        action = denial.group(2)
        resource = denial.group(3)
        assumed = _ASSUMED_ROLE.match(principal)
        policy_source = (
            f"arn:{assumed.group(1)}:iam::{assumed.group(2)}:role/{assumed.group(3)}"
            if assumed
            else principal
        )
        role_name = assumed.group(3) if assumed else principal.rsplit("/", 1)[-1]
        on = f" on `{resource}`" if resource else ""
        runs_as = f", the role {f.subject} runs as" if f.function_name else ""
        root = (
            f"IAM denied `{action}`{on} to `{role_name}`{runs_as}: its policies do not allow "
            "the call, so every request that needs it fails. Usually a policy was changed or "
            "detached, the code started calling a new action or resource, or a permissions "
            "boundary, SCP, resource policy or KMS key policy denies it."
        )
        steps = _steps(
            _step(
                "Ask IAM which policy decides, for exactly this call.",
                f"aws iam simulate-principal-policy --policy-source-arn {_q(policy_source)} "
                f"--action-names {action}"
                + (f" --resource-arns {_q(resource)}" if resource else ""),
            ),
            _step(
                f"Look for recent changes to the role `{role_name}`.",
                f"aws cloudtrail lookup-events --lookup-attributes AttributeKey=ResourceName,"
                f"AttributeValue={_q(role_name)} --start-time {_iso(f.day_before)} "
                f"--max-results 50 --query 'Events[].[EventTime,EventName,Username]' "
                f"--output table{_region(f)}",
            ),
            _step(
                "If the simulation allows the call, the denial comes from elsewhere: a resource "
                "policy (bucket, key, queue), an SCP or a permissions boundary."
            ),
            _step(
                f"Grant `{action}` on the narrowest resource the code needs, and redeploy the "
                "policy through the same pipeline that manages it, so the fix is not overwritten."
            ),
        )
        who = f"`{role_name}`"
        denied = f"Every `{action}` call by `{role_name}`{on}"
        checks = (
            f"Whether a policy granting `{action}` was recently removed from `{role_name}`",
            f"Whether a resource policy{' on `' + resource + '`' if resource else ''}, an SCP "
            "or a permissions boundary denies it",
            "Whether the code started calling a new action or resource in a recent deploy",
        )
    elif _EXPIRED.search(f.evidence):
        root = (
            f"{_cap(f.service)} is using expired AWS credentials ({ev.lead}): temporary "
            "credentials were not refreshed, typically because the process caches a session "
            "beyond its lifetime or the role session duration is shorter than the job."
        )
        steps = _steps(
            _step(
                "Check which identity the process resolves to, from where it runs.",
                "aws sts get-caller-identity",
            ),
            _step(
                "Make the client refresh credentials (create SDK clients from the default "
                "provider chain instead of caching a session), or lengthen the role's maximum "
                "session duration if a single job outlives it."
            ),
        )
        who = f.service
        denied = f"Every AWS call {f.service} makes with the expired credentials"
    elif _DB_PASSWORD.search(f.evidence):
        role = _find(_DB_ROLE, f.evidence, 63)
        role_text = f"`{role}`" if role else "the application's user"
        root = (
            f"The database rejects the credentials of {role_text} ({ev.lead}): the password "
            "the application uses no longer matches, most often after a secret rotation that "
            "the running application has not picked up, or a changed user."
        )
        steps = _steps(
            _step(
                "Check when the secret last rotated and whether rotation succeeded.",
                "aws secretsmanager list-secrets --query 'SecretList[].[Name,LastRotatedDate,"
                f"LastChangedDate]' --output table{_region(f)}",
            ),
            _step(
                "Restart or redeploy the application so it reads the current secret; make it "
                "re-read the secret on authentication failure so the next rotation is seamless."
            ),
            _step(f"Confirm {role_text} can log in with the current secret from an admin session."),
        )
        who = role_text
        denied = f"Every database login as {role_text}"
    else:
        root = (
            f"{_cap(f.service)} is being refused for lack of authentication or permission "
            f"({ev.lead}): a credential expired or was rotated, or a permission was removed. "
            "Retrying will not help until the credential or policy is fixed."
        )
        steps = _steps(
            _step(
                "Identify the caller and the target of the refused call (the full error, the "
                "request's identity) and check when the credential it uses last changed."
            ),
            _recent_changes_step(f),
            _step(
                "Rotate or restore the credential, or restore the permission, through the "
                "pipeline that manages it."
            ),
        )
        who = f.service
        denied = f"Every call from {f.service} that needs the refused credential or permission"
    return Playbook(
        root_cause=root,
        hypothesis=f"Authentication or permission failure for {who}.",
        impact=(
            f"{denied} fails, deterministically: retries will not recover it, and any feature "
            "that depends on it is down until it is fixed."
        ),
        stakes=(
            "denied calls fail every time, and retries will not help until the permission or "
            "credential is fixed"
        ),
        outage=True,
        steps=_steps(*steps, _alarm_history_step(f)),
        check_first=checks,
    )


# --- certificate expiry or TLS failure ------------------------------------------------------

_CERT_HOST = re.compile(
    r", not ([a-z0-9][\w.-]*\.[a-z]{2,})|https://([a-z0-9][\w.-]*\.[a-z]{2,})"
    r"|(?:certificate for|host|hostname|domain|servername|connect(?:ing)? to)[ :=]+"
    r"['\"]?([a-z0-9][\w-]*(?:\.[\w-]+)+)",
    re.IGNORECASE,
)


def _certificate(f: Facts, ev: Evidence) -> Playbook:
    host = _find(_CERT_HOST, f.evidence)
    expiring = f.certificate_arn is not None or any(
        m.name.lower() == "daystoexpiry" for m in f.metrics
    )
    if expiring:
        cert = f"ACM certificate `{f.certificate_arn}`" if f.certificate_arn else "A certificate"
        root = (
            f"{cert} is approaching expiry ({ev.lead}). ACM renews the certificates it issued "
            "by itself only while their DNS validation records still resolve and the "
            "certificate is in use, and never renews imported ones; this close to expiry, one "
            "of those conditions has most likely failed."
        )
        steps = _steps(
            _step(
                "Read its status, expiry date and renewal state.",
                f"aws acm describe-certificate --certificate-arn {_q(f.certificate_arn)} --query "
                "'Certificate.{Status:Status,NotAfter:NotAfter,Type:Type,"
                f"Renewal:RenewalSummary}}'{_region(f)}"
                if f.certificate_arn
                else f"aws acm list-certificates --query 'CertificateSummaryList[].[DomainName,"
                f"NotAfter,Status]' --output table{_region(f)}",
            ),
            _step(
                "If it is AMAZON_ISSUED, make sure the DNS validation CNAMEs still exist in the "
                "hosted zone; ACM retries renewal once they resolve."
            ),
            _step(
                "If it is IMPORTED, issue a new certificate from its authority and re-import it "
                "under the same ARN before NotAfter."
            ),
        )
        stakes = (
            "nothing fails until the expiry date, but on that day every TLS client refuses the "
            "connection at once"
        )
        outage = False
        impact = (
            "Nothing breaks yet. On the expiry date every client of the endpoints that use this "
            "certificate (load balancers, CloudFront, API Gateway domains) will refuse to "
            "connect, all at once, so the fix has a deadline rather than a blast radius today."
        )
        check_first = (
            "The certificate's NotAfter date and its renewal status",
            "Whether it is ACM-issued (auto-renews) or imported (does not)",
            "Which load balancers, distributions or domains use it",
        )
    else:
        where = f"`{host}`" if host else "the endpoint it calls"
        root = (
            f"The certificate of {where} fails verification for {f.service} ({ev.lead}): it "
            "has expired, does not cover the name used, or its chain is incomplete or not "
            "trusted by the client. Connections are refused until one of those is fixed."
        )
        steps = _steps(
            _step(
                f"Inspect the certificate {where} serves: dates, names and issuer.",
                f"echo | openssl s_client -connect {_q(host + ':443')} -servername {_q(host)} "
                "2>/dev/null | openssl x509 -noout -subject -issuer -dates -ext subjectAltName"
                if host
                else None,
            ),
            _step(
                "If it expired, renew and deploy it (or fix the ACM renewal); if the name does "
                "not match, call the endpoint by a name the certificate covers; if the chain is "
                "incomplete, serve the intermediate certificates too."
            ),
            _step(
                "If the certificate is valid, the client's trust store is the problem: update "
                "its CA bundle (old base images lack newer roots)."
            ),
        )
        stakes = "TLS clients refuse every connection until the certificate is fixed"
        outage = True
        impact = (
            f"Every TLS connection from {f.service} to {where} is refused by the client, so "
            "each feature that depends on it is down; it does not recover by itself."
        )
        check_first = (
            f"The certificate {where} serves now: its NotAfter date and the names it covers",
            f"Whether other clients of {where} fail too (their problem) or only this one "
            "(its trust store)",
            f"Certificate or endpoint changes just before {f.since}",
        )
    return Playbook(
        root_cause=root,
        hypothesis=("A certificate problem: expiry, a name mismatch or an untrusted chain."),
        impact=impact,
        stakes=stakes,
        outage=outage,
        steps=_steps(*steps, _alarm_history_step(f)),
        check_first=check_first,
    )


# --- DNS resolution ---------------------------------------------------------------------------

_DNS_HOST = re.compile(
    r"(?:ENOTFOUND|EAI_AGAIN|getaddrinfo \w+)\s+([\w.-]+\.[a-z]{2,})"
    r"|Could not resolve host(?:name)?:?\s+([\w.-]+\.[a-z]{2,})"
    r"|UnknownHostException:\s*([\w.-]+\.[a-z]{2,})"
    r"|lookup ([\w.-]+\.[a-z]{2,})(?: on [\w.:\[\]]+)?: no such host"
    r"|(?:resolve|resolving) ['\"]?([\w.-]+\.[a-z]{2,})",
    re.IGNORECASE,
)
_DNS_TEMPORARY = re.compile(r"EAI_AGAIN|Temporary failure in name resolution|SERVFAIL", re.I)


def _dns(f: Facts, ev: Evidence) -> Playbook:
    host = _find(_DNS_HOST, f.evidence)
    temporary = bool(_DNS_TEMPORARY.search(f.evidence))
    name = f"`{host}`" if host else "a dependency's hostname"
    if temporary:
        why = (
            "The resolver did not answer in time, a temporary failure rather than a missing "
            "record: the VPC resolver allows each network interface 1024 packets per second, "
            "and CoreDNS or a local resolver can be overloaded or restarting."
        )
    else:
        why = (
            "The name does not exist for this resolver: the record was deleted or renamed, a "
            "private hosted zone is not associated with the caller's VPC, or the configured "
            "name has a typo."
        )
    root = f"{_cap(f.service)} cannot resolve {name} ({ev.lead}). {why}"
    zone = host.split(".", 1)[1] if host and host.count(".") >= 2 else host
    steps = _steps(
        _step(
            f"Resolve {name} from where the caller runs, and from a public resolver to compare.",
            f"dig +short {_q(host)}; dig +short {_q(host)} @1.1.1.1" if host else None,
        ),
        _step(
            f"Check the record in Route 53, if it hosts `{zone}` (then list-resource-record-sets "
            "on the zone it returns).",
            f"aws route53 list-hosted-zones-by-name --dns-name {_q(zone)} --max-items 1",
        )
        if zone
        else None,
        _step(
            "Look for recent DNS changes (record edits, zone associations).",
            f"aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventSource,"
            "AttributeValue=route53.amazonaws.com --start-time "
            f"{_iso(f.day_before)} --max-results 50 --query "
            "'Events[].[EventTime,EventName,Username]' --output table --region us-east-1",
        ),
        _step(
            "On Kubernetes, check CoreDNS for errors and restarts.",
            "kubectl -n kube-system logs -l k8s-app=kube-dns --since=30m | tail -50",
        )
        if f.pod or temporary
        else None,
        _step(
            "Cache resolutions in the client (or run a node-local DNS cache) so one slow "
            "lookup does not fail the request."
        )
        if temporary
        else _step(
            "Restore the record or the zone association; then lower its TTL while it settles."
        ),
    )
    return Playbook(
        root_cause=root,
        hypothesis=f"DNS resolution failure for {name}.",
        impact=(
            f"Every call from {f.service} that needs {name} fails before it is even sent; "
            "anything else resolving the same name from the same network fails alike."
        ),
        stakes="calls to a name that does not resolve fail before they start",
        outage=True,
        steps=_steps(*steps, _alarm_history_step(f)),
        check_first=(
            f"Does {name} resolve from the caller's network right now?",
            "Recent Route 53 record or zone changes",
            "Whether other services fail to resolve the same name",
        ),
    )


# --- deploy regressions ---------------------------------------------------------------------

_CODE_ERROR = re.compile(
    r"\b((?:ReferenceError|TypeError|NameError|AttributeError|ImportError|ModuleNotFoundError|"
    r"NoSuchMethodError|ClassNotFoundException|NoClassDefFoundError|NullPointerException|"
    r"SyntaxError|KeyError|Runtime\.ImportModuleError|Runtime\.HandlerNotFound)\b:?[^\n]{0,80})"
)


_VERSION = re.compile(
    r"\b(v\d+(?:\.\d+){1,3}(?:-[\w.]+)?)\b|\bversion[\s:=]+(\d[\w.+-]{0,39})", re.IGNORECASE
)


def _deploy_regression(f: Facts, ev: Evidence) -> Playbook:
    code_error = _find(_CODE_ERROR, f.evidence, QUOTE_CHARS)
    if code_error:
        root = (
            f"`{code_error}` is a code-level error, not an infrastructure failure: the running "
            "code is broken on this path. Errors of this kind almost always arrive with a "
            "change (new code, a missing dependency, changed configuration), so the most "
            "recent release is the first suspect."
        )
    else:
        version = _find(_VERSION, f.evidence, 40)
        change = f"the release of `{version}`" if version else "a recent deploy or release"
        root = (
            f"The failures line up with a change ({ev.lead}): {change} most likely introduced "
            f"a regression in {f.service}. Until the change is ruled out, treat it as the "
            "cause."
        )
    version_step = (
        _step(
            f"List the recent versions of `{f.function_name}` and when they were published.",
            f"aws lambda list-versions-by-function --function-name {_q(f.function_name)} "
            f"--query 'Versions[-3:].[Version,LastModified,Description]' --output table"
            f"{_region(f)}",
        )
        if f.function_name
        else _step(
            f"Find the last deploy of {f.service} in the CI/CD history or release log and "
            f"compare its time with the first error at {f.occurred_at:%H:%M} UTC."
        )
    )
    steps = _steps(
        version_step,
        _step(
            "If the errors started within minutes of a deploy, roll back first: it is the "
            "fastest way to confirm the cause and restore service."
            + (
                " Point the alias the trigger uses back at the previous version."
                if f.function_name
                else ""
            )
        ),
        _recent_changes_step(f),
        _step(
            "Diff the release: dependencies, configuration and environment variables, not "
            "just code."
        ),
        _step("Add a test or a canary check that would have caught this error before release."),
    )
    return Playbook(
        root_cause=root,
        hypothesis=f"A regression from a recent deploy to {f.service}.",
        impact=(
            f"Every request to {f.service} that takes the broken code path fails the same way "
            "until the change is rolled back or fixed; paths the change did not touch keep "
            "working."
        ),
        stakes="requests on the broken code path fail every time until the change is reverted",
        outage=True,
        steps=_steps(*steps, _alarm_history_step(f)),
        check_first=(
            f"What was deployed in the hour before {f.since}",
            "Whether the error appears on every request or only on one path",
            "Whether rolling back is safe (schema migrations, data written by the new version)",
        ),
    )


# --- queue backlog ----------------------------------------------------------------------------


def _queue_backlog(f: Facts, ev: Evidence) -> Playbook:
    if f.queue_name:
        queue = _q(f.queue_name)
        queue_url = (
            f"$(aws sqs get-queue-url --queue-name {queue} --query QueueUrl --output text"
            f"{_region(f)})"
        )
        queue_arn = (
            f"arn:aws:sqs:{f.region}:{f.account}:{f.queue_name}" if f.region and f.account else None
        )
        root = (
            f"SQS queue `{f.queue_name}` is backing up ({ev.lead}): messages arrive faster than "
            "consumers remove them. Consumers are failing (messages return after the "
            "visibility timeout), too slow, too few, or stopped; a single poison message shows "
            "as a rising age of the oldest message with a flat count."
        )
        steps = _steps(
            _step(
                "Read the queue's depth, in-flight count and oldest-message age.",
                f"aws sqs get-queue-attributes --queue-url {queue_url} --attribute-names "
                "ApproximateNumberOfMessages ApproximateNumberOfMessagesNotVisible "
                f"ApproximateAgeOfOldestMessage RedrivePolicy{_region(f)}",
            ),
            _step(
                "Find the consumer and whether it is enabled and erroring.",
                f"aws lambda list-event-source-mappings --event-source-arn {_q(queue_arn)} "
                f"--query 'EventSourceMappings[].[FunctionArn,State,BatchSize]'{_region(f)}"
                if queue_arn
                else "Lambda console → Functions → (the consumer) → Configuration → Triggers",
            ),
            _step(
                "Compare sent and deleted messages: deletes flat while sends continue means the "
                "consumer stopped or fails.",
                _metric_command(
                    f, "AWS/SQS", "NumberOfMessagesDeleted", _dim("QueueName", f.queue_name), "Sum"
                ),
            ),
            _step(
                "Read the consumer's errors; if one message fails repeatedly, let the redrive "
                "policy move it to the dead-letter queue rather than blocking the rest."
            ),
            _step(
                "If consumers are healthy but outpaced, scale them out (more concurrency, "
                "larger batches) until the age of the oldest message falls."
            ),
        )
    else:
        root = (
            f"Work is backing up for {f.service} ({ev.lead}): items arrive faster than "
            "consumers process them. A backlog is usually a symptom of consumers that fail, "
            "slow down or stopped, or of a burst of input."
        )
        steps = _steps(
            _link_step(f),
            _step(
                "Check whether the consumers are running and what errors they log in the same "
                "minutes."
            ),
            _step(
                "Compare the input rate with the processing rate: more input means scale out; "
                "less processing means the consumers are the problem."
            ),
            _step("Look for a message that fails repeatedly and blocks the rest; set it aside."),
            _step("Scale consumers out once they are healthy, until the lag falls."),
        )
    return Playbook(
        root_cause=root,
        hypothesis=f"A backlog on {f.service}: consumers fall behind the input.",
        impact=(
            f"Work queued on {f.service} is delayed rather than lost, as long as messages stay "
            "within the retention period; anything users wait on downstream (emails, orders, "
            "updates) arrives late."
        ),
        stakes=("work is delayed, not lost, as long as messages stay within the retention period"),
        outage=False,
        steps=_steps(*steps, _alarm_history_step(f)),
        check_first=(
            "Are the consumers running and succeeding?",
            "Is the input rate up, or the processing rate down?",
            "How close the oldest message is to the retention period",
        ),
    )


# --- CPU saturation ---------------------------------------------------------------------------


def _cpu_saturation(f: Facts, ev: Evidence) -> Playbook:
    if f.instance_id:
        instance = _q(f.instance_id)
        root = (
            f"EC2 instance `{f.instance_id}` is CPU-saturated ({ev.lead}). Something on it is "
            "doing more work than usual (more traffic, a runaway process or a hot loop after a "
            "deploy), or a burstable instance ran out of CPU credits and is held to its "
            "baseline."
        )
        steps = _steps(
            _step(
                "See which processes use the CPU.",
                _ssm_command(f, f.instance_id, ["top -b -n 1 -o %CPU | head -20", "uptime"]),
            ),
            _step(
                "Graph CPUUtilization over the hour: a plateau at 100% is saturation, a step "
                "up points at a change.",
                _metric_command(f, "AWS/EC2", "CPUUtilization", _dim("InstanceId", f.instance_id)),
            ),
            _step(
                "Check the instance type: on a T-class instance, a CPUCreditBalance at zero "
                "caps it at its baseline.",
                f"aws ec2 describe-instances --instance-ids {instance} --query "
                "'Reservations[].Instances[].[InstanceType,CpuOptions,State.Name]'"
                f"{_region(f)}",
            ),
            _step(
                "If it is load, scale out (or up) to buy room; if it is one runaway process, "
                "restart it and capture a profile first."
            ),
        )
    elif f.db_instance:
        root = (
            f"RDS instance `{f.db_instance}` is CPU-saturated ({ev.lead}): usually a few "
            "expensive queries (a missing index, a changed plan, a new query from a deploy) "
            "rather than overall load."
        )
        steps = _steps(
            _step(
                "Find the queries that use the CPU.",
                f"RDS console → Databases → {f.db_instance} → Monitoring → Performance Insights "
                "(Top SQL)",
            ),
            _step(
                "On PostgreSQL, list the most expensive statements.",
                "SELECT left(query, 80), calls, round(total_exec_time) AS total_ms FROM "
                "pg_stat_statements ORDER BY total_exec_time DESC LIMIT 10;",
            ),
            _step(
                "Graph CPUUtilization against DatabaseConnections: both up means load, CPU "
                "alone means expensive queries.",
                _metric_command(
                    f, "AWS/RDS", "CPUUtilization", _dim("DBInstanceIdentifier", f.db_instance)
                ),
            ),
            _step("Fix the top query (index, rewrite) before scaling the instance up."),
        )
    else:
        root = (
            f"CPU is saturated on {f.service} ({ev.lead}): more traffic, a runaway process, or "
            "code that became more expensive after a change. Saturation by itself is a "
            "symptom; what matters is which work grew."
        )
        profile = _step("Scale out to buy room if users are affected; then profile the hot path.")
        steps = (
            _steps(
                *_ecs_steps(f, "CPUUtilization"),
                _link_step(f),
                _step("Once there is room, profile which requests or jobs cost the CPU."),
            )
            if f.ecs_service
            else _steps(
                _step(
                    f"Graph CPU on `{f.host}` by mode over the last hours to see when it started.",
                    f'sum by (mode) (rate(node_cpu_seconds_total{{instance="{f.host}"}}[5m]))',
                )
                if f.host
                else _link_step(f)
                or _step("Find when CPU rose and which hosts or containers are affected."),
                _step(
                    "See which processes or containers use the CPU (top, kubectl top, "
                    "container metrics)."
                ),
                _step("Check whether traffic rose at the same time, or a deploy preceded it."),
                profile,
            )
        )
    return Playbook(
        root_cause=root,
        hypothesis=f"CPU saturation on {f.service}.",
        impact=(
            f"While {f.service} is CPU-bound, every request on it slows down; queues grow and "
            "callers start timing out if it persists."
        ),
        stakes="saturation slows every request and can cascade into timeouts",
        outage=False,
        steps=_steps(*steps, _alarm_history_step(f)),
        check_first=(
            "Is traffic up, or is the same traffic costing more CPU?",
            f"Deploys or scheduled jobs just before {f.since}",
            "Whether latency and errors rose with it",
        ),
    )


# --- unknown ----------------------------------------------------------------------------------


def _unknown(f: Facts) -> Playbook:
    """Nothing matched: say so, and still hand the engineer the places to look, named."""
    metric = f.metric
    metric_step = (
        _step(
            f"Graph `{metric.namespace}/{metric.name}` for the hour around the alert to see "
            "whether it is a spike, a trend or a step.",
            _metric_command(
                f,
                metric.namespace,
                metric.name,
                " ".join(_dim(k, v) for k, v in metric.dimensions.items()),
                "Average Maximum",
            ),
        )
        if metric
        else None
    )
    steps = _steps(
        _alarm_history_step(f),
        metric_step,
        _step(
            f"Read the log group `{f.log_group}` around {f.occurred_at:%H:%M} UTC for the first "
            "error.",
            _logs_command(f, f.log_group, "?ERROR ?Error ?error ?Exception ?FATAL"),
        )
        if f.log_group
        else None,
        _link_step(f),
        _step(
            f"Check {f.service} directly: is it up, are its error rate and latency normal, "
            "did its dependencies change?"
        ),
        _recent_changes_step(f),
        _step(
            f"Check for an AWS service event in {f.region or 'the region'}.",
            "AWS Health Dashboard → Your account health → Open and recent issues",
        ),
    )
    named = [
        f"alarm `{f.alarm_name}`" if f.alarm_name else "",
        f"metric `{metric.namespace}/{metric.name}`" if metric else "",
        f"log group `{f.log_group}`" if f.log_group and not f.alarm_name else "",
        "the graph it links to" if f.link else "",
    ]
    pointers = ", ".join(n for n in named if n)
    start = f"what it names ({pointers}) and" if pointers else "the alert itself and"
    return Playbook(
        root_cause=(
            f"No known failure pattern matches “{f.title}”, so the offline rules cannot name a "
            f"cause for {f.service}. Start from {start} any recent change; a Claude analysis "
            "(set ANTHROPIC_API_KEY) reads the context in more depth."
        ),
        hypothesis="",
        impact=(
            f"Unknown from the alert alone: whatever depends on {f.service} may be affected. "
            "Confirm whether users see errors or slowness before deciding how far it reaches."
        ),
        stakes="no rule matched, so the severity rests on the sender's rating alone",
        outage=False,
        steps=steps,
        check_first=(
            "Whether users see errors or slowness right now",
            f"What changed in the hour before {f.since}",
            "Whether the alert is new or has fired before without impact",
        ),
    )


# --- the rule base ----------------------------------------------------------------------------

RULES: tuple[FailureClass, ...] = (
    FailureClass(
        name="connection_pool",
        label="connection-pool exhaustion",
        signals=(
            _signal(
                STRONG,
                r"too many (?:client )?connections",
                r"too many clients",
                r"remaining connection slots are reserved",
                r"connection pool (?:is )?(?:exhausted|full)",
                r"pool (?:is )?exhausted",
                r"Connection is not available, request timed out",
                r"QueuePool limit of size",
                r"ER_CON_COUNT_ERROR",
                r"max_user_connections",
                r"max number of clients reached",
            ),
            _signal(
                2,
                r"(?:unable to|failed to|could not|cannot) (?:acquire|obtain|get) (?:a )?"
                r"(?:\w+ )?connection from (?:the )?pool",
            ),
            _signal(1.5, r"connection pool", r"hikari", r"pgbouncer", r"max_connections"),
            _signal(
                1,
                r"(?:database|db|postgres(?:ql)?|mysql|rds)\W+connection (?:failed|failure|"
                r"error|lost)",
            ),
        ),
        metrics=frozenset({"databaseconnections", "clientconnections", "currconnections"}),
        base_confidence=0.25,
        specific=True,
        playbook=_connection_pool,
    ),
    FailureClass(
        name="oom",
        label="out of memory",
        signals=(
            Signal(_OOM_KILLED, STRONG),
            _signal(
                1.5,
                r"high[\s_-]?memory",
                r"memory[\s_-]?(?:usage|pressure|utili[sz]ation|leak|load)",
                r"\bswap(?:ping)?\b",
            ),
            _signal(1, r"\bmemory\b", r"\bheap\b"),
        ),
        metrics=frozenset({"memoryutilization", "mem_used_percent", "freeablememory", "swapusage"}),
        base_confidence=0.25,
        specific=True,
        playbook=_oom,
    ),
    FailureClass(
        name="disk_full",
        label="disk full",
        signals=(
            _signal(
                STRONG,
                r"no space left on device",
                r"\bENOSPC\b",
                r"disk[\s_-]?(?:is[\s_-])?full",
                r"out of (?:disk|storage) space",
                r"(?:file ?system|volume|partition) (?:is )?(?:\d+ ?% )?full",
                r"disk quota exceeded",
                r"could not extend file",
                r"storage[\s_-]?full",
            ),
            _signal(
                1.5,
                r"(?:low|free)[\s_-]?(?:disk|storage)",
                r"disk[\s_-]?(?:usage|space|utili[sz]ation)",
                r"\binodes?\b",
            ),
            _signal(1, r"\bdisk\b", r"\bstorage\b"),
        ),
        metrics=frozenset(
            {"freestoragespace", "diskspaceutilization", "disk_used_percent", "freelocalstorage"}
        ),
        base_confidence=0.25,
        specific=True,
        playbook=_disk_full,
    ),
    FailureClass(
        name="throttling",
        label="throttling or rate limiting",
        signals=(
            _signal(
                STRONG,
                r"Throttl\w*Exception",
                r"\bThrottling\b",
                r"TooManyRequests",
                r"Too Many Requests",
                r"ProvisionedThroughputExceeded",
                r"RequestLimitExceeded",
                r"Rate exceeded",
                r"\bSlowDown\b",
                r"rate[\s_-]?limit(?:ed|ing)?\b(?: exceeded)?",
                r"\b429\b",
                r"ConcurrentInvocationLimitExceeded",
                r"request rate is too large",
            ),
            _signal(1.5, r"throttl\w*", r"quota (?:exceeded|reached)", r"LimitExceeded"),
            _signal(1, r"\bconcurrency\b"),
        ),
        metrics=frozenset(
            {
                "throttles",
                "throttledrequests",
                "readthrottleevents",
                "writethrottleevents",
                "throttlecount",
            }
        ),
        base_confidence=0.25,
        specific=True,
        playbook=_throttling,
    ),
    FailureClass(
        name="auth",
        label="authentication or permission failure",
        signals=(
            _signal(
                STRONG,
                r"AccessDenied",
                r"access denied",
                r"is not authorized to perform",
                r"UnauthorizedOperation",
                r"UnrecognizedClientException",
                r"InvalidClientTokenId",
                r"SignatureDoesNotMatch",
                r"ExpiredToken",
                r"security token included in the request is (?:expired|invalid)",
                r"password authentication failed",
                r"authentication failed",
                r"\b401 Unauthori[sz]ed",
                r"\b403 Forbidden",
                r"permission denied",
                r"invalid (?:api[\s_-]?key|token|credentials|password)",
            ),
            _signal(1.5, r"\bunauthori[sz]ed\b", r"\bforbidden\b", r"not authorized"),
            _signal(1, r"\bauth(?:entication|orization)?\b", r"\bcredentials?\b"),
        ),
        metrics=frozenset(),
        base_confidence=0.25,
        specific=True,
        playbook=_auth,
    ),
    FailureClass(
        name="certificate",
        label="certificate expiry or TLS failure",
        signals=(
            _signal(
                STRONG,
                r"certificate (?:has )?expired",
                r"CERT_HAS_EXPIRED",
                r"certificate is not yet valid",
                r"x509: certificate",
                r"CERTIFICATE_VERIFY_FAILED",
                r"certificate verify failed",
                r"SSLCertVerificationError",
                r"unable to verify the first certificate",
                r"unable to get local issuer certificate",
                r"self[\s-]signed certificate",
                r"PKIX path building failed",
                r"certificate (?:will )?expir(?:es|ing)",
                r"ERR_CERT_\w+",
            ),
            _signal(2, r"(?:ssl|tls) handshake (?:failed|failure|error)", r"handshake_failure"),
            _signal(1.5, r"\bcertificates?\b", r"\b(?:SSL|TLS)\b"),
        ),
        metrics=frozenset({"daystoexpiry"}),
        base_confidence=0.25,
        specific=True,
        playbook=_certificate,
    ),
    FailureClass(
        name="dns",
        label="DNS resolution failure",
        signals=(
            _signal(
                STRONG,
                r"\bENOTFOUND\b",
                r"\bEAI_AGAIN\b",
                r"getaddrinfo",
                r"Name or service not known",
                r"Temporary failure in name resolution",
                r"\bNXDOMAIN\b",
                r"UnknownHostException",
                r"no such host",
                r"could not resolve host",
                r"nodename nor servname",
                r"DNS (?:resolution|lookup) (?:failed|failure|error)",
                r"\bSERVFAIL\b",
            ),
            _signal(1.5, r"\bDNS\b", r"\bRoute ?53\b", r"\bresolver\b", r"\bcoredns\b|kube-dns"),
        ),
        metrics=frozenset(),
        base_confidence=0.25,
        specific=True,
        playbook=_dns,
    ),
    FailureClass(
        name="deploy_regression",
        label="regression from a recent deploy",
        signals=(
            _signal(
                STRONG,
                r"(?:after|since|following) (?:the |a |our )?(?:latest |last |recent |new )?"
                r"(?:deploy(?:ment)?|release|rollout)",
                r"deploy(?:ment)? (?:failed|failure)",
                r"\broll(?:ed|ing)?[\s-]?back\b",
                r"canary (?:failed|failure|alarm)",
                r"\bregression\b",
                r"Runtime\.ImportModuleError",
                r"Runtime\.HandlerNotFound",
            ),
            Signal(_CODE_ERROR, 2),
            _signal(1.5, r"\bdeploy(?:ed|ment|ing)?\b", r"\brollout\b", r"\bCodeDeploy\b"),
        ),
        metrics=frozenset(),
        base_confidence=0.2,
        specific=True,
        playbook=_deploy_regression,
    ),
    FailureClass(
        name="timeouts",
        label="timeouts",
        signals=(
            _signal(
                STRONG,
                r"task timed out after",
                r"timed?[\s_-]?out after \d",
                r"deadline[\s_-]exceeded",
                r"\bE(?:SOCKET)?TIMEDOUT\b",
                r"\b(?:Socket|Read|Connect|Request)?Timeout(?:Error|Exception)\b",
                r"\b(?:Read|Connect)Timeout\b",
                r"\b504\b",
                r"gateway time-?out",
                r"upstream timed out",
                r"statement timeout",
                r"lock wait timeout",
                r"read timed out",
            ),
            _signal(1.5, r"\btimed?[\s_-]?outs?\b"),
            _signal(1, r"\blatency\b", r"\bslow\b", r"response time"),
        ),
        metrics=frozenset(
            {"duration", "latency", "targetresponsetime", "integrationlatency", "timeout"}
        ),
        base_confidence=0.15,
        specific=False,
        playbook=_timeouts,
        symptom_note=(
            "a timeout is what a caller sees when whatever it waits on is refusing, saturated "
            "or gone"
        ),
    ),
    FailureClass(
        name="http_5xx",
        label="a 5xx error spike",
        signals=(
            _signal(
                STRONG,
                r"(?<![a-z0-9])5xx(?![a-z0-9])",
                r"\b5\d\d ?(?:errors?|responses?|status)",
                r"(?:status|code|HTTP)[ :=/]*5\d\d\b",
                r"Internal Server Error",
                r"Bad Gateway",
                r"Service Unavailable",
            ),
            _signal(1.5, r"error rate", r"errors? (?:spike|surge|increase)"),
        ),
        metrics=frozenset(
            {
                "5xxerror",
                "5xxerrors",
                "5xxerrorrate",
                "httpcode_target_5xx_count",
                "httpcode_elb_5xx_count",
                "httpcode_backend_5xx",
                "httpcode_elb_5xx",
                "httpcode_elb_502_count",
                "httpcode_elb_503_count",
                "httpcode_elb_504_count",
            }
        ),
        base_confidence=0.15,
        specific=False,
        playbook=_http_5xx,
        symptom_note="5xx responses are how a service reports a failure underneath it",
    ),
    FailureClass(
        name="queue_backlog",
        label="a queue backlog",
        signals=(
            _signal(
                STRONG,
                r"\bbacklog\b",
                r"(?:consumer|iterator|offset)[\s_-]?lag",
                r"age of (?:the )?oldest message",
                r"messages? (?:are )?(?:piling up|stuck|not being (?:processed|consumed))",
                r"queue[\s_-]?(?:depth|length|size)",
            ),
            _signal(1.5, r"\bqueue\b", r"\blag\b", r"dead[\s-]letter"),
            _signal(1, r"\bconsumers?\b", r"\bkafka\b", r"\bkinesis\b", r"\bsqs\b"),
        ),
        metrics=frozenset(
            {
                "approximateageofoldestmessage",
                "approximatenumberofmessagesvisible",
                "approximatenumberofmessagesnotvisible",
                "iteratorage",
                "getrecords.iteratoragemilliseconds",
                "offsetlag",
                "maxoffsetlag",
                "sumoffsetlag",
                "estimatedmaxtimelag",
            }
        ),
        base_confidence=0.15,
        specific=False,
        playbook=_queue_backlog,
        symptom_note=("a backlog builds whenever consumers slow down or fail, whatever the reason"),
    ),
    FailureClass(
        name="cpu_saturation",
        label="CPU saturation",
        signals=(
            _signal(
                STRONG,
                r"\bcpu\b[^\n]{0,30}\b(?:too high|high|saturat\w*|exhaust\w*|pegged|100 ?%)",
                r"high[\s_-]?cpu",
                r"cpu[\s_-]?(?:saturat\w*|starv\w*|steal|credit)",
                r"load average",
            ),
            _signal(1.5, r"\bcpu"),
        ),
        metrics=frozenset(
            {"cpuutilization", "cpucreditbalance", "enginecpuutilization", "cpu_usage_active"}
        ),
        base_confidence=0.15,
        specific=False,
        playbook=_cpu_saturation,
        symptom_note=(
            "high CPU often follows from retries, queuing or a hot loop when something else fails"
        ),
    ),
)
UNKNOWN = "unknown"


# --- assembling the diagnosis -------------------------------------------------------------------

_OUTAGE = re.compile(
    r"\boutage\b|\b(?:is|are|went|gone|has been|have been) down\b|\bdown for\b|"
    r"\ball (?:requests|users|customers|traffic)\b|\bevery request\b|"
    r"\b(?:customer|user)[\s-]facing\b|\bcomplete(?:ly)? (?:down|unavailable)\b|"
    r"\b100 ?% (?:errors?|failures?)\b",
    re.IGNORECASE,
)
_RAISE = {Severity.MEDIUM: Severity.HIGH, Severity.HIGH: Severity.CRITICAL}


def diagnose(incident: Incident, alert: Alert, context: AnalysisContext) -> tuple[Diagnosis, str]:
    """Diagnose `alert` (of `incident`) from the rule base: the Diagnosis, and the name of the
    failure class it matched (`unknown` when none did). Pure and fast: no I/O, no clock."""
    facts = _facts(incident, alert, context)
    candidates = sorted(
        ((rule, evidence) for rule in RULES if (evidence := _evidence(rule, facts)) is not None),
        key=lambda pair: _rank(*pair),
        reverse=True,
    )
    if not candidates or candidates[0][1].score < MIN_SCORE:
        return _unknown_diagnosis(facts, candidates[0] if candidates else None), UNKNOWN
    rule, evidence = candidates[0]
    runner = candidates[1] if len(candidates) > 1 else None
    diagnosis = _assemble(
        facts,
        rule.playbook(facts, evidence),
        [_alternative(facts, (rule, evidence), runner)] if runner else [],
        _confidence(rule, evidence, runner),
        matched=True,
    )
    return diagnosis, rule.name


def _unknown_diagnosis(facts: Facts, lead: tuple[FailureClass, Evidence] | None) -> Diagnosis:
    """The weak lead, if a class saw one, is offered as the alternative it is."""
    alternatives = []
    if lead is not None:
        rule, evidence = lead
        alternatives.append(
            Alternative(
                hypothesis=rule.playbook(facts, evidence).hypothesis,
                why_less_likely=(
                    f"Only a faint hint points at {rule.label} ({evidence.lead}); one word is "
                    "not enough to call it a cause."
                ),
            )
        )
    return _assemble(facts, _unknown(facts), alternatives, UNKNOWN_CONFIDENCE, matched=False)


def _assemble(
    facts: Facts,
    playbook: Playbook,
    alternatives: list[Alternative],
    confidence: float,
    matched: bool,
) -> Diagnosis:
    """The Diagnosis of a playbook. A past incident that looked the same, and how it ended, is
    the first thing worth checking; the model's limits (8 steps, 5 checks) cap the lists."""
    severity, justification = _severity(facts, playbook, matched)
    occurrence = (
        f"It has fired {facts.occurrences} times since {facts.since}"
        + (", and it is flapping." if facts.flapping else ".")
        if facts.occurrences > 1
        else f"One occurrence so far, at {facts.occurred_at:%H:%M} UTC."
    )
    return Diagnosis(
        root_cause=playbook.root_cause,
        alternatives=alternatives,
        severity=severity,
        severity_justification=justification,
        impact=f"{playbook.impact} {occurrence}",
        remediation_steps=list(playbook.steps[:8]),
        check_first=[*facts.related, *playbook.check_first][:5],
        confidence=confidence,
    )


def _alternative(
    facts: Facts,
    best: tuple[FailureClass, Evidence],
    runner: tuple[FailureClass, Evidence],
) -> Alternative:
    rule, evidence = best
    other, other_evidence = runner
    same_line = other_evidence.hits[0].line == evidence.hits[0].line
    if rule.specific and not other.specific and same_line:
        why = (
            f"The same line also reports {other.label}, but {other.symptom_note}; the "
            f"{rule.label} it reports is the cause, so this is more likely a consequence than "
            "the root cause."
        )
    elif rule.specific and not other.specific:
        why = (
            f"There is evidence of {other.label} too ({other_evidence.lead}), but "
            f"{other.symptom_note}; {evidence.lead} names the cause, so this is more likely a "
            "consequence than the root cause."
        )
    else:
        why = (
            f"Its evidence ({other_evidence.lead}) is weaker than the evidence for "
            f"{rule.label} ({evidence.lead})."
        )
        if _rank(*runner)[0] == _rank(*best)[0] and other_evidence.score >= (
            AMBIGUITY_RATIO * evidence.score
        ):
            why += " The two are close: if the first checks come back clean, work this one next."
    return Alternative(
        hypothesis=other.playbook(facts, other_evidence).hypothesis,
        why_less_likely=why,
    )


def _severity(facts: Facts, playbook: Playbook, matched: bool) -> tuple[Severity, str]:
    """Keep the sender's severity (or the incident's, if an earlier alert raised it), and say
    why it fits. Raise it one level only when the failure stops user requests by itself and
    the alert says users are cut off (an outage, "all requests", "is down"); a keyword such as
    FATAL is a log level, not a statement about users, and never raises it. LOW stays LOW: it
    marks missing data or a sender's deliberate choice, and nothing is ever lowered."""
    severity = facts.severity
    origin = f"{severity.value}, {facts.severity_origin}"
    if not facts.firing:
        return severity, (
            f"{origin}. The alert has since cleared, so this is for the review rather than a "
            f"page: {playbook.stakes}."
        )
    outage = _OUTAGE.search(facts.text)
    if playbook.outage and outage and severity in _RAISE:
        raised = _RAISE[severity]
        return raised, (
            f"Raised one level from {severity.value} ({facts.severity_origin}) to "
            f"{raised.value}: {playbook.stakes}, and the alert says users are cut off "
            f"(`{_snippet(facts.text, outage)}`)."
        )
    if severity is Severity.CRITICAL:
        tail = "Kept at CRITICAL: the sender judged it an emergency, and nothing here says less."
    elif severity is Severity.LOW:
        tail = (
            "Kept at LOW: a LOW alert marks missing data or its sender's deliberate choice, "
            "and the offline rules do not second-guess that."
        )
    elif not matched:
        tail = "Kept as sent."
    elif playbook.outage:
        tail = (
            f"Not raised to {_RAISE[severity].value}: nothing in the alert says the whole "
            "service is down."
        )
    else:
        tail = "Not raised: on its own this does not stop user requests."
    return severity, f"{origin}: {playbook.stakes}. {tail}"
