"""The SQLite backend of the Store contract: the embedded default, one file, no server.

WAL journal so that readers never block the writer; `synchronous=FULL` so that a write the
receiver has acknowledged survives a killed process and a power cut alike. Each IncidentWrite
is one transaction whose conditions are checked inside it, mirroring the DynamoDB backend's
conditional transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils
from sqlite_utils.db import Table

from incidents.escalation import waiting_since
from incidents.models import (
    DeadLetter,
    Delivery,
    DeliveryStatus,
    Incident,
    IncidentStatus,
    MessageRef,
    Occurrence,
    Severity,
    Silence,
    TicketRef,
    TimelineEvent,
)
from incidents.store import (
    AlertCount,
    AnalysisRecord,
    ConflictError,
    CostTotal,
    DuplicateOccurrenceError,
    IncidentWrite,
    LeaseGrant,
    PeriodFigures,
    StoreError,
)

SCHEMA_VERSION = 8


class SqliteStore:
    """Thread-safe: one connection, one re-entrant lock, so the receiver may call it from a worker
    thread and a batch may hold the lock across the writes it groups."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
        self._lock = threading.RLock()
        self._batch_depth = 0
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._migrate()

    def _migrate(self) -> None:
        """Apply each migration the file has not seen yet, in order; refuse a newer file."""
        db = sqlite_utils.Database(self._conn)
        found = db.execute("PRAGMA user_version").fetchone()[0]
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {found}, newer than this release "
                f"({SCHEMA_VERSION}): upgrade incident-responder"
            )
        for version, migration in enumerate(_MIGRATIONS, start=1):
            if version > found:
                migration(db)
                db.execute(f"PRAGMA user_version={version}")

    @contextmanager
    def batch(self) -> Iterator[None]:
        with self._lock:
            if self._batch_depth:
                self._batch_depth += 1
                try:
                    yield
                finally:
                    self._batch_depth -= 1
                return
            self._begin()
            self._batch_depth = 1
            try:
                yield
                self._conn.execute("COMMIT")
            except BaseException as exc:
                self._rollback()
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"SQLite write failed: {exc}") from exc
                raise
            finally:
                self._batch_depth = 0

    def _rollback(self) -> None:
        """Undo what is open, if anything is: a failed COMMIT may or may not have closed it."""
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def _begin(self) -> None:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite is unavailable: {exc}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One conditional write: its own transaction, or a savepoint inside a batch so that a
        failed condition undoes this write alone."""
        with self._lock:
            if self._batch_depth:
                self._conn.execute("SAVEPOINT write")
                try:
                    yield self._conn
                except BaseException as exc:
                    self._conn.execute("ROLLBACK TO write")
                    self._conn.execute("RELEASE write")
                    if isinstance(exc, sqlite3.Error):
                        raise StoreError(f"SQLite write failed: {exc}") from exc
                    raise
                else:
                    self._conn.execute("RELEASE write")
                return
            self._begin()
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                self._rollback()
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"SQLite write failed: {exc}") from exc
                raise

    def _query(
        self, sql: str, params: Sequence[object] | Mapping[str, object] = ()
    ) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite query failed: {exc}") from exc

    def head_incident(self, fingerprint: str) -> Incident | None:
        rows = self._query(
            "SELECT i.data FROM fingerprint_heads h JOIN incidents i ON i.id = h.incident_id "
            "WHERE h.fingerprint = ?",
            (fingerprint,),
        )
        return Incident.model_validate_json(str(rows[0][0])) if rows else None

    def heads(self, fingerprints: Collection[str]) -> dict[str, Incident]:
        found: dict[str, Incident] = {}
        for chunk in _chunks(list(fingerprints)):
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
        for chunk in _chunks(list(keys)):
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
                *_since_opening(waiting_since(incident), incident.acknowledged_at),
                *_since_opening(waiting_since(incident), incident.resolved_at),
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
            (severity.value, since.astimezone(UTC).isoformat(), limit),
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

    def put_dead_letter(self, letter: DeadLetter) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO dead_letters (id, received_at, origin, reason, size, payload) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    letter.id,
                    letter.received_at.isoformat(),
                    letter.origin,
                    letter.reason,
                    letter.size,
                    letter.payload,
                ),
            )

    def dead_letters(self, limit: int = 50) -> list[DeadLetter]:
        rows = self._query(
            "SELECT id, received_at, origin, reason, size, payload FROM dead_letters "
            "ORDER BY received_at DESC LIMIT ?",
            (limit,),
        )
        return [
            DeadLetter(
                id=str(r[0]),
                received_at=datetime.fromisoformat(str(r[1])),
                origin=str(r[2]),
                reason=str(r[3]),
                size=int(str(r[4])),
                payload=bytes(r[5]) if isinstance(r[5], bytes | bytearray | memoryview) else b"",
            )
            for r in rows
        ]

    def put_analysis(self, record: AnalysisRecord) -> None:
        with self._transaction() as conn:
            conn.execute(
                f"INSERT INTO analyses ({_ANALYSIS_COLUMNS}) VALUES ({_ANALYSIS_PLACEHOLDERS})",
                _analysis_row(record),
            )

    def latest_analysis(self, incident_id: str) -> AnalysisRecord | None:
        rows = self._query(
            f"SELECT {_ANALYSIS_COLUMNS} FROM analyses WHERE incident_id = ? "
            "ORDER BY seq DESC LIMIT 1",
            (incident_id,),
        )
        return _analysis_record(rows[0]) if rows else None

    def cached_analysis(
        self, fingerprint: str, prompt_version: str, not_before: datetime
    ) -> AnalysisRecord | None:
        rows = self._query(
            f"SELECT {_ANALYSIS_COLUMNS} FROM analysis_cache "
            "WHERE fingerprint = ? AND prompt_version = ? AND created_at >= ?",
            (fingerprint, prompt_version, not_before.astimezone(UTC).isoformat()),
        )
        return _analysis_record(rows[0]) if rows else None

    def put_cached_analysis(self, record: AnalysisRecord) -> None:
        with self._transaction() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO analysis_cache ({_ANALYSIS_COLUMNS}) "
                f"VALUES ({_ANALYSIS_PLACEHOLDERS})",
                _analysis_row(record),
            )

    def cost_totals(self, since: datetime) -> list[CostTotal]:
        rows = self._query(
            "SELECT substr(created_at, 1, 10) AS day, source, count(*), "
            "sum(CASE WHEN cached = 0 AND analyzer = 'claude' THEN 1 ELSE 0 END), "
            "sum(cached), sum(cost_usd) FROM analyses WHERE created_at >= ? "
            "GROUP BY day, source ORDER BY day, source",
            (since.astimezone(UTC).isoformat(),),
        )
        return [
            CostTotal(
                day=str(r[0]),
                source=str(r[1]),
                analyses=int(str(r[2])),
                model_calls=int(str(r[3])),
                cached=int(str(r[4])),
                cost_usd=float(str(r[5])),
            )
            for r in rows
        ]

    def period_figures(
        self, since: datetime, until: datetime, *, top: int = 5, active_shown: int = 10
    ) -> PeriodFigures:
        """Aggregates over index ranges that cover them (no table row is read but for the few
        titles and incidents shown), one range per severity or key rather than a sort of the
        period's rows, under one read transaction so that the figures agree with each other.

        Times are compared as text: `opened_at` as `list_incidents` keeps it, acknowledgement
        and resolution as fixed-width UTC, each beside its seconds since opening, which is
        what MTTA and MTTR sum."""
        start, end = _utc_text(since), _utc_text(until)
        opened_range = (since.astimezone(UTC).isoformat(), until.astimezone(UTC).isoformat())
        with self._lock, self._read():
            # One indexed range per severity: cheaper than sorting the period's rows to group.
            opened = {
                severity: self._query(
                    "SELECT count(*) FROM incidents "
                    "WHERE severity = ? AND opened_at >= ? AND opened_at < ?",
                    (severity.value, *opened_range),
                )[0]
                for severity in Severity
            }
            resolved = {
                severity: self._query(
                    "SELECT count(*), total(resolve_seconds) FROM incidents "
                    "WHERE severity = ? AND resolved_at >= ? AND resolved_at < ?",
                    (severity.value, start, end),
                )[0]
                for severity in Severity
            }
            acknowledged = self._query(
                "SELECT count(*), total(ack_seconds) FROM incidents "
                "WHERE acknowledged_at >= ? AND acknowledged_at < ?",
                (start, end),
            )[0]
            period = {"since": opened_range[0], "until": opened_range[1]}
            fingerprints = self._query("SELECT count(*) FROM fingerprint_heads")[0][0]
            alerts_in_period = self._query(
                "SELECT count(*) FROM occurrences WHERE received_at >= :since "
                "AND received_at < :until",
                period,
            )[0][0]
            # The walk costs a few seeks per fingerprint ever seen, the grouping a sort of the
            # period's alerts: the cheaper one, by what each would have to read.
            walk = int(str(fingerprints)) * _SEEKS_PER_KEY <= int(str(alerts_in_period))
            by_fingerprint = self._query(
                _PER_FINGERPRINT if walk else _GROUPED_BY_FINGERPRINT, period
            )
            by_source = self._query(
                _PER_SOURCE, {"since": opened_range[0], "until": opened_range[1], "top": top}
            )
            active = self._query(
                "SELECT count(*) FROM incidents WHERE status IN (?, ?)", _ACTIVE_STATUSES
            )[0][0]
            shown = self._query(
                "SELECT data FROM incidents WHERE status IN (?, ?) ORDER BY CASE severity "
                "WHEN 'CRITICAL' THEN 0 WHEN 'HIGH' THEN 1 WHEN 'MEDIUM' THEN 2 ELSE 3 END, "
                "opened_at, id LIMIT ?",
                (*_ACTIVE_STATUSES, active_shown),
            )
            by_fingerprint = [row for row in by_fingerprint if row[1]]
            noisiest = sorted(by_fingerprint, key=lambda r: (-int(str(r[1])), str(r[0])))[:top]
            titles = {
                str(row[0]): str(row[1])
                for row in self._query(
                    "SELECT id, json_extract(data, '$.title') FROM incidents "
                    f"WHERE id IN ({', '.join('?' for _ in noisiest)})",
                    [row[3] for row in noisiest],
                )
            }
        return PeriodFigures(
            opened={severity: int(str(row[0])) for severity, row in opened.items()},
            resolved={severity: int(str(row[0])) for severity, row in resolved.items()},
            acknowledged=int(str(acknowledged[0])),
            ack_seconds=float(str(acknowledged[1])),
            resolve_seconds=sum(float(str(row[1])) for row in resolved.values()),
            alerts=sum(int(str(r[1])) for r in by_fingerprint),
            alerted_incidents=sum(int(str(r[2])) for r in by_fingerprint),
            top_fingerprints=[
                AlertCount(str(r[0]), int(str(r[1])), titles.get(str(r[3]), "")) for r in noisiest
            ],
            top_sources=[AlertCount(str(r[0]), int(str(r[1]))) for r in by_source if r[1]],
            active=int(str(active)),
            active_shown=[Incident.model_validate_json(str(row[0])) for row in shown],
        )

    @contextmanager
    def _read(self) -> Iterator[None]:
        """One snapshot for several reads (WAL readers see the file as of their first read),
        unless a batch holds a write transaction open, which is a snapshot already."""
        if self._conn.in_transaction:
            yield
            return
        try:
            self._conn.execute("BEGIN")
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite is unavailable: {exc}") from exc
        try:
            yield
        finally:
            self._conn.execute("COMMIT")

    def put_message_ref(self, ref: MessageRef) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO message_refs (incident_id, channel, ts, synced_version) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(incident_id) DO UPDATE SET "
                "channel = excluded.channel, ts = excluded.ts, "
                "synced_version = max(synced_version, excluded.synced_version)",
                (ref.incident_id, ref.channel, ref.ts, ref.synced_version),
            )

    def message_ref(self, incident_id: str) -> MessageRef | None:
        rows = self._query(
            "SELECT incident_id, channel, ts, synced_version FROM message_refs "
            "WHERE incident_id = ?",
            (incident_id,),
        )
        return _message_ref(rows[0]) if rows else None

    def incident_for_message(self, channel: str, ts: str) -> str | None:
        rows = self._query(
            "SELECT incident_id FROM message_refs WHERE channel = ? AND ts = ?", (channel, ts)
        )
        return str(rows[0][0]) if rows else None

    def unsynced_incidents(self, now: datetime, limit: int = 100) -> list[Incident]:
        rows = self._query(
            "SELECT i.data FROM incidents i LEFT JOIN message_refs m ON m.incident_id = i.id "
            "WHERE ((m.incident_id IS NULL AND i.status != 'resolved') "
            "OR m.synced_version < i.version) AND NOT EXISTS (SELECT 1 FROM silences s "
            "WHERE s.fingerprint = i.fingerprint AND s.until > ?) "
            "ORDER BY i.opened_at LIMIT ?",
            (now.isoformat(), limit),
        )
        return [Incident.model_validate_json(str(row[0])) for row in rows]

    def claim_ticket(self, claim: TicketRef, lease: timedelta) -> bool:
        stale_before = (claim.claimed_at - lease).astimezone(UTC).isoformat()
        with self._transaction() as conn:
            inserted = conn.execute(
                "INSERT INTO tickets (incident_id, key, claimed_at, data) VALUES (?, NULL, ?, ?) "
                "ON CONFLICT(incident_id) DO UPDATE SET claimed_at = excluded.claimed_at, "
                "data = excluded.data WHERE tickets.key IS NULL AND tickets.claimed_at < ?",
                (
                    claim.incident_id,
                    claim.claimed_at.astimezone(UTC).isoformat(),
                    claim.model_dump_json(),
                    stale_before,
                ),
            ).rowcount
        return inserted == 1

    def ticket(self, incident_id: str) -> TicketRef | None:
        rows = self._query("SELECT data FROM tickets WHERE incident_id = ?", (incident_id,))
        return TicketRef.model_validate_json(str(rows[0][0])) if rows else None

    def put_ticket(self, ticket: TicketRef) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE tickets SET key = ?, data = ? WHERE incident_id = ?",
                (ticket.key, ticket.model_dump_json(), ticket.incident_id),
            )

    def release_ticket(self, claim: TicketRef) -> None:
        with self._transaction() as conn:
            conn.execute(
                "DELETE FROM tickets WHERE incident_id = ? AND key IS NULL AND claimed_at = ?",
                (claim.incident_id, claim.claimed_at.astimezone(UTC).isoformat()),
            )

    def acquire_lease(
        self, name: str, holder: str, now: datetime, duration: timedelta
    ) -> LeaseGrant:
        now_text = now.astimezone(UTC).isoformat()
        with self._transaction() as conn:
            found = conn.execute(
                "SELECT holder, until FROM leases WHERE name = ?", (name,)
            ).fetchone()
            if found is not None and found[0] != holder and str(found[1]) > now_text:
                return LeaseGrant.BUSY
            conn.execute(
                "INSERT OR REPLACE INTO leases (name, holder, until) VALUES (?, ?, ?)",
                (name, holder, (now + duration).astimezone(UTC).isoformat()),
            )
        if found is not None and found[0] != holder:
            return LeaseGrant.TAKEN_OVER
        return LeaseGrant.ACQUIRED

    def release_lease(self, name: str, holder: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    def add_delivery(self, delivery: Delivery) -> bool:
        with self._transaction() as conn:
            added = conn.execute(
                "INSERT OR IGNORE INTO deliveries (key, incident_id, status, requested_at, "
                "next_attempt_at, data) VALUES (?, ?, ?, ?, ?, ?)",
                _delivery_row(delivery),
            ).rowcount
        return added == 1

    def put_delivery(self, delivery: Delivery) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO deliveries (key, incident_id, status, requested_at, "
                "next_attempt_at, data) VALUES (?, ?, ?, ?, ?, ?)",
                _delivery_row(delivery),
            )

    def delivery(self, key: str) -> Delivery | None:
        rows = self._query("SELECT data FROM deliveries WHERE key = ?", (key,))
        return Delivery.model_validate_json(str(rows[0][0])) if rows else None

    def deliveries(self, incident_id: str) -> list[Delivery]:
        rows = self._query(
            "SELECT data FROM deliveries WHERE incident_id = ? ORDER BY requested_at, key",
            (incident_id,),
        )
        return [Delivery.model_validate_json(str(row[0])) for row in rows]

    def due_deliveries(self, now: datetime, limit: int = 50) -> list[Delivery]:
        rows = self._query(
            "SELECT data FROM deliveries WHERE status = ? AND next_attempt_at <= ? "
            "ORDER BY next_attempt_at, key LIMIT ?",
            (DeliveryStatus.PENDING.value, _utc_text(now), limit),
        )
        return [Delivery.model_validate_json(str(row[0])) for row in rows]

    def put_silence(self, silence: Silence) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO silences (fingerprint, until, data) VALUES (?, ?, ?)",
                (silence.fingerprint, silence.until.isoformat(), silence.model_dump_json()),
            )

    def silence(self, fingerprint: str) -> Silence | None:
        rows = self._query("SELECT data FROM silences WHERE fingerprint = ?", (fingerprint,))
        return Silence.model_validate_json(str(rows[0][0])) if rows else None

    def ping(self) -> None:
        self._query("SELECT 1")

    def check(self) -> str:
        """Opening the file migrated it, so its schema is this release's."""
        incidents = self._query("SELECT count(*) FROM incidents")[0][0]
        return (
            f"SQLite at {Path(self.path).resolve()}: schema {SCHEMA_VERSION}, {incidents} incidents"
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()


_ANALYSIS_FIELDS = (
    "incident_id",
    "fingerprint",
    "source",
    "prompt_version",
    "created_at",
    "analyzer",
    "model",
    "cached",
    "cost_usd",
    "body",
)
_ANALYSIS_COLUMNS = ", ".join(_ANALYSIS_FIELDS)
_ANALYSIS_PLACEHOLDERS = ", ".join("?" for _ in _ANALYSIS_FIELDS)


def _chunks(values: list[str], size: int = 500) -> Iterator[list[str]]:
    """Under SQLite's limit on bound parameters per statement (999 in older builds)."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _analysis_row(record: AnalysisRecord) -> tuple[object, ...]:
    """Times are stored as UTC ISO text, so that day totals group on the text's date part."""
    return (
        record.incident_id,
        record.fingerprint,
        record.source,
        record.prompt_version,
        record.created_at.astimezone(UTC).isoformat(),
        record.analyzer,
        record.model,
        int(record.cached),
        record.cost_usd,
        record.body,
    )


def _analysis_record(row: tuple[object, ...]) -> AnalysisRecord:
    return AnalysisRecord(
        incident_id=str(row[0]),
        fingerprint=str(row[1]),
        source=str(row[2]),
        prompt_version=str(row[3]),
        created_at=datetime.fromisoformat(str(row[4])),
        analyzer=str(row[5]),
        model=str(row[6]) if row[6] is not None else None,
        cached=bool(row[7]),
        cost_usd=float(str(row[8])),
        body=str(row[9]),
    )


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


def _message_ref(row: tuple[object, ...]) -> MessageRef:
    return MessageRef(
        incident_id=str(row[0]),
        channel=str(row[1]),
        ts=str(row[2]),
        synced_version=int(str(row[3])),
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
                    *_since_opening(waiting_since(incident), incident.acknowledged_at),
                    *_since_opening(waiting_since(incident), incident.resolved_at),
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


# Alerts per fingerprint and per source, for the incidents' alerts of a period. Grouping the
# period's rows would sort them all (150,000 for 30 days at 100,000 incidents); instead a
# recursive step walks the distinct keys of the index one seek at a time, and each key's
# figures are counted over its own index range, in key order: no sort, nothing read outside
# the period but one index entry per key. Sources are always few; fingerprints usually are
# (one per problem), and `period_figures` groups instead when they are not.
_ALERTS_OF = (
    "o.{key} = k.value AND o.received_at >= :since AND o.received_at < :until "
    "AND o.incident_id IS NOT NULL"
)
_KEYS = (
    "WITH RECURSIVE k(value) AS (SELECT min({key}) FROM occurrences UNION ALL "
    "SELECT (SELECT min({key}) FROM occurrences WHERE {key} > k.value) FROM k "
    "WHERE k.value IS NOT NULL) "
)
_PER_FINGERPRINT = _KEYS.format(key="fingerprint") + (
    "SELECT value, (SELECT count(*) FROM occurrences o WHERE {alerts}) AS alerts, "
    "(SELECT count(DISTINCT incident_id) FROM occurrences o WHERE {alerts}), "
    "(SELECT incident_id FROM occurrences o WHERE {alerts} ORDER BY received_at DESC LIMIT 1) "
    "FROM k WHERE value IS NOT NULL"
).format(alerts=_ALERTS_OF.format(key="fingerprint"))
# The same rows by grouping the period's alerts: cheaper when the store has seen far more
# fingerprints than the period has alerts (a fingerprint per request id, or a short period).
# SQLite fills the bare `incident_id` from the row that holds the max(received_at).
_GROUPED_BY_FINGERPRINT = (
    "SELECT fingerprint, count(*), count(DISTINCT incident_id), incident_id, max(received_at) "
    "FROM occurrences WHERE received_at >= :since AND received_at < :until "
    "AND incident_id IS NOT NULL GROUP BY fingerprint"
)
_SEEKS_PER_KEY = 4
_PER_SOURCE = _KEYS.format(key="source") + (
    "SELECT value, (SELECT count(*) FROM occurrences o WHERE {alerts}) AS alerts "
    "FROM k WHERE value IS NOT NULL ORDER BY alerts DESC, value LIMIT :top"
).format(alerts=_ALERTS_OF.format(key="source"))
_ACTIVE_STATUSES = (IncidentStatus.OPEN.value, IncidentStatus.ACKNOWLEDGED.value)


def _since_opening(opened: datetime, moment: datetime | None) -> tuple[str | None, float | None]:
    """A lifecycle time as the columns keep it: fixed-width UTC text, and seconds since the
    incident last opened (a reopening starts the clock again, as it clears the acknowledgement),
    which is what MTTA and MTTR average."""
    if moment is None:
        return None, None
    return _utc_text(moment), (moment - opened).total_seconds()


def _utc_text(moment: datetime) -> str:
    """Fixed-width UTC text, so that string order is time order (isoformat drops zero
    microseconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _delivery_row(delivery: Delivery) -> tuple[str, str, str, str, str, str]:
    return (
        delivery.key,
        delivery.incident_id,
        delivery.status.value,
        _utc_text(delivery.requested_at),
        _utc_text(delivery.next_attempt_at),
        delivery.model_dump_json(),
    )


_MIGRATIONS = (
    _create_incident_tables,
    _create_analysis_tables,
    _create_chat_tables,
    _create_ticket_table,
    _index_alerts_by_severity,
    _create_lease_table,
    _create_delivery_table,
    _index_period_figures,
)
