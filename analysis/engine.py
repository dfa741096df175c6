"""The analysis engine: one analysis per distinct problem, from Claude when it can, offline
when it cannot, never none.

Order of preference for an incident: the cached analysis of its fingerprint (same prompt
version, within the TTL, and an investigation if the incident is to be investigated), an
analysis already being made for the same fingerprint (awaited, not repeated: in this process
through a shared future, across replicas through a lease in the store), a fresh Claude
analysis, the offline analyzer. Every analysis is recorded with its cost; only Claude's are
cached, so an offline stand-in never blocks a better answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from analysis import evidence, offline, prompting
from analysis.breaker import CircuitBreaker
from analysis.claude import ClaudeAnalyzer, ClaudeError, ClaudeResult, ClaudeUnavailableError
from analysis.context import AnalysisContext, Gatherer
from analysis.cost import DEFAULT_PRICES, Price, Usage, cost_usd, price_for
from analysis.investigation.loop import Investigator
from analysis.investigation.registry import ToolSource
from analysis.models import Analysis, AnalyzerKind, Diagnosis, FollowUp, ThreadMessage
from incidents.leases import Leases
from incidents.models import Alert, Incident, Severity
from incidents.offload import Offload
from incidents.store import AnalysisRecord, AnalysisStore, IncidentStore

logger = logging.getLogger(__name__)

_FAST_TIER = (Severity.MEDIUM, Severity.LOW)


@dataclass
class EngineStats:
    """Counted since start; the store keeps the durable record of every analysis."""

    requests: int = 0
    cache_hits: int = 0
    claude_calls: int = 0
    offline: int = 0
    claude_failures: int = 0

    @property
    def hit_rate(self) -> float:
        return self.cache_hits / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class EngineConfig:
    model: str = "claude-sonnet-4-6"
    fast_model: str = "claude-haiku-4-5"
    cache_ttl: timedelta = timedelta(hours=24)
    redact_ips: bool = False
    prices: dict[str, Price] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    # How long to wait for another replica's analysis of the same problem before making one:
    # past Claude's own timeout and retries, a duplicate call is cheaper than no analysis.
    peer_wait: timedelta = timedelta(minutes=3)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class EngineStore(AnalysisStore, IncidentStore, Protocol):
    """The analyses and their cache, and the incident's timeline the context is built from."""


class AnalysisEngine:
    def __init__(
        self,
        store: EngineStore,
        config: EngineConfig | None = None,
        claude: ClaudeAnalyzer | None = None,
        gatherer: Gatherer | None = None,
        breaker: CircuitBreaker | None = None,
        executor: Executor | None = None,
        clock: Callable[[], datetime] = _utcnow,
        leases: Leases | None = None,
        investigator: Investigator | None = None,
        tools: ToolSource | None = None,
    ) -> None:
        """`investigator` and `tools` together make CRITICAL and HIGH incidents investigated
        (analysis/investigation); without them every analysis is the single call."""
        self.store = store
        self.investigator = investigator
        self.tools = tools
        self.leases = leases
        self.config = config or EngineConfig()
        self.claude = claude
        self.gatherer = gatherer
        self.breaker = breaker or CircuitBreaker()
        self.stats = EngineStats()
        self._offload = Offload(executor)
        self._clock = clock
        # Per fingerprint: the analysis being made, and whether it is an investigation.
        self._in_flight: dict[str, tuple[asyncio.Future[Analysis], bool]] = {}

    async def close(self) -> None:
        """Close Claude's connection pool inside the event loop that opened it."""
        if self.claude is not None:
            await self.claude.close()

    async def follow_up(self, incident: Incident, thread: list[ThreadMessage]) -> FollowUp | None:
        """Claude's answer to the thread's last question; None when Claude is not configured.

        Raises ClaudeError when Claude is configured but gives no answer now."""
        if self.claude is None:
            return None
        record = await self._offload(self.store.latest_analysis, incident.id)
        analysis = Analysis.model_validate_json(record.body) if record else None
        timeline = await self._offload(self.store.timeline, incident.id)
        data = evidence.render_followup(
            incident, analysis, timeline, thread, self.config.redact_ips
        )
        model = self.model_for(incident.severity)
        if not self.breaker.allow():
            raise ClaudeUnavailableError("Claude is paused after repeated failures")
        try:
            text, usage = await self.claude.answer(model, data)
        except ClaudeUnavailableError:
            self.breaker.record_failure()
            raise
        except BaseException:
            self.breaker.release()
            raise
        self.breaker.record_success()
        cost = cost_usd(usage, price_for(model, self.config.prices))
        logger.info("follow-up on %s answered by %s for $%.4f", incident.id, model, cost)
        return FollowUp(text=text, model=model, cost_usd=cost)

    def model_for(self, severity: Severity) -> str:
        """The strong model where a wrong call is expensive, the fast one elsewhere."""
        return self.config.fast_model if severity in _FAST_TIER else self.config.model

    async def analyze(self, incident: Incident, alert: Alert, *, force: bool = False) -> Analysis:
        """The incident's analysis; `force` (re-analyze) skips the cache and makes a new one."""
        self.stats.requests += 1
        pending, investigated = self._in_flight.get(incident.fingerprint, (None, False))
        # A single call under way for a lesser incident of the problem does not serve one the
        # engine investigates (as the cache does not, `_cached`): it makes its own.
        if pending is not None and not force and (investigated or not self._investigates(incident)):
            shared = _as_cached(await asyncio.shield(pending), self._clock())
            self.stats.cache_hits += 1
            await self._record(incident, shared, cache=False)
            return shared
        # Registered before the first await, so that every concurrent request for the same
        # problem finds it and waits instead of asking Claude again.
        made: asyncio.Future[Analysis] = asyncio.get_running_loop().create_future()
        self._in_flight[incident.fingerprint] = (made, self._investigates(incident))
        try:
            analysis = await self._cached_or_fresh(incident, alert, force)
        except BaseException as exc:
            made.set_exception(exc)
            made.exception()
            raise
        else:
            made.set_result(analysis)
        finally:
            if self._in_flight.get(incident.fingerprint, (None, False))[0] is made:
                del self._in_flight[incident.fingerprint]
        return analysis

    async def _cached_or_fresh(self, incident: Incident, alert: Alert, force: bool) -> Analysis:
        version = prompting.prompt_version()
        if force:
            return await self._fresh(incident, alert, version)
        cached = await self._cached(incident, version)
        if cached is not None or self.leases is None:
            return cached or await self._fresh(incident, alert, version)
        async with self.leases.holding(
            f"analysis:{incident.fingerprint}:{version}", wait=self.config.peer_wait
        ):
            # Whoever held the lease before may have just cached this problem's analysis.
            cached = await self._cached(incident, version)
            return cached or await self._fresh(incident, alert, version)

    async def _cached(self, incident: Incident, version: str) -> Analysis | None:
        now = self._clock()
        record = await self._offload(
            self.store.cached_analysis, incident.fingerprint, version, now - self.config.cache_ttl
        )
        if record is None:
            return None
        analysis = Analysis.model_validate_json(record.body)
        if analysis.investigation is None and self._investigates(incident):
            # A single call, made for a lesser incident of the problem: this one deserves the
            # investigation, which then replaces it in the cache.
            return None
        self.stats.cache_hits += 1
        cached = _as_cached(analysis, now)
        await self._record(incident, cached, cache=False)
        return cached

    async def _fresh(self, incident: Incident, alert: Alert, version: str) -> Analysis:
        started = self._clock()
        context = (
            await self.gatherer.gather(incident, alert) if self.gatherer else AnalysisContext()
        )
        notes = list(context.notes)
        usage = Usage()
        model = self.model_for(incident.severity)
        if self.claude is None:
            pass
        elif not self.breaker.allow():
            notes.append("Claude paused after repeated failures; offline analysis meanwhile")
        else:
            data = evidence.render(incident, alert, context, self.config.redact_ips)
            error: ClaudeError | None = None
            try:
                result = await self._diagnose(incident, alert, model, data)
            except ClaudeError as exc:
                error = exc
            except BaseException:
                self.breaker.release()
                raise
            if isinstance(error, ClaudeUnavailableError):
                self.breaker.record_failure()
                self.stats.claude_failures += 1
                usage = error.usage
                notes.append(f"{error}; offline analysis instead")
                logger.warning("Claude unavailable for %s: %s", incident.id, error)
            elif error is not None:
                self.breaker.release()
                self.stats.claude_failures += 1
                usage = error.usage
                notes.append(f"{error}; offline analysis instead")
                logger.warning("Claude gave no usable analysis for %s: %s", incident.id, error)
            else:
                self.breaker.record_success()
                self.stats.claude_calls += 1
                analysis = self._build(
                    incident, result.diagnosis, AnalyzerKind.CLAUDE, model, version, context
                )
                analysis = self._with_usage(analysis, result.usage, model, notes)
                analysis = analysis.model_copy(update={"investigation": result.trace})
                await self._record(incident, analysis, cache=True, begun=started)
                return analysis
        self.stats.offline += 1
        diagnosis, _ = offline.diagnose(incident, alert, context)
        analysis = self._build(incident, diagnosis, AnalyzerKind.OFFLINE, None, version, context)
        analysis = self._with_usage(analysis, usage, model, notes)
        await self._record(incident, analysis, cache=False)
        return analysis

    def _investigates(self, incident: Incident) -> bool:
        """Whether this engine investigates the incident rather than making the single call."""
        return (
            self.investigator is not None
            and self.tools is not None
            and incident.severity not in _FAST_TIER
        )

    async def _diagnose(
        self, incident: Incident, alert: Alert, model: str, data: str
    ) -> ClaudeResult:
        """An investigation for the incidents that deserve one, the single call otherwise."""
        assert self.claude is not None
        if self._investigates(incident):
            assert self.investigator is not None and self.tools is not None
            try:
                tools = self.tools.tools_for(incident, alert)
            except Exception:  # a tool source's bug costs the tools, never the analysis
                logger.exception("no tools for %s: the single call instead", incident.id)
            else:
                return await self.investigator.investigate(model, data, tools)
        result = await self.claude.diagnose(model, data)
        # Evidence cites tool calls; the single call made none, so anything there cites nothing.
        return replace(result, diagnosis=result.diagnosis.model_copy(update={"evidence": []}))

    def _build(
        self,
        incident: Incident,
        diagnosis: Diagnosis,
        analyzer: AnalyzerKind,
        model: str | None,
        version: str,
        context: AnalysisContext,
    ) -> Analysis:
        return Analysis(
            **diagnosis.model_dump(),
            analyzer=analyzer,
            model=model,
            prompt_version=version,
            fingerprint=incident.fingerprint,
            related_incidents=context.related,
            lessons=context.lessons,
            created_at=self._clock(),
        )

    def _with_usage(
        self, analysis: Analysis, usage: Usage, model: str, notes: list[str]
    ) -> Analysis:
        """Tokens spent count even when they bought no usable answer."""
        return analysis.model_copy(
            update={
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cache_read_tokens": usage.cache_read_tokens,
                "cache_write_tokens": usage.cache_write_tokens,
                "cost_usd": cost_usd(usage, price_for(model, self.config.prices)),
                "context_notes": notes,
            }
        )

    async def _record(
        self,
        incident: Incident,
        analysis: Analysis,
        *,
        cache: bool,
        begun: datetime | None = None,
    ) -> None:
        """Recorded on the incident; and cached when `cache`, which the store refuses if the
        team confirmed a cause of the problem after `begun`, when this analysis was begun
        without knowing it (analysis/lessons.py)."""
        record = AnalysisRecord(
            incident_id=incident.id,
            fingerprint=incident.fingerprint,
            source=incident.source,
            prompt_version=analysis.prompt_version,
            created_at=analysis.created_at,
            analyzer=analysis.analyzer.value,
            model=analysis.model,
            cached=analysis.cached,
            cost_usd=analysis.cost_usd,
            body=analysis.model_dump_json(),
        )
        await self._offload(self.store.put_analysis, record)
        if cache:
            await self._offload(self.store.put_cached_analysis, record, begun)


def _as_cached(analysis: Analysis, now: datetime) -> Analysis:
    """A reused analysis cost nothing this time; its original bookkeeping is not repeated."""
    return analysis.model_copy(
        update={
            "cached": True,
            "cost_usd": 0.0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "created_at": now,
        }
    )
