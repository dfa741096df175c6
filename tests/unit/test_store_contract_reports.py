"""ReportStore on both backends: cost totals, and the period figures against a hand count
of the seeded period (tests/unit/store_contract.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from incidents.lifecycle import IncidentService
from incidents.models import AlertStatus, Severity
from incidents.store import Store
from tests.conftest import T0, ManualClock, make_alert
from tests.fakes.moto_server import aws, moto_server  # noqa: F401
from tests.unit.store_contract import (  # noqa: F401
    PERIOD_SINCE,
    PERIOD_UNTIL,
    any_store,
    make_record,
    seed_period,
    service,
)


def test_cost_totals_per_day_and_source(any_store):
    day2 = T0 + timedelta(days=1)
    any_store.put_analysis(make_record(cost_usd=0.01))
    any_store.put_analysis(make_record(cost_usd=0.02))
    any_store.put_analysis(make_record(cost_usd=0.0, cached=True))
    any_store.put_analysis(make_record(source="prometheus", cost_usd=0.0, analyzer="offline"))
    any_store.put_analysis(make_record(created_at=day2, cost_usd=0.5))
    any_store.put_analysis(make_record(created_at=T0 - timedelta(days=3), cost_usd=9.0))

    totals = any_store.cost_totals(since=T0 - timedelta(days=1))

    assert [(t.day, t.source, t.analyses, t.model_calls, t.cached) for t in totals] == [
        ("2026-11-24", "cloudwatch", 3, 2, 1),
        ("2026-11-24", "prometheus", 1, 0, 0),
        ("2026-11-25", "cloudwatch", 1, 1, 0),
    ]
    assert totals[0].cost_usd == pytest.approx(0.03)
    assert any_store.cost_totals(since=day2)[0].cost_usd == pytest.approx(0.5)


def test_period_figures_match_the_hand_count(any_store):
    seed_period(any_store)

    figures = any_store.period_figures(PERIOD_SINCE, PERIOD_UNTIL, top=3, active_shown=3)

    # Opened in [T0, T0 + 24h): A, B, D, E (C and F opened before, G after).
    assert figures.opened == {
        Severity.CRITICAL: 1,
        Severity.HIGH: 1,
        Severity.MEDIUM: 1,
        Severity.LOW: 1,
    }
    # Resolved in the period: A (CRITICAL) and C (HIGH, opened before it); F resolved before.
    assert figures.resolved == {
        Severity.CRITICAL: 1,
        Severity.HIGH: 1,
        Severity.MEDIUM: 0,
        Severity.LOW: 0,
    }
    # MTTR: (60m for A + 180m for C) / 2 = 120m.
    assert figures.resolve_seconds == pytest.approx(14_400, abs=0.01)
    assert figures.mttr == timedelta(hours=2)
    # MTTA: A after 5m, B after 15m (F was acknowledged before the period): 20m / 2 = 10m.
    assert figures.acknowledged == 2
    assert figures.ack_seconds == pytest.approx(1_200, abs=0.01)
    assert figures.mtta == timedelta(minutes=10)
    # Alerts of incidents in the period: A 3 + B 2 + C 1 + D 1 + E 2 = 9, over 5 incidents
    # (C's alert at -2h, G's at +25h and the one of no incident do not count).
    assert (figures.alerts, figures.alerted_incidents) == (9, 5)
    # db: A 3 + E 2 = 5, titled by E, whose alert is the newest; then api 2; cpu and disk 1
    # each, cpu first by name.
    assert [(f.key, f.alerts, f.title) for f in figures.top_fingerprints] == [
        ("db", 5, "<!channel> db trouble (E)"),
        ("api", 2, "<!channel> api trouble (B)"),
        ("cpu", 1, "<!channel> cpu trouble (D)"),
    ]
    # cloudwatch: A 3 + C 1 + E 2 = 6; prometheus: B 2; custom: D 1.
    assert [(s.key, s.alerts) for s in figures.top_sources] == [
        ("cloudwatch", 6),
        ("prometheus", 2),
        ("custom", 1),
    ]
    # Active now: B, D, E, G (G opened after the period, but it is open now); HIGH first, the
    # older of the two (B) before G, then MEDIUM E; LOW D is the fourth, not shown.
    assert figures.active == 4
    assert [i.id for i in figures.active_shown] == ["INC-B", "INC-G", "INC-E"]


def test_period_figures_of_an_empty_period(any_store):
    seed_period(any_store)

    figures = any_store.period_figures(T0 + timedelta(days=30), T0 + timedelta(days=31))

    assert sum(figures.opened.values()) == sum(figures.resolved.values()) == 0
    assert figures.mtta is None and figures.mttr is None
    assert (figures.alerts, figures.alerted_incidents) == (0, 0)
    assert figures.top_fingerprints == [] and figures.top_sources == []
    assert figures.active == 4, "what is open now, whatever the period"


def test_mtta_and_mttr_of_a_reopened_incident_run_from_its_reopening(
    any_store: Store, service: IncidentService, clock: ManualClock
):
    """Opened at T0, resolved by its alert at +10m, reopened at +30m (within the reopen
    window), acknowledged at +34m and resolved at +50m: the second opening took 4m to
    acknowledge and 20m to resolve, and those are the figures, not 34m and 50m."""
    incident = service.record(make_alert()).incident
    assert incident is not None
    clock.advance(minutes=10)
    service.record(make_alert(status=AlertStatus.RESOLVED))
    clock.advance(minutes=20)
    reopened = service.record(make_alert()).incident
    assert reopened is not None and reopened.reopen_count == 1
    clock.advance(minutes=4)
    service.acknowledge(incident.id, "U7")
    clock.advance(minutes=16)
    service.resolve(incident.id, "U7")

    figures = any_store.period_figures(T0, T0 + timedelta(hours=1))

    assert figures.mtta == timedelta(minutes=4)
    assert figures.mttr == timedelta(minutes=20)
    assert sum(figures.resolved.values()) == 1, "resolved twice, counted at its last resolution"
