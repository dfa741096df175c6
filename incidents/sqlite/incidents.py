"""IncidentStore on SQLite: incidents, their fingerprints' heads, occurrences, timelines and
silences. A write checks its conditions inside its own transaction (or savepoint, in a batch),
as DynamoDB checks them in its conditional transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Sequence
from datetime import datetime

from incidents.escalation import waiting_since
from incidents.models import (
    Incident,
    IncidentStatus,
    Occurrence,
    Severity,
    Silence,
    TimelineEvent,
)
from incidents.sqlite.connection import SqliteConnection, chunks
from incidents.sqlite.schema import since_opening
from incidents.store import ConflictError, DuplicateOccurrenceError, IncidentWrite, StoreError
from incidents.times import as_utc


class SqliteIncidents(SqliteConnection):
    def head_incident(self, fingerprint: str) -> Incident | None:
        rows = self._query(
            "SELECT i.data FROM fingerprint_heads h JOIN incidents i ON i.id = h.incident_id "
            "WHERE h.fingerprint = ?",
            (fingerprint,),
        )
        return Incident.model_validate_json(str(rows[0][0])) if rows else None

    def heads(self, fingerprints: Collection[str]) -> dict[str, Incident]:
        found: dict[str, Incident] = {}
        for chunk in chunks(list(fingerprints)):
            rows = self._query(
                "SELECT h.fingerprint, i.data FROM fingerprint_heads h "
                "JOIN incidents i ON i.id = h.incident_id "
                f"WHERE h.fingerprint IN ({', '.join('?' for _ in chunk)})",
                chunk,
            )
            found.update((str(fp), Incident.model_validate_json(str(data))) for fp, data in rows)
        return found

    def get_incident(self, incident_id: str) -> Incident | None:
        rows = self._query("SELECT data FROM incidents WHERE id = ?", (incident_id,))
        return Incident.model_validate_json(str(rows[0][0])) if rows else None

    def write_all(self, changes: Sequence[IncidentWrite]) -> list[StoreError | None]:
        """One after the other on the one connection: inside a batch each is a savepoint, so
        a failed change is undone alone and the batch still commits once."""
        failures: list[StoreError | None] = []
        for change in changes:
            try:
                self.write(change)
            except StoreError as exc:
                failures.append(exc)
            else:
                failures.append(None)
        return failures

    def recorded_keys(self, keys: Collection[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunks(list(keys)):
            rows = self._query(
                f"SELECT key FROM occurrences WHERE key IN ({', '.join('?' for _ in chunk)})",
                chunk,
            )
            found.update(str(row[0]) for row in rows)
        return found

    def write(self, change: IncidentWrite) -> None:
        incident = change.incident
        with self._transaction() as conn:
            if change.claims_head:
                row = conn.execute(
                    "SELECT incident_id FROM fingerprint_heads WHERE fingerprint = ?",
                    (incident.fingerprint,),
                ).fetchone()
                if (row[0] if row else None) != change.previous_head:
                    raise ConflictError(f"fingerprint {incident.fingerprint} has a newer incident")
                conn.execute(
                    "INSERT INTO fingerprint_heads (fingerprint, incident_id) VALUES (?, ?) "
                    "ON CONFLICT(fingerprint) DO UPDATE SET incident_id = excluded.incident_id",
                    (incident.fingerprint, incident.id),
                )
            self._insert_occurrences(conn, change.occurrences)
            values = (
                incident.fingerprint,
                incident.status.value,
                incident.severity.value,
                incident.opened_at.isoformat(),
                *since_opening(waiting_since(incident), incident.acknowledged_at),
                *since_opening(waiting_since(incident), incident.resolved_at),
                incident.version,
                incident.model_dump_json(),
                incident.id,
            )
            if change.expected_version is None:
                try:
                    conn.execute(
                        "INSERT INTO incidents (fingerprint, status, severity, opened_at, "
                        "acknowledged_at, ack_seconds, resolved_at, resolve_seconds, version, "
                        "data, id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        values,
                    )
                except sqlite3.IntegrityError as exc:
                    raise ConflictError(f"incident {incident.id} already exists") from exc
            else:
                updated = conn.execute(
                    "UPDATE incidents SET fingerprint = ?, status = ?, severity = ?, "
                    "opened_at = ?, acknowledged_at = ?, ack_seconds = ?, resolved_at = ?, "
                    "resolve_seconds = ?, version = ?, "
                    "data = ? WHERE id = ? AND version = ?",
                    (*values, change.expected_version),
                ).rowcount
                if updated != 1:
                    raise ConflictError(
                        f"incident {incident.id} changed since version {change.expected_version}"
                    )
            conn.executemany(
                "INSERT INTO timeline (incident_id, at, data) VALUES (?, ?, ?)",
                [(e.incident_id, e.at.isoformat(), e.model_dump_json()) for e in change.events],
            )

    @staticmethod
    def _insert_occurrences(conn: sqlite3.Connection, occurrences: Sequence[Occurrence]) -> None:
        """One statement for all of a write's occurrences; a key seen before fails them all."""
        try:
            conn.executemany(
                "INSERT INTO occurrences (key, incident_id, received_at, severity, "
                "fingerprint, source, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        occurrence.key,
                        occurrence.incident_id,
                        occurrence.alert.received_at.isoformat(),
                        occurrence.alert.severity.value,
                        occurrence.alert.fingerprint,
                        occurrence.alert.source,
                        occurrence.alert.model_dump_json(),
                    )
                    for occurrence in occurrences
                ],
            )
        except sqlite3.IntegrityError as exc:
            keys = ", ".join(o.key for o in occurrences[:3])
            raise DuplicateOccurrenceError(f"an occurrence of {keys} is already recorded") from exc

    def put_occurrence(self, occurrence: Occurrence) -> bool:
        try:
            with self._transaction() as conn:
                self._insert_occurrences(conn, (occurrence,))
        except DuplicateOccurrenceError:
            return False
        return True

    def has_occurrence(self, key: str) -> bool:
        return bool(self._query("SELECT 1 FROM occurrences WHERE key = ?", (key,)))

    def list_incidents(
        self,
        *,
        statuses: Sequence[IncidentStatus] | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[Incident]:
        clauses: list[str] = []
        params: list[object] = []
        if statuses:
            clauses.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params.extend(s.value for s in statuses)
        if since is not None:
            clauses.append("opened_at >= ?")
            params.append(since.isoformat())
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(
            f"SELECT data FROM incidents {where} ORDER BY opened_at DESC LIMIT ?",
            (*params, limit),
        )
        return [Incident.model_validate_json(str(row[0])) for row in rows]

    def occurrences(self, incident_id: str, limit: int = 50) -> list[Occurrence]:
        rows = self._query(
            "SELECT key, data FROM occurrences WHERE incident_id = ? "
            "ORDER BY received_at DESC LIMIT ?",
            (incident_id, limit),
        )
        return [
            Occurrence.model_validate(
                {"key": row[0], "incident_id": incident_id, "alert": json.loads(str(row[1]))}
            )
            for row in rows
        ]

    def alerts_by_severity(
        self, severity: Severity, since: datetime, limit: int = 100
    ) -> list[Occurrence]:
        rows = self._query(
            "SELECT key, incident_id, data FROM occurrences WHERE severity = ? AND "
            "received_at >= ? ORDER BY received_at DESC LIMIT ?",
            (severity.value, as_utc(since).isoformat(), limit),
        )
        return [
            Occurrence.model_validate(
                {"key": row[0], "incident_id": row[1], "alert": json.loads(str(row[2]))}
            )
            for row in rows
        ]

    def timeline(self, incident_id: str) -> list[TimelineEvent]:
        rows = self._query(
            "SELECT data FROM timeline WHERE incident_id = ? ORDER BY seq", (incident_id,)
        )
        return [TimelineEvent.model_validate_json(str(row[0])) for row in rows]

    def put_silence(self, silence: Silence) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO silences (fingerprint, until, data) VALUES (?, ?, ?)",
                (silence.fingerprint, silence.until.isoformat(), silence.model_dump_json()),
            )

    def silence(self, fingerprint: str) -> Silence | None:
        rows = self._query("SELECT data FROM silences WHERE fingerprint = ?", (fingerprint,))
        return Silence.model_validate_json(str(rows[0][0])) if rows else None
