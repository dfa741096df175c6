"""TicketStore on SQLite: one ticket row per incident, a claim until the ticket exists."""

from __future__ import annotations

from datetime import timedelta

from incidents.models import TicketRef
from incidents.sqlite.connection import SqliteConnection
from incidents.times import as_utc


class SqliteTickets(SqliteConnection):
    def claim_ticket(self, claim: TicketRef, lease: timedelta) -> bool:
        stale_before = as_utc(claim.claimed_at - lease).isoformat()
        with self._transaction() as conn:
            inserted = conn.execute(
                "INSERT INTO tickets (incident_id, key, claimed_at, data) VALUES (?, NULL, ?, ?) "
                "ON CONFLICT(incident_id) DO UPDATE SET claimed_at = excluded.claimed_at, "
                "data = excluded.data WHERE tickets.key IS NULL AND tickets.claimed_at < ?",
                (
                    claim.incident_id,
                    as_utc(claim.claimed_at).isoformat(),
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
                (claim.incident_id, as_utc(claim.claimed_at).isoformat()),
            )
