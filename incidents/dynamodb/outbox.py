"""OutboxStore on DynamoDB: deliveries by key, listed per incident in the `group` index and,
while pending, by when they are due in the `kind` index."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from incidents.dynamodb.table import DynamoTable, dump
from incidents.models import Delivery, DeliveryStatus
from incidents.times import utc_text


class DynamoOutbox(DynamoTable):
    def _delivery_item(self, delivery: Delivery) -> dict[str, Any]:
        """Listed per incident in the group index; in the kind index only while pending, so
        that the due list reads nothing but what is waiting."""
        item: dict[str, Any] = {
            "pk": f"DLV#{delivery.key}",
            "sk": "DELIVERY",
            "data": delivery.model_dump_json(),
            "group_pk": f"DELIVERIES#{delivery.incident_id}",
            "group_sk": f"{utc_text(delivery.requested_at)}#{delivery.key}",
        }
        if delivery.status is DeliveryStatus.PENDING:
            item["kind_pk"] = "DELIVERY_DUE"
            item["kind_sk"] = f"{utc_text(delivery.next_attempt_at)}#{delivery.key}"
        return item

    def add_delivery(self, delivery: Delivery) -> bool:
        return self._put_if(self._delivery_item(delivery), "attribute_not_exists(pk)")

    def put_delivery(self, delivery: Delivery) -> None:
        self._call("put_item", TableName=self.table, Item=dump(self._delivery_item(delivery)))

    def delivery(self, key: str) -> Delivery | None:
        item = self._get(f"DLV#{key}", "DELIVERY")
        return Delivery.model_validate_json(item["data"]) if item else None

    def deliveries(self, incident_id: str) -> list[Delivery]:
        items = self._index("group", f"DELIVERIES#{incident_id}", newest_first=False, limit=None)
        return [Delivery.model_validate_json(item["data"]) for item in items]

    def due_deliveries(self, now: datetime, limit: int = 50) -> list[Delivery]:
        """The index is read up to `now`; its lag behind a write only delays an attempt."""
        items = self._items(
            limit,
            IndexName="kind",
            KeyConditionExpression="kind_pk = :p AND kind_sk <= :now",
            ExpressionAttributeValues=dump({":p": "DELIVERY_DUE", ":now": f"{utc_text(now)}#~"}),
        )
        return [Delivery.model_validate_json(item["data"]) for item in items]
