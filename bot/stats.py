"""The figures `/incident stats` and the daily digest report, computed from the store for a
period. The store aggregates (`ReportStore.period_figures`): nothing here loads the period's
incidents, so a 30-day period over 100,000 incidents stays quick (bench/stats.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from blocks.commands import IncidentStats
from incidents.store import ReportStore

NOISIEST_SHOWN = 5
OPEN_SHOWN = 10


def compute_stats(
    store: ReportStore,
    since: datetime,
    period: str,
    until: datetime | None = None,
    *,
    top: int = NOISIEST_SHOWN,
    open_shown: int = OPEN_SHOWN,
) -> IncidentStats:
    """The figures of [since, until) (`until` is now when not given), labelled `period`.

    The analysis figures (cache hit rate, Claude calls and cost) come from `cost_totals`,
    which counts per UTC day from `since` on with no end: they run to now, which is `until`
    for `/incident stats` and for a digest posted on time."""
    end = until or datetime.now(UTC)
    figures = store.period_figures(since, end, top=top, active_shown=open_shown)
    totals = store.cost_totals(since)
    analyses = sum(t.analyses for t in totals)
    return IncidentStats(
        period=period,
        until=end,
        opened=figures.opened,
        resolved=figures.resolved,
        mtta=figures.mtta,
        mttr=figures.mttr,
        alerts=figures.alerts,
        alerted_incidents=figures.alerted_incidents,
        noisiest_fingerprints=figures.top_fingerprints,
        noisiest_sources=figures.top_sources,
        analyses=analyses,
        cache_hit_rate=sum(t.cached for t in totals) / analyses if analyses else None,
        claude_calls=sum(t.model_calls for t in totals),
        claude_cost_usd=sum(t.cost_usd for t in totals),
        open_count=figures.active,
        open_incidents=figures.active_shown,
    )
