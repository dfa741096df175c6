"""The SQLite backend: the embedded default, one file, no server.

One module per role of the store contract, each a subclass of the one shared connection
(`connection.py`, with the schema and its migrations in `schema.py`); `SqliteStore` is all of
them over one file, which is what the bot opens.
"""

from __future__ import annotations

from incidents.sqlite.analyses import SqliteAnalyses
from incidents.sqlite.chat import SqliteChatRefs
from incidents.sqlite.incidents import SqliteIncidents
from incidents.sqlite.ingest import SqliteIngest
from incidents.sqlite.leases import SqliteLeases
from incidents.sqlite.outbox import SqliteOutbox
from incidents.sqlite.reports import SqliteReports
from incidents.sqlite.tickets import SqliteTickets

__all__ = ["SqliteStore"]


class SqliteStore(
    SqliteIncidents,
    SqliteIngest,
    SqliteAnalyses,
    SqliteReports,
    SqliteChatRefs,
    SqliteTickets,
    SqliteLeases,
    SqliteOutbox,
):
    """Every role of the store over one SQLite file (`SqliteConnection` opens and migrates
    it)."""
