"""OutboxStore on SQLite: deliveries by key, listed per incident and, while pending, by
when their next attempt is due."""

from __future__ import annotations

from datetime import datetime

from incidents.models import Delivery, DeliveryStatus
from incidents.sqlite.connection import SqliteConnection
from incidents.times import utc_text


class SqliteOutbox(SqliteConnection):
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
            (DeliveryStatus.PENDING.value, utc_text(now), limit),
        )
        return [Delivery.model_validate_json(str(row[0])) for row in rows]


def _delivery_row(delivery: Delivery) -> tuple[str, str, str, str, str, str]:
    return (
        delivery.key,
        delivery.incident_id,
        delivery.status.value,
        utc_text(delivery.requested_at),
        utc_text(delivery.next_attempt_at),
        delivery.model_dump_json(),
    )
