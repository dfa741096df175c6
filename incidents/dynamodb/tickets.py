"""TicketStore on DynamoDB: one ticket item per incident, a claim until the ticket exists."""

from __future__ import annotations

from datetime import timedelta

from incidents.dynamodb.table import DynamoTable, dump
from incidents.models import TicketRef
from incidents.times import utc_text


class DynamoTickets(DynamoTable):
    def claim_ticket(self, claim: TicketRef, lease: timedelta) -> bool:
        item = {
            "pk": f"INC#{claim.incident_id}",
            "sk": "TICKET",
            "claimed_at": utc_text(claim.claimed_at),
            "data": claim.model_dump_json(),
        }
        return self._put_if(
            item,
            "attribute_not_exists(pk) OR "
            "(attribute_not_exists(ticket_key) AND claimed_at < :stale)",
            {":stale": utc_text(claim.claimed_at - lease)},
        )

    def ticket(self, incident_id: str) -> TicketRef | None:
        item = self._get(f"INC#{incident_id}", "TICKET")
        return TicketRef.model_validate_json(item["data"]) if item else None

    def put_ticket(self, ticket: TicketRef) -> None:
        """Over an existing claim only, like SQLite's UPDATE: without one, nothing changes."""
        if ticket.key is None:
            expression, values = "SET #d = :d REMOVE ticket_key", {":d": ticket.model_dump_json()}
        else:
            expression = "SET #d = :d, ticket_key = :k"
            values = {":d": ticket.model_dump_json(), ":k": ticket.key}
        self._applied(
            "update_item",
            TableName=self.table,
            Key=dump({"pk": f"INC#{ticket.incident_id}", "sk": "TICKET"}),
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#d": "data"},
            ExpressionAttributeValues=dump(values),
        )

    def release_ticket(self, claim: TicketRef) -> None:
        """Only this claim, and only while no ticket was created from it."""
        self._applied(
            "delete_item",
            TableName=self.table,
            Key=dump({"pk": f"INC#{claim.incident_id}", "sk": "TICKET"}),
            ConditionExpression="attribute_not_exists(ticket_key) AND claimed_at = :c",
            ExpressionAttributeValues=dump({":c": utc_text(claim.claimed_at)}),
        )
