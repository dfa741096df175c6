"""`/incident stats` and digest figures from a seeded store, checked against values worked out
by hand (the store's own counts are checked on both backends in test_store_contract_reports.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from bot.stats import compute_stats
from incidents.models import Severity
from incidents.store import AnalysisRecord
from tests.conftest import T0
from tests.unit.store_contract import PERIOD_SINCE, PERIOD_UNTIL, seed_period

ANALYSIS = AnalysisRecord(
    incident_id="INC-A",
    fingerprint="db",
    source="cloudwatch",
    prompt_version="v1",
    created_at=T0 + timedelta(hours=1, minutes=1),
    analyzer="claude",
    model="claude-sonnet-4-6",
    cached=False,
    cost_usd=0.02,
    body='{"root_cause": "x"}',
)


def test_the_period_figures_and_what_analyses_cost(store):
    seed_period(store)
    store.put_analysis(ANALYSIS)  # a Claude call: $0.02
    store.put_analysis(replace(ANALYSIS, incident_id="INC-B", cost_usd=0.03))  # $0.03
    store.put_analysis(replace(ANALYSIS, incident_id="INC-E", cached=True, cost_usd=0.0))
    store.put_analysis(replace(ANALYSIS, incident_id="INC-D", analyzer="offline", cost_usd=0.0))
    old = T0 - timedelta(days=2)
    store.put_analysis(replace(ANALYSIS, incident_id="INC-F", created_at=old, cost_usd=9.0))

    stats = compute_stats(store, PERIOD_SINCE, "last 24h", until=PERIOD_UNTIL, top=3, open_shown=3)

    assert stats.period == "last 24h" and stats.until == PERIOD_UNTIL
    # Opened: A, B, D, E; resolved: A and C (the seed's table in store_contract.py).
    assert stats.opened == dict.fromkeys(Severity, 1)
    assert stats.resolved == {
        Severity.CRITICAL: 1,
        Severity.HIGH: 1,
        Severity.MEDIUM: 0,
        Severity.LOW: 0,
    }
    assert stats.mtta == timedelta(minutes=10)  # (5m + 15m) / 2
    assert stats.mttr == timedelta(hours=2)  # (60m + 180m) / 2
    assert (stats.alerts, stats.alerted_incidents) == (9, 5)
    assert stats.alerts_per_incident == pytest.approx(1.8)  # 9 / 5
    assert [(f.key, f.alerts) for f in stats.noisiest_fingerprints] == [
        ("db", 5),
        ("api", 2),
        ("cpu", 1),
    ]
    assert [(s.key, s.alerts) for s in stats.noisiest_sources][0] == ("cloudwatch", 6)
    # Four analyses since T0 (F's is older): one cached, two Claude calls (the offline one is
    # not a call), $0.02 + $0.03.
    assert stats.analyses == 4
    assert stats.cache_hit_rate == pytest.approx(0.25)  # 1 / 4
    assert stats.claude_calls == 2
    assert stats.claude_cost_usd == pytest.approx(0.05)
    assert stats.open_count == 4
    assert [i.id for i in stats.open_incidents] == ["INC-B", "INC-G", "INC-E"]


def test_an_empty_store_measures_nothing(store):
    stats = compute_stats(store, T0 - timedelta(hours=24), "last 24h")

    assert sum(stats.opened.values()) == sum(stats.resolved.values()) == 0
    assert stats.mtta is None and stats.mttr is None
    assert stats.alerts_per_incident is None and stats.cache_hit_rate is None
    assert stats.claude_calls == 0 and stats.claude_cost_usd == 0
    assert stats.open_count == 0 and stats.open_incidents == []
