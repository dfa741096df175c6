"""AnalysisStore on SQLite: every analysis of an incident in insertion order, and the cache of
one analysis per problem and prompt version."""

from __future__ import annotations

from datetime import UTC, datetime

from incidents.sqlite.connection import SqliteConnection
from incidents.store import AnalysisRecord

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


class SqliteAnalyses(SqliteConnection):
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

    def forget_cached_analysis(self, fingerprint: str, prompt_version: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                "DELETE FROM analysis_cache WHERE fingerprint = ? AND prompt_version = ?",
                (fingerprint, prompt_version),
            )


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
