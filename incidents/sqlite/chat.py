"""ChatRefStore on SQLite: where each incident's message is, and which incidents a resync
must post or update."""

from __future__ import annotations

from datetime import datetime

from incidents.models import Incident, MessageRef
from incidents.sqlite.connection import SqliteConnection


class SqliteChatRefs(SqliteConnection):
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


def _message_ref(row: tuple[object, ...]) -> MessageRef:
    return MessageRef(
        incident_id=str(row[0]),
        channel=str(row[1]),
        ts=str(row[2]),
        synced_version=int(str(row[3])),
    )
