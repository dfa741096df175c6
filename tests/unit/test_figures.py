"""The period figures from a backend's rows: the one place ranking, totals and the order of
the active incidents shown are decided, whichever backend read the rows."""

from __future__ import annotations

from datetime import timedelta

from incidents.figures import KeyAlerts, Measured, PeriodRows, measure, noisiest, period_figures
from incidents.models import Incident, IncidentStatus, Severity
from tests.conftest import T0
from tests.samples import make_incident


def _rows(**changes: object) -> PeriodRows:
    base: dict[str, object] = {
        "opened": {Severity.HIGH: 2},
        "resolved": {Severity.HIGH: Measured(1, 600.0), Severity.LOW: Measured(1, 60.0)},
        "acknowledged": Measured(1, 300.0),
        "fingerprints": [
            KeyAlerts("db", 3, 2, "INC-B"),
            KeyAlerts("api", 3, 1, "INC-A"),
            KeyAlerts("quiet", 0),
            KeyAlerts("cpu", 1, 1, "INC-C"),
        ],
        "sources": [KeyAlerts("prometheus", 2), KeyAlerts("cloudwatch", 5)],
        "active": 0,
        "active_first": [],
        "titles": {"INC-A": "API errors", "INC-B": "DB down"},
    }
    return PeriodRows(**(base | changes))  # type: ignore[arg-type]


def test_the_noisiest_keys_come_first_ties_by_name_and_silent_keys_are_left_out():
    rows = _rows().fingerprints
    assert [row.key for row in noisiest(rows, 5)] == ["api", "db", "cpu"]
    assert [row.key for row in noisiest(rows, 2)] == ["api", "db"]
    assert noisiest(rows, 0) == []


def test_figures_total_the_rows_and_name_the_noisiest_by_their_newest_incident():
    figures = period_figures(_rows(), top=2, active_shown=10)

    assert figures.opened == {
        Severity.CRITICAL: 0, Severity.HIGH: 2, Severity.MEDIUM: 0, Severity.LOW: 0
    }  # fmt: skip
    assert figures.resolved[Severity.HIGH] == 1 and figures.resolved[Severity.LOW] == 1
    assert figures.mttr == timedelta(seconds=330) and figures.mtta == timedelta(minutes=5)
    assert (figures.alerts, figures.alerted_incidents) == (7, 4)
    assert [(f.key, f.alerts, f.title) for f in figures.top_fingerprints] == [
        ("api", 3, "API errors"),
        ("db", 3, "DB down"),
    ]
    assert [(s.key, s.alerts) for s in figures.top_sources] == [
        ("cloudwatch", 5),
        ("prometheus", 2),
    ]


def test_the_active_incidents_shown_are_the_most_severe_then_the_oldest():
    def active(incident_id: str, severity: Severity, hours: int) -> Incident:
        return make_incident().model_copy(
            update={
                "id": incident_id,
                "severity": severity,
                "opened_at": T0 + timedelta(hours=hours),
            }
        )

    shown = [active("INC-1", Severity.LOW, 0), active("INC-2", Severity.CRITICAL, 2),
             active("INC-3", Severity.CRITICAL, 1), active("INC-4", Severity.HIGH, 0)]  # fmt: skip
    figures = period_figures(_rows(active=9, active_first=shown), top=5, active_shown=3)

    assert figures.active == 9
    assert [i.id for i in figures.active_shown] == ["INC-3", "INC-2", "INC-4"]


def test_measure_counts_from_the_last_opening_and_skips_the_unmeasured():
    opened = make_incident().model_copy(update={"opened_at": T0, "status": IncidentStatus.OPEN})
    acked = opened.model_copy(update={"acknowledged_at": T0 + timedelta(minutes=4)})
    reopened = acked.model_copy(
        update={"reopen_count": 1, "recent_reopens": [T0 + timedelta(minutes=1)]}
    )

    measured = measure([opened, acked, reopened], lambda i: i.acknowledged_at)

    assert measured == Measured(2, 240.0 + 180.0)
