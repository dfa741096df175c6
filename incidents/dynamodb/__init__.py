"""The DynamoDB backend: the state several replicas share, in one table (`table.py` says
how its items are laid out).

One module per role of the store contract, each a subclass of the one shared table;
`DynamoStore` is all of them over one table, which is what the bot opens.
"""

from __future__ import annotations

from incidents.dynamodb.analyses import DynamoAnalyses
from incidents.dynamodb.chat import DynamoChatRefs
from incidents.dynamodb.incidents import DynamoIncidents
from incidents.dynamodb.ingest import DynamoIngest
from incidents.dynamodb.leases import DynamoLeases
from incidents.dynamodb.outbox import DynamoOutbox
from incidents.dynamodb.reports import DynamoReports
from incidents.dynamodb.tickets import DynamoTickets

__all__ = ["DynamoStore"]


class DynamoStore(
    DynamoIncidents,
    DynamoIngest,
    DynamoAnalyses,
    DynamoReports,
    DynamoChatRefs,
    DynamoTickets,
    DynamoLeases,
    DynamoOutbox,
):
    """Every role of the store over one DynamoDB table (`DynamoTable` connects to it, and
    creates it for tests and local runs)."""
