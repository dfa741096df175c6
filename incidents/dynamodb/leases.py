"""LeaseStore on DynamoDB: one conditional put per acquisition, so that of replicas racing
for a name exactly one is granted."""

from __future__ import annotations

from datetime import datetime, timedelta

from incidents.dynamodb.table import ConditionFailed, DynamoTable, dump, load
from incidents.store import LeaseGrant
from incidents.times import as_utc, utc_text


class DynamoLeases(DynamoTable):
    def acquire_lease(
        self, name: str, holder: str, now: datetime, duration: timedelta
    ) -> LeaseGrant:
        """One conditional put that returns the item it replaced: a previous holder's item
        still there means its lease expired unreleased. `expires_at` lets TTL sweep leases of
        names never used again, a day after they end."""
        until = now + duration
        try:
            answer = self._call(
                "put_item",
                **self._put_request(
                    {
                        "pk": f"LEASE#{name}",
                        "sk": "LEASE",
                        "holder": holder,
                        "until": utc_text(until),
                        "expires_at": int(as_utc(until).timestamp()) + 86_400,
                    },
                    "attribute_not_exists(pk) OR holder = :h OR #u <= :now",
                    {":h": holder, ":now": utc_text(now)},
                ),
                ExpressionAttributeNames={"#u": "until"},
                ReturnValues="ALL_OLD",
            )
        except ConditionFailed:
            return LeaseGrant.BUSY
        previous = load(answer.get("Attributes", {}))
        if previous and previous.get("holder") != holder:
            return LeaseGrant.TAKEN_OVER
        return LeaseGrant.ACQUIRED

    def release_lease(self, name: str, holder: str) -> None:
        self._applied(
            "delete_item",
            TableName=self.table,
            Key=dump({"pk": f"LEASE#{name}", "sk": "LEASE"}),
            ConditionExpression="holder = :h",
            ExpressionAttributeValues=dump({":h": holder}),
        )
