"""LeaseStore on SQLite: a lease row read and replaced inside one write transaction, so
that of two writers racing for a name exactly one is granted."""

from __future__ import annotations

from datetime import datetime, timedelta

from incidents.sqlite.connection import SqliteConnection
from incidents.store import LeaseGrant
from incidents.times import as_utc


class SqliteLeases(SqliteConnection):
    def acquire_lease(
        self, name: str, holder: str, now: datetime, duration: timedelta
    ) -> LeaseGrant:
        now_text = as_utc(now).isoformat()
        with self._transaction() as conn:
            found = conn.execute(
                "SELECT holder, until FROM leases WHERE name = ?", (name,)
            ).fetchone()
            if found is not None and found[0] != holder and str(found[1]) > now_text:
                return LeaseGrant.BUSY
            conn.execute(
                "INSERT OR REPLACE INTO leases (name, holder, until) VALUES (?, ?, ?)",
                (name, holder, as_utc(now + duration).isoformat()),
            )
        if found is not None and found[0] != holder:
            return LeaseGrant.TAKEN_OVER
        return LeaseGrant.ACQUIRED

    def release_lease(self, name: str, holder: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))
