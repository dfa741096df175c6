"""What the store contract tests (test_store_contract_*.py, one file per role) share: a
fresh store of each backend, a lifecycle over it, and the records and period they seed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from incidents.dynamodb import DynamoStore
from incidents.lifecycle import IncidentService
from incidents.models import (
    Incident,
    IncidentStatus,
    Occurrence,
    Severity,
    TimelineEvent,
    TimelineKind,
)
from incidents.sqlite import SqliteStore
from incidents.store import AnalysisRecord, IncidentWrite, Store
from tests.conftest import LIFECYCLE, T0, ManualClock, make_alert


@pytest.fixture(params=["sqlite", "dynamodb"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store of each backend: a new SQLite file, or new tables under a unique prefix."""
    opened: Store
    if request.param == "sqlite":
        opened = SqliteStore(tmp_path / "incidents.db")
    else:
        request.getfixturevalue("aws")
        dynamo = DynamoStore(table_prefix=f"test-{uuid.uuid4().hex[:8]}")
        dynamo.create_tables()
        opened = dynamo
    yield opened
    opened.close()


@pytest.fixture
def service(any_store: Store, clock: ManualClock) -> IncidentService:
    """The conftest's lifecycle over either backend."""
    return IncidentService(any_store, LIFECYCLE, clock=clock)


def make_incident(incident_id: str = "INC-A", version: int = 1, **changes: object) -> Incident:
    base = Incident(
        id=incident_id,
        fingerprint="fp1",
        title="t",
        source="test",
        severity=Severity.HIGH,
        opened_at=T0,
        last_seen_at=T0,
        version=version,
    )
    return base.model_copy(update=changes)


def open_incident(store: Store, incident: Incident, previous_head: str | None = None) -> None:
    store.write(
        IncidentWrite(
            incident=incident, expected_version=None, claims_head=True, previous_head=previous_head
        )
    )


def make_event(incident_id: str, kind: TimelineKind, detail: str = "") -> TimelineEvent:
    return TimelineEvent(incident_id=incident_id, at=T0, actor="bot", kind=kind, detail=detail)


def make_record(**changes: object) -> AnalysisRecord:
    base = AnalysisRecord(
        incident_id="INC-A",
        fingerprint="fp1",
        source="cloudwatch",
        prompt_version="v1",
        created_at=T0,
        analyzer="claude",
        model="claude-sonnet-4-6",
        cached=False,
        cost_usd=0.012,
        body='{"root_cause": "x"}',
    )
    return replace(base, **changes)  # type: ignore[arg-type]


PERIOD_SINCE = T0


PERIOD_UNTIL = T0 + timedelta(hours=24)


def at(hours: float = 0, minutes: float = 0) -> datetime:
    return T0 + timedelta(hours=hours, minutes=minutes)


def seed_period(store: Store) -> None:
    """Incidents in their final state, around the period [T0, T0 + 24h), and their alerts:

    | id | severity | fingerprint / source | opened | acknowledged | resolved | alerts in period |
    |---|---|---|---|---|---|---|
    | A | CRITICAL | db / cloudwatch | +1h | +1h05 (5m) | +2h (60m) | 3 |
    | B | HIGH | api / prometheus | +3h | +3h15 (15m) | active | 2 |
    | C | HIGH | disk / cloudwatch | -2h | | +1h (180m) | 1 (and one at -2h) |
    | D | LOW | cpu / custom | +5h | | active | 1 |
    | E | MEDIUM | db / cloudwatch | +6h | | active | 2 (the newest of db) |
    | F | CRITICAL | old / cloudwatch | -3d | -3d+10m | -2d | 0 |
    | G | HIGH | late / custom | +25h | | active | 0 (one at +25h) |

    plus an alert at +2h that belongs to no incident (a resolution of nothing open)."""
    rows = [
        ("A", Severity.CRITICAL, "db", "cloudwatch", at(1), at(1, 5), at(2)),
        ("B", Severity.HIGH, "api", "prometheus", at(3), at(3, 15), None),
        ("C", Severity.HIGH, "disk", "cloudwatch", at(-2), None, at(1)),
        ("D", Severity.LOW, "cpu", "custom", at(5), None, None),
        ("E", Severity.MEDIUM, "db", "cloudwatch", at(6), None, None),
        ("F", Severity.CRITICAL, "old", "cloudwatch", at(-72), at(-72, 10), at(-48)),
        ("G", Severity.HIGH, "late", "custom", at(25), None, None),
    ]
    heads: dict[str, str] = {}
    for key, severity, fingerprint, source, opened, acked, resolved in rows:
        status = (
            IncidentStatus.RESOLVED
            if resolved
            else IncidentStatus.ACKNOWLEDGED
            if acked
            else IncidentStatus.OPEN
        )
        incident = make_incident(
            f"INC-{key}",
            fingerprint=fingerprint,
            source=source,
            title=f"<!channel> {fingerprint} trouble ({key})",
            severity=severity,
            status=status,
            opened_at=opened,
            last_seen_at=opened,
            acknowledged_at=acked,
            resolved_at=resolved,
        )
        open_incident(store, incident, previous_head=heads.get(fingerprint))
        heads[fingerprint] = incident.id
    alerts = [
        ("A", "db", "cloudwatch", [at(1), at(1, 10), at(1, 20)]),
        ("B", "api", "prometheus", [at(3), at(4)]),
        ("C", "disk", "cloudwatch", [at(-2), at(0, 30)]),
        ("D", "cpu", "custom", [at(5)]),
        ("E", "db", "cloudwatch", [at(6), at(7)]),
        ("G", "late", "custom", [at(25)]),
        (None, "db", "cloudwatch", [at(2)]),
    ]
    for owner, problem, origin, times in alerts:
        for n, received in enumerate(times):
            alert = make_alert(problem=problem).model_copy(
                update={"fingerprint": problem, "source": origin, "received_at": received}
            )
            incident_id = f"INC-{owner}" if owner else None
            occurrence = Occurrence(key=f"{owner}-{n}", incident_id=incident_id, alert=alert)
            assert store.put_occurrence(occurrence)
