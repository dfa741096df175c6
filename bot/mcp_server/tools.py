"""The MCP tools: what an assistant can read of the incidents, and do to them.

Each tool is an async method whose parameters (with their `Field` bounds) are its input schema
and whose return model (`schemas.py`) is its output schema; the SDK publishes both and checks
both. A tool that cannot do what it was asked raises `ToolInputError` with a sentence saying
why; the SDK hands it to the client as a tool error (`is_error`), which the model can read and
correct, and the server goes on serving. Anything unexpected (a store outage) is a tool error
too, without its text, which stays in the server's log.

The writes are the Slack buttons' (`bot/slack_app.py`): the same `IncidentService` change, then
the same followers (`bot/followers.py`): the message re-rendered, and the notifier told, so that
PagerDuty, Jira and Teams follow through the outbox. The actor is the person named, marked
"(via MCP)", so the timeline says who did it and from where.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Literal, Protocol

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from analysis.engine import AnalysisEngine
from analysis.lessons import record_confirmation
from analysis.models import Analysis
from bot.followers import Followers
from bot.mcp_server import views
from bot.mcp_server.schemas import (
    AlertList,
    AnalyzeResult,
    Count,
    IncidentDetail,
    IncidentList,
    StatsView,
    WriteResult,
)
from bot.settings import parse_duration
from bot.stats import compute_stats
from incidents.lifecycle import (
    IncidentNotFoundError,
    IncidentService,
    InvalidTransitionError,
)
from incidents.models import (
    CONFIRMED_TEXT_MAX,
    Incident,
    IncidentStatus,
    Occurrence,
    Severity,
)
from incidents.offload import Offload
from incidents.store import AnalysisStore, ChatRefStore, IncidentStore, OutboxStore, ReportStore
from ingest.normalize import MAX_PAYLOAD_BYTES
from ingest.pipeline import Ingestor, UnreadablePayloadError

if TYPE_CHECKING:
    pass

LIST_LIMIT = 100
"""Incidents or alerts one call returns at most."""
SCAN_LIMIT = 1000
"""Rows read per severity when a filter the store cannot apply (a severity for incidents, a
text or a source for alerts) is applied here: the bound on what one call costs."""
LONGEST_SILENCE = timedelta(days=30)
LONGEST_PERIOD = timedelta(days=366)
BY_MAX = 64
VIA = "(via MCP)"
_ID = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,39}$")

IncidentId = Annotated[str, Field(description="The incident id, e.g. INC-7K2M9K3P.")]
By = Annotated[
    str,
    Field(
        min_length=1,
        max_length=BY_MAX,
        description="The person this is done for, as the timeline should name them.",
    ),
]
Since = Annotated[
    str | None,
    Field(description="How far back: a duration such as 24h or 7d, or an ISO 8601 time."),
]
Limit = Annotated[int, Field(ge=1, le=LIST_LIMIT, description="At most this many.")]
StatusFilter = Literal["open", "acknowledged", "resolved", "active"]


class ToolInputError(ToolError):
    """What the caller asked for cannot be done; the message says why, for the model to read.
    A `ToolError`, because the SDK shows the model the text of those alone: any other
    exception reaches it as a bare "Error executing tool", its text kept in the server log."""


class McpStore(IncidentStore, AnalysisStore, ReportStore, ChatRefStore, OutboxStore, Protocol):
    """The store roles the tools read (every view of an incident) and the lifecycle writes."""


@dataclass
class ToolDeps:
    store: McpStore
    service: IncidentService
    ingestor: Ingestor
    engine: AnalysisEngine
    offload: Offload
    redactor: views.Redactor = field(default_factory=views.Redactor)
    followers: Followers = field(default_factory=Followers)


def parse_since(since: str | None, now: datetime) -> datetime | None:
    """`24h`, `7d` (back from now) or an ISO 8601 time (UTC when it names no zone)."""
    if since is None or not since.strip():
        return None
    try:
        return now - parse_duration(since)
    except ValueError:
        pass
    try:
        at = datetime.fromisoformat(since.strip())
    except ValueError:
        raise ToolInputError(
            f"since={since!r} is neither a duration such as 24h or 7d nor an ISO 8601 time"
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def incident_id(raw: str) -> str:
    """Ids are typed by people (`inc-7k2m9k3p`): upper-cased, and refused when they cannot be
    one, before any store is asked."""
    text = raw.strip().upper()
    if not _ID.match(text):
        raise ToolInputError(f"{raw!r} is not an incident id such as INC-7K2M9K3P")
    return text


def actor(by: str) -> str:
    """The timeline's actor for a change made through MCP: the person, marked as such."""
    name = " ".join(by.split())
    if not name:
        raise ToolInputError("by must name the person this is done for")
    if name.startswith("alert:"):
        raise ToolInputError("by must name a person, not an alert")
    return f"{name} {VIA}"


class IncidentTools:
    """The tools, bound to one store and its services (see `server.build_server`)."""

    def __init__(self, deps: ToolDeps) -> None:
        self.deps = deps

    async def list_incidents(
        self,
        status: Annotated[
            StatusFilter | None, Field(description="'active' is open or acknowledged.")
        ] = None,
        severity: Severity | None = None,
        since: Since = None,
        limit: Limit = 20,
    ) -> IncidentList:
        """Incidents, newest first: id, title, severity, status, occurrences, when opened and
        last seen, and who owns it. Filter by status, severity and how far back they opened."""
        opened_after = parse_since(since, datetime.now(UTC))
        statuses = _statuses(status)
        store = self.deps.store
        wanted = limit + 1 if severity is None else SCAN_LIMIT
        found = await self.deps.offload(
            lambda: store.list_incidents(statuses=statuses, since=opened_after, limit=wanted)
        )
        matching = [i for i in found if severity is None or i.severity is severity]
        truncated = len(matching) > limit or (severity is not None and len(found) == wanted)
        shown = matching[:limit]
        return IncidentList(
            incidents=views.summaries(shown, self.deps.redactor), truncated=truncated
        )

    async def get_incident(self, id: IncidentId) -> IncidentDetail:
        """One incident with its latest analysis, its timeline, the notifications sent about it
        (PagerDuty, Jira, email, Teams) and where its Slack message is."""
        records = await self._records(incident_id(id))
        return views.incident_detail(records, self.deps.redactor)

    async def search_alerts(
        self,
        text: Annotated[
            str | None,
            Field(max_length=200, description="Words in the title, message or resource."),
        ] = None,
        severity: Severity | None = None,
        source: Annotated[
            str | None, Field(max_length=200, description="Part of the sender's name.")
        ] = None,
        since: Since = "24h",
        limit: Limit = 20,
    ) -> AlertList:
        """Alerts received, newest first, each with the incident it belongs to. Text is
        matched against the alert as it is shown, after redaction."""
        now = datetime.now(UTC)
        after = parse_since(since, now) or now - LONGEST_PERIOD
        severities = [severity] if severity is not None else list(Severity)
        store = self.deps.store

        def scan() -> tuple[list[Occurrence], bool]:
            rows: list[Occurrence] = []
            full = False
            for each in severities:
                batch = store.alerts_by_severity(each, after, SCAN_LIMIT)
                full = full or len(batch) == SCAN_LIMIT
                rows += batch
            return rows, full

        rows, full = await self.deps.offload(scan)
        rows.sort(key=lambda row: row.alert.received_at, reverse=True)
        if source:
            rows = [row for row in rows if source.lower() in row.alert.source.lower()]
        if not text:
            shown = views.alert_views(rows[:limit], self.deps.redactor)
            return AlertList(alerts=shown, truncated=full or len(rows) > limit)
        needle = text.lower()
        matched = []
        for view in views.alert_views(rows, self.deps.redactor):
            haystack = f"{view.title}\n{view.message}\n{view.resource or ''}".lower()
            if needle in haystack:
                matched.append(view)
        return AlertList(alerts=matched[:limit], truncated=full or len(matched) > limit)

    async def incident_stats(
        self,
        period: Annotated[
            str, Field(max_length=20, description="A duration back from now, e.g. 24h or 7d.")
        ] = "24h",
    ) -> StatsView:
        """The daily digest's figures for a period: incidents opened and resolved, MTTA, MTTR,
        alerts per incident, the noisiest problems and sources, and the Claude cost."""
        try:
            length = parse_duration(period)
        except ValueError as exc:
            raise ToolInputError(f"period: {exc}") from None
        if not timedelta(0) < length <= LONGEST_PERIOD:
            raise ToolInputError(f"period={period!r} must be longer than 0 and at most 366d")
        until = datetime.now(UTC)
        stats = await self.deps.offload(
            compute_stats, self.deps.store, until - length, f"last {period}", until
        )
        titles = self.deps.redactor.texts([c.title for c in stats.noisiest_fingerprints])
        return StatsView(
            period=stats.period,
            since=until - length,
            until=stats.until,
            opened={s.value: n for s, n in stats.opened.items()},
            resolved={s.value: n for s, n in stats.resolved.items()},
            mtta_seconds=stats.mtta.total_seconds() if stats.mtta is not None else None,
            mttr_seconds=stats.mttr.total_seconds() if stats.mttr is not None else None,
            alerts=stats.alerts,
            alerts_per_incident=stats.alerts_per_incident,
            noisiest_problems=[
                Count(key=c.key, title=views.clip(t, views.TITLE_MAX), alerts=c.alerts)
                for c, t in zip(stats.noisiest_fingerprints, titles, strict=True)
            ],
            noisiest_sources=[
                Count(key=c.key, title=c.title, alerts=c.alerts) for c in stats.noisiest_sources
            ],
            analyses=stats.analyses,
            cache_hit_rate=stats.cache_hit_rate,
            claude_calls=stats.claude_calls,
            claude_cost_usd=stats.claude_cost_usd,
            open_now=stats.open_count,
        )

    async def analyze_alert(
        self,
        payload: Annotated[
            str,
            Field(
                description="The alert as its sender wrote it: Alertmanager, CloudWatch or "
                "Grafana JSON, any JSON, or plain text."
            ),
        ],
    ) -> AnalyzeResult:
        """Record a pasted alert as any received alert is recorded (it opens or joins its
        incident) and return the analysis of its incident, as `/incident analyze` does."""
        body = payload.encode()
        if not body.strip():
            raise ToolInputError("payload is empty: paste the alert's text or JSON")
        if len(body) > MAX_PAYLOAD_BYTES:
            raise ToolInputError(
                f"payload is {len(body)} bytes, over the {MAX_PAYLOAD_BYTES} byte limit"
            )
        deps = self.deps
        try:
            report = await deps.offload(deps.ingestor.ingest, body, "mcp")
        except UnreadablePayloadError as exc:
            raise ToolInputError(f"could not read that payload: {exc.reason}") from None
        outcome = report.outcomes[0]
        incident = outcome.incident
        if incident is None:
            raise ToolInputError("that reads as a resolution of nothing open: nothing to analyze")
        await deps.followers.recorded(report)
        analysis = await deps.engine.analyze(incident, outcome.alert)
        await deps.followers.analyzed(outcome, analysis)
        return AnalyzeResult(
            outcome=outcome.kind.value,
            incident=views.summary(incident, deps.redactor),
            analysis=views.analysis_view(analysis, deps.redactor),
            other_incidents=[i for i in report.incident_ids if i != incident.id][:LIST_LIMIT],
        )

    async def acknowledge_incident(self, id: IncidentId, by: By) -> WriteResult:
        """Acknowledge an incident for a person, as the Slack button does: it stops the
        escalation reminders, and PagerDuty is told when it was paged."""
        who = actor(by)
        incident = await self._transition(self.deps.service.acknowledge, incident_id(id), who)
        done = (
            f"{incident.id} acknowledged by {who}"
            if incident.acknowledged_by == who
            else f"{incident.id} was already acknowledged by {incident.acknowledged_by}"
        )
        return WriteResult(incident=views.summary(incident, self.deps.redactor), done=done)

    async def resolve_incident(
        self,
        id: IncidentId,
        by: By,
        note: Annotated[
            str | None, Field(max_length=500, description="Kept in the timeline.")
        ] = None,
        cause: Annotated[
            str | None,
            Field(
                max_length=CONFIRMED_TEXT_MAX,
                description=(
                    "The confirmed cause, when the person knows it: the next analysis of this "
                    "problem, or a similar one, is given it as a hypothesis."
                ),
            ),
        ] = None,
        fix: Annotated[
            str | None,
            Field(max_length=CONFIRMED_TEXT_MAX, description=("What fixed it, likewise.")),
        ] = None,
    ) -> WriteResult:
        """Resolve an incident for a person, as the Slack button does: PagerDuty, Teams and
        the Jira ticket are told; with `cause` or `fix`, as the Slack modal records them."""
        who = actor(by)
        said = " ".join(note.split()) if note else None

        def resolve(target: str, person: str) -> Incident:
            return self.deps.service.resolve(target, person, said)

        incident = await self._transition(resolve, incident_id(id), who)
        if incident.resolved_by != who:
            done = f"{incident.id} was already resolved by {incident.resolved_by}"
        else:
            done = f"{incident.id} resolved by {who}"
            if said:
                await self.deps.followers.noted(incident.id, f"{who}: {said}")
        if (cause or "").strip() or (fix or "").strip():
            deps = self.deps
            incident = await deps.offload(
                record_confirmation, deps.service, deps.store, incident.id, who, cause, fix
            )
            await deps.followers.confirmed(incident)
            done += "; cause and fix recorded"
        return WriteResult(incident=views.summary(incident, self.deps.redactor), done=done)

    async def silence_incident(
        self,
        id: IncidentId,
        duration: Annotated[
            str, Field(max_length=20, description="How long, e.g. 1h or 24h (at most 30d).")
        ],
        by: By,
    ) -> WriteResult:
        """Silence an incident's problem for a while, as the Slack button does: its alerts are
        still recorded and counted, but not posted."""
        who = actor(by)
        try:
            length = parse_duration(duration)
        except ValueError as exc:
            raise ToolInputError(f"duration: {exc}") from None
        if not timedelta(0) < length <= LONGEST_SILENCE:
            raise ToolInputError(f"duration={duration!r} must be longer than 0 and at most 30d")
        target = incident_id(id)
        deps = self.deps
        try:
            silence = await deps.offload(deps.service.silence, target, length, who)
        except IncidentNotFoundError:
            raise ToolInputError(f"there is no incident {target}") from None
        await deps.followers.silenced(target, silence)
        incident = await deps.offload(deps.store.get_incident, target)
        assert incident is not None
        return WriteResult(
            incident=views.summary(incident, deps.redactor),
            done=f"{target} silenced by {who} until {silence.until:%Y-%m-%d %H:%M} UTC",
            silenced_until=silence.until,
        )

    async def _transition(
        self, change: Callable[[str, str], Incident], target: str, who: str
    ) -> Incident:
        try:
            incident = await self.deps.offload(change, target, who)
        except IncidentNotFoundError:
            raise ToolInputError(f"there is no incident {target}") from None
        except InvalidTransitionError as exc:
            raise ToolInputError(f"nothing done: {exc}") from None
        await self.deps.followers.transitioned(incident, who)
        return incident

    async def _records(self, target: str) -> views.IncidentRecords:
        """Everything of one incident in one trip to the store's thread."""
        store = self.deps.store

        def read() -> views.IncidentRecords | None:
            incident = store.get_incident(target)
            if incident is None:
                return None
            record = store.latest_analysis(target)
            silence = store.silence(incident.fingerprint)
            now = datetime.now(UTC)
            return views.IncidentRecords(
                incident=incident,
                analysis=Analysis.model_validate_json(record.body) if record else None,
                timeline=store.timeline(target),
                deliveries=store.deliveries(target),
                message=store.message_ref(target),
                permalink=None,
                silenced_until=silence.until if silence and silence.until > now else None,
            )

        records = await self.deps.offload(read)
        if records is None:
            raise ToolInputError(f"there is no incident {target}")
        if records.message is not None:
            link = await self.deps.followers.permalink(target)
            records = replace(records, permalink=link)
        return records


def _statuses(status: StatusFilter | None) -> Sequence[IncidentStatus] | None:
    if status is None:
        return None
    if status == "active":
        return [IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED]
    return [IncidentStatus(status)]
