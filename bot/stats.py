"""The figures `/incident stats` reports, computed from the store for a period."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from blocks.commands import IncidentStats
from incidents.models import IncidentStatus, Severity
from incidents.store import Store

MAX_INCIDENTS = 100_000


def compute_stats(store: Store, since: datetime, period: str) -> IncidentStats:
    """Counts by severity of the incidents opened since `since`, how many are still open,
    the mean time to acknowledge and to resolve, and what their analyses cost."""
    incidents = store.list_incidents(since=since, limit=MAX_INCIDENTS)
    acknowledged = [i.acknowledged_at - i.opened_at for i in incidents if i.acknowledged_at]
    resolved = [i.resolved_at - i.opened_at for i in incidents if i.resolved_at]
    totals = store.cost_totals(since)
    analyses = sum(t.analyses for t in totals)
    counts = Counter(i.severity for i in incidents)
    return IncidentStats(
        period=period,
        by_severity={severity: counts.get(severity, 0) for severity in Severity},
        open_count=sum(i.status is not IncidentStatus.RESOLVED for i in incidents),
        mtta=_mean(acknowledged),
        mttr=_mean(resolved),
        cache_hit_rate=sum(t.cached for t in totals) / analyses if analyses else None,
        claude_cost_usd=sum(t.cost_usd for t in totals),
    )


def _mean(durations: list[timedelta]) -> timedelta | None:
    return sum(durations, timedelta()) / len(durations) if durations else None
