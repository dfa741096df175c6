"""IngestStore on SQLite: dead letters, kept whole; the batch and the ping are the
connection's (`SqliteConnection`)."""

from __future__ import annotations

from datetime import datetime

from incidents.models import DeadLetter
from incidents.sqlite.connection import SqliteConnection


class SqliteIngest(SqliteConnection):
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
