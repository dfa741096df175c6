"""The SQLite backend's tables, the migrations that build them, and how times are kept in
their columns. A migration is never edited once released: a file records how far it got
(`PRAGMA user_version`), and opening it applies the rest in order.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

import sqlite_utils
from sqlite_utils.db import Table

from incidents.escalation import waiting_since
from incidents.models import Incident
from incidents.store import StoreError
from incidents.times import utc_text

SCHEMA_VERSION = 9


def _create_incident_tables(db: sqlite_utils.Database) -> None:
    Table(db, "incidents").create(
        {
            "id": str,
            "fingerprint": str,
            "status": str,
            "severity": str,
            "opened_at": str,
            "version": int,
            "data": str,
        },
        pk="id",
        if_not_exists=True,
    )
    Table(db, "incidents").create_index(["fingerprint", "status"], if_not_exists=True)
    Table(db, "incidents").create_index(["opened_at"], if_not_exists=True)
    Table(db, "incidents").create_index(["status", "opened_at"], if_not_exists=True)
    Table(db, "incidents").create_index(["severity", "opened_at"], if_not_exists=True)
    Table(db, "fingerprint_heads").create(
        {"fingerprint": str, "incident_id": str}, pk="fingerprint", if_not_exists=True
    )
    Table(db, "occurrences").create(
        {"key": str, "incident_id": str, "received_at": str, "data": str},
        pk="key",
        if_not_exists=True,
    )
    Table(db, "occurrences").create_index(["incident_id", "received_at"], if_not_exists=True)
    Table(db, "occurrences").create_index(["received_at"], if_not_exists=True)
    Table(db, "timeline").create(
        {"seq": int, "incident_id": str, "at": str, "data": str},
        pk="seq",
        if_not_exists=True,
    )
    Table(db, "timeline").create_index(["incident_id", "seq"], if_not_exists=True)
    Table(db, "dead_letters").create(
        {
            "id": str,
            "received_at": str,
            "origin": str,
            "reason": str,
            "size": int,
            "payload": bytes,
        },
        pk="id",
        if_not_exists=True,
    )
    Table(db, "dead_letters").create_index(["received_at"], if_not_exists=True)


def _create_analysis_tables(db: sqlite_utils.Database) -> None:
    columns = {
        "incident_id": str,
        "fingerprint": str,
        "source": str,
        "prompt_version": str,
        "created_at": str,
        "analyzer": str,
        "model": str,
        "cached": int,
        "cost_usd": float,
        "body": str,
    }
    Table(db, "analyses").create({"seq": int, **columns}, pk="seq", if_not_exists=True)
    Table(db, "analyses").create_index(["incident_id", "seq"], if_not_exists=True)
    Table(db, "analyses").create_index(["created_at"], if_not_exists=True)
    Table(db, "analysis_cache").create(
        columns, pk=("fingerprint", "prompt_version"), if_not_exists=True
    )


def _create_chat_tables(db: sqlite_utils.Database) -> None:
    Table(db, "message_refs").create(
        {"incident_id": str, "channel": str, "ts": str, "synced_version": int},
        pk="incident_id",
        if_not_exists=True,
    )
    Table(db, "message_refs").create_index(["channel", "ts"], if_not_exists=True)
    Table(db, "silences").create(
        {"fingerprint": str, "until": str, "data": str}, pk="fingerprint", if_not_exists=True
    )


def _create_ticket_table(db: sqlite_utils.Database) -> None:
    Table(db, "tickets").create(
        {"incident_id": str, "key": str, "claimed_at": str, "data": str},
        pk="incident_id",
        if_not_exists=True,
    )


def _index_alerts_by_severity(db: sqlite_utils.Database) -> None:
    """Like every migration, safe on a file that already has what it adds."""
    if "severity" not in Table(db, "occurrences").columns_dict:
        db.execute("ALTER TABLE occurrences ADD COLUMN severity TEXT")
    db.execute(
        "UPDATE occurrences SET severity = json_extract(data, '$.severity') WHERE severity IS NULL"
    )
    Table(db, "occurrences").create_index(["severity", "received_at"], if_not_exists=True)


def _create_lease_table(db: sqlite_utils.Database) -> None:
    Table(db, "leases").create(
        {"name": str, "holder": str, "until": str}, pk="name", if_not_exists=True
    )


def _create_delivery_table(db: sqlite_utils.Database) -> None:
    Table(db, "deliveries").create(
        {
            "key": str,
            "incident_id": str,
            "status": str,
            "requested_at": str,
            "next_attempt_at": str,
            "data": str,
        },
        pk="key",
        if_not_exists=True,
    )
    Table(db, "deliveries").create_index(["incident_id", "requested_at"], if_not_exists=True)
    Table(db, "deliveries").create_index(["status", "next_attempt_at"], if_not_exists=True)


def _index_period_figures(db: sqlite_utils.Database) -> None:
    """Columns and indexes for `period_figures`, copied out of the JSON once: when incidents
    were acknowledged and resolved and how long after opening, and alerts' fingerprints and
    sources. The JSON times are re-read in Python, as the columns hold fixed-width UTC text."""
    incidents, occurrences = Table(db, "incidents"), Table(db, "occurrences")
    for table, column, kind in (
        (incidents, "acknowledged_at", "TEXT"),
        (incidents, "ack_seconds", "REAL"),
        (incidents, "resolved_at", "TEXT"),
        (incidents, "resolve_seconds", "REAL"),
        (occurrences, "fingerprint", "TEXT"),
        (occurrences, "source", "TEXT"),
    ):
        if column not in table.columns_dict:
            db.execute(f"ALTER TABLE {table.name} ADD COLUMN {column} {kind}")
    rows = db.execute(
        "SELECT id, data FROM incidents WHERE acknowledged_at IS NULL AND resolved_at IS NULL "
        "AND (json_extract(data, '$.acknowledged_at') IS NOT NULL "
        "OR json_extract(data, '$.resolved_at') IS NOT NULL)"
    ).fetchall()
    db.execute("BEGIN")
    try:
        for key, data in rows:
            incident = Incident.model_validate_json(data)
            db.execute(
                "UPDATE incidents SET acknowledged_at = ?, ack_seconds = ?, resolved_at = ?, "
                "resolve_seconds = ? WHERE id = ?",
                (
                    *since_opening(waiting_since(incident), incident.acknowledged_at),
                    *since_opening(waiting_since(incident), incident.resolved_at),
                    key,
                ),
            )
    except (ValueError, sqlite3.Error) as exc:  # pydantic's ValidationError is a ValueError
        db.execute("ROLLBACK")
        raise StoreError(f"cannot migrate the incidents to schema 8: {exc}") from exc
    db.execute("COMMIT")
    db.execute(
        "UPDATE occurrences SET fingerprint = json_extract(data, '$.fingerprint'), "
        "source = json_extract(data, '$.source') WHERE fingerprint IS NULL"
    )
    incidents.create_index(["severity", "resolved_at", "resolve_seconds"], if_not_exists=True)
    incidents.create_index(["acknowledged_at", "ack_seconds"], if_not_exists=True)
    occurrences.create_index(["fingerprint", "received_at", "incident_id"], if_not_exists=True)
    occurrences.create_index(["source", "received_at", "incident_id"], if_not_exists=True)


def _mark_forgotten_cache_entries(db: sqlite_utils.Database) -> None:
    """A forgotten cached analysis stays as a tombstone with the time it was forgotten (see
    `AnalysisStore.forget_cached_analysis`); every entry already there is an analysis."""
    if "forgotten" not in Table(db, "analysis_cache").columns_dict:
        db.execute("ALTER TABLE analysis_cache ADD COLUMN forgotten INTEGER NOT NULL DEFAULT 0")


def since_opening(opened: datetime, moment: datetime | None) -> tuple[str | None, float | None]:
    """A lifecycle time as the columns keep it: fixed-width UTC text, and seconds since the
    incident last opened (a reopening starts the clock again, as it clears the acknowledgement),
    which is what MTTA and MTTR average."""
    if moment is None:
        return None, None
    return utc_text(moment), (moment - opened).total_seconds()


MIGRATIONS = (
    _create_incident_tables,
    _create_analysis_tables,
    _create_chat_tables,
    _create_ticket_table,
    _index_alerts_by_severity,
    _create_lease_table,
    _create_delivery_table,
    _index_period_figures,
    _mark_forgotten_cache_entries,
)
