"""ReportStore on SQLite: cost totals grouped in SQL, and the rows of the period figures read
from index ranges that cover them (`incidents.figures` turns the rows into figures)."""

from __future__ import annotations

from datetime import datetime

from incidents.figures import KeyAlerts, Measured, PeriodRows, noisiest, period_figures
from incidents.models import Incident, IncidentStatus, Severity
from incidents.sqlite.connection import SqliteConnection
from incidents.store import CostTotal, PeriodFigures
from incidents.times import as_utc, utc_text

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
_MOST_SEVERE_FIRST = (
    "ORDER BY CASE severity WHEN 'CRITICAL' THEN 0 WHEN 'HIGH' THEN 1 WHEN 'MEDIUM' THEN 2 "
    "ELSE 3 END, opened_at, id"
)


class SqliteReports(SqliteConnection):
    def cost_totals(self, since: datetime) -> list[CostTotal]:
        rows = self._query(
            "SELECT substr(created_at, 1, 10) AS day, source, count(*), "
            "sum(CASE WHEN cached = 0 AND analyzer = 'claude' THEN 1 ELSE 0 END), "
            "sum(cached), sum(cost_usd) FROM analyses WHERE created_at >= ? "
            "GROUP BY day, source ORDER BY day, source",
            (as_utc(since).isoformat(),),
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
        start, end = utc_text(since), utc_text(until)
        period = {
            "since": as_utc(since).isoformat(),
            "until": as_utc(until).isoformat(),
        }
        with self._lock, self._read():
            # One indexed range per severity: cheaper than sorting the period's rows to group.
            opened = {
                severity: self._query(
                    "SELECT count(*) FROM incidents "
                    "WHERE severity = :severity AND opened_at >= :since AND opened_at < :until",
                    {"severity": severity.value, **period},
                )[0][0]
                for severity in Severity
            }
            resolved = {
                severity: self._measured(
                    "SELECT count(*), total(resolve_seconds) FROM incidents "
                    "WHERE severity = ? AND resolved_at >= ? AND resolved_at < ?",
                    (severity.value, start, end),
                )
                for severity in Severity
            }
            acknowledged = self._measured(
                "SELECT count(*), total(ack_seconds) FROM incidents "
                "WHERE acknowledged_at >= ? AND acknowledged_at < ?",
                (start, end),
            )
            fingerprints = self._alerts_per_fingerprint(period)
            sources = [
                KeyAlerts(str(row[0]), int(str(row[1])))
                for row in self._query(_PER_SOURCE, {**period, "top": top})
            ]
            active = self._query(
                "SELECT count(*) FROM incidents WHERE status IN (?, ?)", _ACTIVE_STATUSES
            )[0][0]
            shown = self._query(
                f"SELECT data FROM incidents WHERE status IN (?, ?) {_MOST_SEVERE_FIRST} LIMIT ?",
                (*_ACTIVE_STATUSES, active_shown),
            )
            titles = self._titles([row.newest_incident for row in noisiest(fingerprints, top)])
        rows = PeriodRows(
            opened={severity: int(str(count)) for severity, count in opened.items()},
            resolved=resolved,
            acknowledged=acknowledged,
            fingerprints=fingerprints,
            sources=sources,
            active=int(str(active)),
            active_first=[Incident.model_validate_json(str(row[0])) for row in shown],
            titles=titles,
        )
        return period_figures(rows, top=top, active_shown=active_shown)

    def _measured(self, sql: str, params: tuple[str, ...]) -> Measured:
        count, seconds = self._query(sql, params)[0]
        return Measured(int(str(count)), float(str(seconds)))

    def _alerts_per_fingerprint(self, period: dict[str, str]) -> list[KeyAlerts]:
        """The period's alerts per fingerprint, by walking the fingerprints' index or by
        grouping the period's alerts: the cheaper one, by what each would have to read (the
        walk costs a few seeks per fingerprint ever seen, the grouping a sort of the period's
        alerts)."""
        fingerprints = self._query("SELECT count(*) FROM fingerprint_heads")[0][0]
        alerts = self._query(
            "SELECT count(*) FROM occurrences WHERE received_at >= :since AND received_at < :until",
            period,
        )[0][0]
        walk = int(str(fingerprints)) * _SEEKS_PER_KEY <= int(str(alerts))
        return [
            KeyAlerts(str(row[0]), int(str(row[1])), int(str(row[2])), str(row[3]))
            for row in self._query(_PER_FINGERPRINT if walk else _GROUPED_BY_FINGERPRINT, period)
        ]

    def _titles(self, incident_ids: list[str]) -> dict[str, str]:
        rows = self._query(
            "SELECT id, json_extract(data, '$.title') FROM incidents "
            f"WHERE id IN ({', '.join('?' for _ in incident_ids)})",
            incident_ids,
        )
        return {str(row[0]): str(row[1]) for row in rows}
