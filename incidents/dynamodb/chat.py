"""ChatRefStore on DynamoDB: message refs beside their incident, found back through the
`message` index, and the `outbox` index of incidents whose message may be stale."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from incidents.dynamodb.table import UNSYNCED, DynamoTable, dump
from incidents.models import Incident, MessageRef
from incidents.times import utc_text


class DynamoChatRefs(DynamoTable):
    def put_message_ref(self, ref: MessageRef) -> None:
        """Moves forward only: a ref older than the stored one is a slow writer's and changes
        nothing (channel and ts included), so a failed condition is success. A ref at or past
        the incident's version then takes the incident out of the outbox index."""
        moved = self._applied(
            "update_item",
            TableName=self.table,
            Key=dump({"pk": f"INC#{ref.incident_id}", "sk": "MESSAGE"}),
            UpdateExpression="SET channel = :c, #ts = :ts, synced_version = :v, message_pk = :m",
            ConditionExpression="attribute_not_exists(pk) OR synced_version <= :v",
            ExpressionAttributeNames={"#ts": "ts"},
            ExpressionAttributeValues=dump(
                {
                    ":c": ref.channel,
                    ":ts": ref.ts,
                    ":v": ref.synced_version,
                    ":m": f"{ref.channel}#{ref.ts}",
                }
            ),
        )
        if moved:
            self._settle(ref.incident_id, "version <= :v", ref.synced_version)

    def _settle(self, incident_id: str, condition: str, version: int) -> None:
        """Take an incident out of the outbox index if `condition` on its version still holds;
        a failed condition means a newer write put it back, which is right."""
        self._applied(
            "update_item",
            TableName=self.table,
            Key=dump({"pk": f"INC#{incident_id}", "sk": "INCIDENT"}),
            UpdateExpression="REMOVE outbox_pk, outbox_sk",
            ConditionExpression=f"attribute_exists(pk) AND {condition}",
            ExpressionAttributeValues=dump({":v": version}),
        )

    def message_ref(self, incident_id: str) -> MessageRef | None:
        item = self._get(f"INC#{incident_id}", "MESSAGE")
        return _message_ref(incident_id, item) if item else None

    def incident_for_message(self, channel: str, ts: str) -> str | None:
        items = self._items(
            1,
            IndexName="message",
            KeyConditionExpression="message_pk = :m",
            ExpressionAttributeValues=dump({":m": f"{channel}#{ts}"}),
        )
        return str(items[0]["pk"]).removeprefix("INC#") if items else None

    def unsynced_incidents(self, now: datetime, limit: int = 100) -> list[Incident]:
        """Reads the outbox index oldest first, not the whole table: it holds the incidents
        written since their message last caught up. Each page's message refs and silences are
        read in two batches; an incident found in sync (a resolved one never posted included)
        leaves the index, conditional on its version, so the index stays small. The one gap
        against SQLite: a first ref posted with an older version after a resolved, never-posted
        incident left the index is not seen until the incident's next write."""
        found: list[Incident] = []
        if limit <= 0:
            return found
        for page in self._pages(
            IndexName="outbox",
            KeyConditionExpression="outbox_pk = :p",
            ExpressionAttributeValues=dump({":p": UNSYNCED}),
            Limit=100,
        ):
            incidents = [Incident.model_validate_json(item["data"]) for item in page]
            synced = {
                str(item["pk"]).removeprefix("INC#"): int(item["synced_version"])
                for item in self._batch_get([(f"INC#{i.id}", "MESSAGE") for i in incidents])
            }
            silenced = {
                str(item["pk"]).removeprefix("FP#")
                for item in self._batch_get([(f"FP#{i.fingerprint}", "SILENCE") for i in incidents])
                if str(item["until"]) > utc_text(now)
            }
            for incident in incidents:
                version = synced.get(incident.id)
                if (
                    version is None
                    and not incident.is_active
                    or (version is not None and version >= incident.version)
                ):
                    self._settle(incident.id, "version = :v", incident.version)
                elif incident.fingerprint not in silenced:
                    found.append(incident)
                    if len(found) == limit:
                        return found
        return found


def _message_ref(incident_id: str, item: dict[str, Any]) -> MessageRef:
    return MessageRef(
        incident_id=incident_id,
        channel=str(item["channel"]),
        ts=str(item["ts"]),
        synced_version=int(item["synced_version"]),
    )
