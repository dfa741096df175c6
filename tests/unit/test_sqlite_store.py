"""What only the SQLite backend does: one batch rolled back whole, its schema version and
migrations, and the query plans its period figures rely on. What both backends promise is
in the role contract tests (test_store_contract_*.py)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from incidents.models import IncidentStatus, Occurrence
from incidents.sqlite import SqliteStore
from incidents.sqlite.reports import _GROUPED_BY_FINGERPRINT, _PER_FINGERPRINT, _PER_SOURCE
from incidents.sqlite.schema import SCHEMA_VERSION
from incidents.store import StoreError
from tests.conftest import T0, make_alert
from tests.unit.store_contract import (
    PERIOD_SINCE,
    PERIOD_UNTIL,
    make_incident,
    make_record,
    open_incident,
    seed_period,
)


def test_an_exception_in_a_batch_rolls_back_every_write_in_it(store):
    with pytest.raises(RuntimeError), store.batch():
        open_incident(store, make_incident("INC-A"))
        raise RuntimeError("process died mid-payload")

    assert store.get_incident("INC-A") is None


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
    migrated.put_analysis(make_record())
    assert migrated.latest_analysis("INC-A") is not None
    migrated.close()


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
    open_incident(
        old,
        make_incident(
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


def test_a_version_8_database_keeps_its_cached_analyses_and_can_forget_them(tmp_path: Path):
    path = tmp_path / "v8.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE analysis_cache DROP COLUMN forgotten")
    conn.execute("PRAGMA user_version=8")
    conn.commit()
    conn.execute(
        "INSERT INTO analysis_cache (incident_id, fingerprint, source, prompt_version, "
        "created_at, analyzer, model, cached, cost_usd, body) "
        "VALUES ('INC-A', 'fp1', 'cloudwatch', 'v1', ?, 'claude', 'm', 0, 0.01, 'old')",
        (T0.isoformat(),),
    )
    conn.commit()
    conn.close()

    migrated = SqliteStore(path)
    kept = migrated.cached_analysis("fp1", "v1", not_before=T0)
    migrated.forget_cached_analysis("fp1", "v1", at=T0 + timedelta(minutes=1))
    migrated.put_cached_analysis(make_record(), begun=T0)
    forgotten = migrated.cached_analysis("fp1", "v1", not_before=T0)
    migrated.close()
    assert kept is not None and kept.body == "old"
    assert forgotten is None


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
