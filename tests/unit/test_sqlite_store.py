"""The SQLite backend keeps the Store contract's conditions, batches and schema version."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from incidents.models import (
    Incident,
    IncidentStatus,
    MessageRef,
    Occurrence,
    Severity,
    Silence,
    TicketRef,
)
from incidents.sqlite_store import (
    _GROUPED_BY_FINGERPRINT,
    _PER_FINGERPRINT,
    _PER_SOURCE,
    SCHEMA_VERSION,
    SqliteStore,
)
from incidents.store import (
    AnalysisRecord,
    IncidentWrite,
    StoreError,
)
from tests.conftest import T0, make_alert
from tests.unit.test_store_contract import PERIOD_SINCE, PERIOD_UNTIL, seed_period


def _incident(incident_id: str = "INC-A", version: int = 1, **changes: object) -> Incident:
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


def _open(store: SqliteStore, incident: Incident, previous_head: str | None = None) -> None:
    store.write(
        IncidentWrite(
            incident=incident, expected_version=None, claims_head=True, previous_head=previous_head
        )
    )


def test_an_exception_in_a_batch_rolls_back_every_write_in_it(store):
    with pytest.raises(RuntimeError), store.batch():
        _open(store, _incident("INC-A"))
        raise RuntimeError("process died mid-payload")

    assert store.get_incident("INC-A") is None


def test_list_incidents_filters_by_status_and_time_newest_first(store):
    for n in range(4):
        status = IncidentStatus.RESOLVED if n % 2 else IncidentStatus.OPEN
        incident = _incident(f"INC-{n}", fingerprint=f"fp{n}", status=status)
        _open(store, incident.model_copy(update={"opened_at": T0 + timedelta(hours=n)}))

    assert [i.id for i in store.list_incidents()] == ["INC-3", "INC-2", "INC-1", "INC-0"]
    assert [i.id for i in store.list_incidents(statuses=[IncidentStatus.OPEN])] == [
        "INC-2",
        "INC-0",
    ]
    assert [i.id for i in store.list_incidents(since=T0 + timedelta(hours=2), limit=1)] == ["INC-3"]


def test_schema_uses_wal_indexes_and_a_version(tmp_path: Path):
    path = tmp_path / "s.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    indexes = {row[1] for row in conn.execute("SELECT * FROM sqlite_master WHERE type='index'")}
    assert "idx_incidents_fingerprint_status" in indexes
    assert "idx_incidents_status_opened_at" in indexes
    assert "idx_occurrences_incident_id_received_at" in indexes
    conn.close()


def test_a_database_from_a_newer_release_is_refused(tmp_path: Path):
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()

    with pytest.raises(StoreError, match="newer than this release"):
        SqliteStore(path)


def test_a_closed_store_reports_store_errors(tmp_path: Path):
    opened = SqliteStore(tmp_path / "c.db")
    opened.close()
    with pytest.raises(StoreError):
        opened.ping()
    with pytest.raises(StoreError):
        opened.head_incident("fp")


def _record(**changes: object) -> AnalysisRecord:
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


def test_the_newest_analysis_of_an_incident_is_the_latest(store):
    store.put_analysis(_record(body="first"))
    store.put_analysis(_record(body="second"))

    assert store.latest_analysis("INC-A").body == "second"
    assert store.latest_analysis("INC-B") is None


def test_cost_totals_per_day_and_source(store):
    day2 = T0 + timedelta(days=1)
    store.put_analysis(_record(cost_usd=0.01))
    store.put_analysis(_record(cost_usd=0.02))
    store.put_analysis(_record(cost_usd=0.0, cached=True))
    store.put_analysis(_record(source="prometheus", cost_usd=0.0, analyzer="offline"))
    store.put_analysis(_record(created_at=day2, cost_usd=0.5))

    totals = store.cost_totals(since=T0 - timedelta(days=1))

    assert [(t.day, t.source, t.analyses, t.model_calls) for t in totals] == [
        ("2026-11-24", "cloudwatch", 3, 2),
        ("2026-11-24", "prometheus", 1, 0),
        ("2026-11-25", "cloudwatch", 1, 1),
    ]
    assert totals[0].cost_usd == pytest.approx(0.03)
    assert store.cost_totals(since=day2)[0].cost_usd == pytest.approx(0.5)


def test_a_version_1_database_is_migrated_in_place(tmp_path: Path):
    path = tmp_path / "v1.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE analyses")
    conn.execute("DROP TABLE analysis_cache")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()

    migrated = SqliteStore(path)
    migrated.put_analysis(_record())
    assert migrated.latest_analysis("INC-A") is not None
    migrated.close()


def test_message_refs_find_the_incident_and_only_move_forward(store):
    store.put_message_ref(MessageRef(incident_id="INC-A", channel="C1", ts="1.1", synced_version=3))
    store.put_message_ref(MessageRef(incident_id="INC-A", channel="C1", ts="1.1", synced_version=2))

    ref = store.message_ref("INC-A")
    assert ref is not None and ref.synced_version == 3
    assert store.incident_for_message("C1", "1.1") == "INC-A"
    assert store.incident_for_message("C1", "9.9") is None


def test_unsynced_incidents_are_the_unposted_active_and_the_stale(store):
    _open(store, _incident("INC-POSTED", fingerprint="a"))
    _open(store, _incident("INC-STALE", fingerprint="b"))
    _open(store, _incident("INC-NEW", fingerprint="c"))
    _open(store, _incident("INC-OLD", fingerprint="d", status=IncidentStatus.RESOLVED))
    store.put_message_ref(
        MessageRef(incident_id="INC-POSTED", channel="C", ts="1", synced_version=1)
    )
    store.put_message_ref(
        MessageRef(incident_id="INC-STALE", channel="C", ts="2", synced_version=1)
    )
    store.write(
        IncidentWrite(
            incident=_incident("INC-STALE", fingerprint="b", version=2, occurrences=2),
            expected_version=1,
        )
    )

    assert sorted(i.id for i in store.unsynced_incidents(T0)) == ["INC-NEW", "INC-STALE"]
    store.put_silence(Silence(fingerprint="c", until=T0 + timedelta(hours=1), by="U1", at=T0))
    assert [i.id for i in store.unsynced_incidents(T0)] == ["INC-STALE"], "silenced: not posted"
    assert len(store.unsynced_incidents(T0 + timedelta(hours=2))) == 2, "the silence ended"


def test_one_ticket_claim_wins_and_a_stale_one_is_taken_over(store):
    lease = timedelta(minutes=5)
    first = TicketRef(incident_id="INC-A", claimed_by="U1", claimed_at=T0)
    second = TicketRef(incident_id="INC-A", claimed_by="U2", claimed_at=T0 + timedelta(seconds=1))
    late = TicketRef(incident_id="INC-A", claimed_by="U3", claimed_at=T0 + timedelta(minutes=6))

    assert store.claim_ticket(first, lease) is True
    assert store.claim_ticket(second, lease) is False
    assert store.claim_ticket(late, lease) is True, "the first claim's holder died"
    store.put_ticket(late.model_copy(update={"key": "OPS-1", "url": "https://jira/browse/OPS-1"}))
    much_later = late.model_copy(update={"claimed_at": T0 + timedelta(days=1)})
    assert store.claim_ticket(much_later, lease) is False, "a created ticket is never replaced"
    ticket = store.ticket("INC-A")
    assert ticket is not None and ticket.key == "OPS-1"


def test_a_version_4_database_gets_its_alerts_indexed_by_severity(tmp_path: Path):
    path = tmp_path / "v4.db"
    old = SqliteStore(path)
    old.put_occurrence(Occurrence(key="k1", incident_id=None, alert=make_alert()))
    old.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX idx_occurrences_severity_received_at")
    conn.execute("ALTER TABLE occurrences DROP COLUMN severity")
    conn.execute("PRAGMA user_version=4")
    conn.commit()
    conn.close()

    migrated = SqliteStore(path)
    found = migrated.alerts_by_severity(make_alert().severity, T0 - timedelta(hours=1))
    migrated.close()
    assert [o.key for o in found] == ["k1"]


def test_a_version_7_database_gets_its_period_figures_columns_filled(tmp_path: Path):
    path = tmp_path / "v7.db"
    old = SqliteStore(path)
    resolved = T0 + timedelta(minutes=30)
    _open(
        old,
        _incident(
            status=IncidentStatus.RESOLVED,
            acknowledged_at=T0 + timedelta(minutes=5),
            resolved_at=resolved,
        ),
    )
    old.put_occurrence(Occurrence(key="k1", incident_id="INC-A", alert=make_alert()))
    old.close()
    conn = sqlite3.connect(path)
    for index in (
        "idx_incidents_severity_resolved_at_resolve_seconds",
        "idx_incidents_acknowledged_at_ack_seconds",
        "idx_occurrences_fingerprint_received_at_incident_id",
        "idx_occurrences_source_received_at_incident_id",
    ):
        conn.execute(f"DROP INDEX {index}")
    for table, column in (
        ("incidents", "acknowledged_at"),
        ("incidents", "ack_seconds"),
        ("incidents", "resolved_at"),
        ("incidents", "resolve_seconds"),
        ("occurrences", "fingerprint"),
        ("occurrences", "source"),
    ):
        conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    conn.execute("PRAGMA user_version=7")
    conn.commit()
    conn.close()

    migrated = SqliteStore(path)
    figures = migrated.period_figures(T0, T0 + timedelta(hours=1))
    migrated.close()
    assert figures.mtta == timedelta(minutes=5) and figures.mttr == timedelta(minutes=30)
    assert [(f.key, f.alerts, f.title) for f in figures.top_fingerprints] == [
        (make_alert().fingerprint, 1, "t")
    ]
    assert [s.key for s in figures.top_sources] == ["test"]


def test_period_figures_read_index_ranges_only(store):
    """The plans the 100,000-incident benchmark relies on: every figure from an index, and
    no sort of the period's alerts."""
    plans = []
    for sql in (_PER_FINGERPRINT, _PER_SOURCE):
        params = {"since": "a", "until": "b", "top": 5}
        plans += [row[3] for row in store._conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    assert not [step for step in plans if step.startswith("SCAN occurrences")], plans
    assert not [step for step in plans if "GROUP BY" in step], plans
    assert any("fingerprint=? AND received_at>? AND received_at<?" in step for step in plans)
    assert any("source=? AND received_at>? AND received_at<?" in step for step in plans)


def test_grouping_and_walking_the_fingerprints_count_the_same(store):
    """The two plans `period_figures` chooses between give the same rows for a period."""
    seed_period(store)
    period = {"since": PERIOD_SINCE.isoformat(), "until": PERIOD_UNTIL.isoformat()}

    walked = [row for row in store._query(_PER_FINGERPRINT, period) if row[1]]
    grouped = store._query(_GROUPED_BY_FINGERPRINT, period)

    assert sorted(row[:4] for row in walked) == sorted(tuple(row[:4]) for row in grouped)
    assert len(walked) == 4


def test_a_store_of_far_more_fingerprints_than_alerts_groups_them(store, tmp_path):
    """One fingerprint per alert (a request id in the title): walking 2,000 fingerprints for a
    period of 10 alerts would read far more than grouping those 10."""
    seed_period(store)
    store._conn.executemany(
        "INSERT INTO fingerprint_heads (fingerprint, incident_id) VALUES (?, 'INC-X')",
        [(f"noise-{n}",) for n in range(2000)],
    )
    figures = store.period_figures(PERIOD_SINCE, PERIOD_UNTIL, top=3)
    assert [(f.key, f.alerts) for f in figures.top_fingerprints] == [
        ("db", 5), ("api", 2), ("cpu", 1)
    ]  # fmt: skip
