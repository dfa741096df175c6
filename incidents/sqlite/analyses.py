"""AnalysisStore on SQLite: every analysis of an incident in insertion order, and the cache of
one analysis per problem and prompt version."""

from __future__ import annotations

from datetime import datetime

from incidents.sqlite.connection import SqliteConnection
from incidents.store import AnalysisRecord
from incidents.times import as_utc

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
_TOMBSTONE_FIELDS = ("fingerprint", "prompt_version", "created_at")  # all a tombstone keeps


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
            "WHERE fingerprint = ? AND prompt_version = ? AND created_at >= ? AND forgotten = 0",
            (fingerprint, prompt_version, _text(not_before)),
        )
        return _analysis_record(rows[0]) if rows else None

    def put_cached_analysis(self, record: AnalysisRecord, begun: datetime | None = None) -> None:
        """One upsert whose WHERE is the check: no confirmation can land between the check and
        the write."""
        begun_text = _text(record.created_at if begun is None else begun)
        with self._transaction() as conn:
            conn.execute(_PUT_CACHED, (*_analysis_row(record), begun_text, begun_text))

    def forget_cached_analysis(self, fingerprint: str, prompt_version: str, at: datetime) -> None:
        with self._transaction() as conn:
            conn.execute(_FORGET_CACHED, (fingerprint, prompt_version, _text(at)))


_PUT_CACHED = (
    f"INSERT INTO analysis_cache ({_ANALYSIS_COLUMNS}, forgotten) "
    f"VALUES ({_ANALYSIS_PLACEHOLDERS}, 0) "
    "ON CONFLICT (fingerprint, prompt_version) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _ANALYSIS_FIELDS)
    + ", forgotten = 0 "
    "WHERE (analysis_cache.forgotten = 0 AND analysis_cache.created_at <= ?) "
    "OR (analysis_cache.forgotten = 1 AND analysis_cache.created_at < ?)"
)
"""An analysis made at the instant of the forgetting may not have known what was confirmed,
hence `<` for a tombstone where an analysis of the same instant is replaced (`<=`)."""

_FORGET_CACHED = (
    "INSERT INTO analysis_cache (fingerprint, prompt_version, created_at, forgotten) "
    "VALUES (?, ?, ?, 1) "
    "ON CONFLICT (fingerprint, prompt_version) DO UPDATE SET "
    + ", ".join(f"{name} = NULL" for name in _ANALYSIS_FIELDS if name not in _TOMBSTONE_FIELDS)
    + ", created_at = excluded.created_at, forgotten = 1 "
    "WHERE analysis_cache.forgotten = 0 OR analysis_cache.created_at < excluded.created_at"
)
"""A tombstone replaces any analysis, and an earlier tombstone: the latest forgetting holds."""


def _text(moment: datetime) -> str:
    """The cache's times as `_analysis_row` writes them, so that text order is time order."""
    return as_utc(moment).isoformat()


def _analysis_row(record: AnalysisRecord) -> tuple[object, ...]:
    """Times are stored as UTC ISO text, so that day totals group on the text's date part."""
    return (
        record.incident_id,
        record.fingerprint,
        record.source,
        record.prompt_version,
        _text(record.created_at),
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
