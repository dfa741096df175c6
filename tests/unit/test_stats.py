"""`/incident stats` figures from a seeded store, checked against values worked out by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.stats import compute_stats
from incidents.models import AlertStatus, Severity
from tests.conftest import T0, make_alert


def test_counts_mtta_mttr_from_the_store(service, store, clock):
    first = service.record(make_alert("db", severity=Severity.CRITICAL)).incident
    clock.advance(minutes=4)
    service.acknowledge(first.id, "U1")
    clock.advance(minutes=6)
    service.record(make_alert("db", status=AlertStatus.RESOLVED))
    second = service.record(make_alert("disk", severity=Severity.LOW)).incident
    clock.advance(minutes=2)
    service.acknowledge(second.id, "U2")
    service.record(make_alert("cpu", severity=Severity.CRITICAL))

    stats = compute_stats(store, T0 - timedelta(hours=1), "24h")

    assert stats.by_severity == {
        Severity.CRITICAL: 2,
        Severity.HIGH: 0,
        Severity.MEDIUM: 0,
        Severity.LOW: 1,
    }
    assert stats.open_count == 2
    assert stats.mtta == timedelta(minutes=3)  # (4m + 2m) / 2
    assert stats.mttr == timedelta(minutes=10)
    assert stats.cache_hit_rate is None
    assert stats.claude_cost_usd == pytest.approx(0)
