"""The DynamoDB table every role of the DynamoDB backend shares, and its plumbing.

One table, `{prefix}-store`, holds every item under generic string keys `pk`/`sk`, because the
items one `IncidentWrite` touches (incident, fingerprint head, occurrence, timeline events) live
and die together, and one table means one TTL setting, one backup, one IAM resource and one
create call. Layout (`ts` is fixed-width UTC text, so that string order is time order):

| item | pk | sk | indexed as |
|---|---|---|---|
| incident | `INC#{id}` | `INCIDENT` | kind `INCIDENT`/ts; group `STATUS#{status}`/ts; outbox |
| timeline event | `INC#{id}` | `EVENT#{version}#{n}#{nonce}` | |
| analysis | `INC#{id}` | `ANALYSIS#{ts}#{ns}#{nonce}` | kind `ANALYSIS`/ts |
| message ref | `INC#{id}` | `MESSAGE` | message `{channel}#{ts}` |
| ticket | `INC#{id}` | `TICKET` | |
| fingerprint head / silence | `FP#{fingerprint}` | `HEAD` / `SILENCE` | |
| occurrence | `OCC#{key}` | `OCCURRENCE` | group `OCCURRENCES#{id}`/ts; kind `ALERT#{sev}`/ts |
| dead letter | `DEAD#{id}` | `LETTER`, `CHUNK#{n}` | kind `DEAD_LETTER`/ts (header only) |
| cached analysis, or its tombstone (`forgotten`) | `CACHE#{fingerprint}` | `PROMPT#{version}` | |
| lease | `LEASE#{name}` | `LEASE` | |
| delivery | `DLV#{key}` | `DELIVERY` | group `DELIVERIES#{id}`/ts; kind `DELIVERY_DUE`/due |

Four sparse global secondary indexes serve every list without a scan: `kind` (one partition per
item kind, sorted by time: incidents newest first, dead letters, analyses for cost totals),
`group` (incidents per status, occurrences per incident), `outbox` (incidents whose message may
be stale: every incident write sets it, a message ref at or past the incident's version clears
it) and `message` (a chat message back to its incident). The constant `kind` partitions take
one write per incident, analysis or dead letter: far below a partition's 1,000 writes/s.

Index reads are eventually consistent in DynamoDB (a list may lag a write by a moment); key
reads (`get_incident`, `head_incident`, `timeline`, ...) are strongly consistent. DynamoDB has
no multi-request transaction, so `batch()` groups nothing: each write is durable on its own.
Occurrences, timeline events, analyses, cached analyses and dead letters carry `expires_at`
(their own time plus `retention`) for DynamoDB's TTL, which deletes them some time after that;
reads never rely on it (moto never expires anything).

Each role of the store is a module beside this one whose class extends `DynamoTable`;
`incidents.dynamodb.DynamoStore` has them all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from incidents.store import StoreError
from incidents.times import as_utc

DEFAULT_RETENTION = timedelta(days=365)
WRITERS = 8  # independent incident writes of one batch in flight at once
ITEM_BUDGET = 350_000  # bytes of payload per item: under the 400 KB item limit, keys included
INDEXES = ("kind", "group", "outbox", "message")
UNSYNCED = "UNSYNCED"
_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


class ConditionFailed(StoreError):
    """A single-item condition failed: the caller decides what that means."""


class Cancelled(StoreError):
    """A transaction was cancelled; `reasons` holds one code per item, in request order."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(f"transaction cancelled: {reasons}")
        self.reasons = reasons


class DynamoTable:
    """Thread-safe (boto3 clients are). The client retries throttling adaptively, so a burst
    of alerts slows down instead of failing; the endpoint comes from `endpoint_url` and the
    region from `region`, or, when None, from boto3's own configuration (`AWS_ENDPOINT_URL`,
    `AWS_DEFAULT_REGION`, the profile)."""

    def __init__(
        self,
        table_prefix: str = "incident-responder",
        *,
        retention: timedelta = DEFAULT_RETENTION,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> None:
        self.table = f"{table_prefix}-store"
        self.retention = retention
        self._client: Any = boto3.client(
            "dynamodb",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(
                retries={"mode": "adaptive", "max_attempts": 10},
                max_pool_connections=WRITERS + 16,
            ),
        )
        self._writers = ThreadPoolExecutor(WRITERS, thread_name_prefix="dynamodb-write")

    def create_tables(self) -> None:
        """Create the table, its indexes and its TTL when missing, on-demand billed: for tests
        and local runs (a deployment provisions them with its template). Idempotent."""
        names = ["pk", "sk", *(f"{i}_{k}" for i in INDEXES for k in ("pk", "sk"))]
        try:
            self._client.create_table(
                TableName=self.table,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": name, "AttributeType": "S"}
                    for name in names
                    if name != "message_sk"
                ],
                KeySchema=_key_schema("pk", "sk"),
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": index,
                        "KeySchema": _key_schema(
                            f"{index}_pk", None if index == "message" else f"{index}_sk"
                        ),
                        "Projection": {"ProjectionType": "ALL"},
                    }
                    for index in INDEXES
                ],
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise StoreError(f"cannot create DynamoDB table {self.table}: {exc}") from exc
        self._client.get_waiter("table_exists").wait(
            TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        ttl = self._call("describe_time_to_live", TableName=self.table)
        if ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "DISABLED":
            self._call(
                "update_time_to_live",
                TableName=self.table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
            )

    def _call(self, operation: str, **request: Any) -> Any:
        """One request. Failed conditions become `ConditionFailed` / `Cancelled` (both
        StoreErrors, so an unexpected one still reads as a store failure); the rest StoreError."""
        try:
            return getattr(self._client, operation)(**request)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise ConditionFailed(f"condition failed on {self.table}") from exc
            if code == "TransactionCanceledException":
                reasons = exc.response.get("CancellationReasons", [])
                raise Cancelled([r.get("Code", "None") for r in reasons]) from exc
            raise StoreError(f"DynamoDB {operation} on {self.table} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"DynamoDB {operation} on {self.table} failed: {exc}") from exc

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        found = self._call(
            "get_item", TableName=self.table, Key=dump({"pk": pk, "sk": sk}), ConsistentRead=True
        )
        return load(found["Item"]) if "Item" in found else None

    def _put(
        self, item: dict[str, Any], condition: str, values: dict[str, Any] | None = None
    ) -> None:
        self._call("put_item", **self._put_request(item, condition, values))

    def _put_request(
        self, item: dict[str, Any], condition: str, values: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "Item": dump(item),
            "ConditionExpression": condition,
        }
        if values:
            request["ExpressionAttributeValues"] = dump(values)
        return request

    def _applied(self, operation: str, **request: Any) -> bool:
        """One conditional request; False when its condition failed, which its caller reads
        as "done already", "not ours" or "a newer write won", never as an error."""
        try:
            self._call(operation, **request)
        except ConditionFailed:
            return False
        return True

    def _put_if(
        self, item: dict[str, Any], condition: str, values: dict[str, Any] | None = None
    ) -> bool:
        """Put `item` if `condition` holds: False, and nothing written, when it does not."""
        return self._applied("put_item", **self._put_request(item, condition, values))

    def _pages(self, **request: Any) -> Iterator[list[dict[str, Any]]]:
        """Every page of a query, fetched only as the caller reads on."""
        while True:
            page = self._call("query", TableName=self.table, **request)
            yield [load(item) for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _items(self, limit: int | None, **request: Any) -> list[dict[str, Any]]:
        if limit is not None:
            if limit <= 0:
                return []
            request["Limit"] = limit
        items = (item for page in self._pages(**request) for item in page)
        return list(islice(items, limit))

    def _index(
        self,
        index: str,
        partition: str,
        *,
        start: str | None = None,
        newest_first: bool,
        limit: int | None,
    ) -> list[dict[str, Any]]:
        """Items of one index partition in sort-key order, from `start` on when given."""
        condition = f"{index}_pk = :p"
        values: dict[str, Any] = {":p": partition}
        if start is not None:
            condition += f" AND {index}_sk >= :start"
            values[":start"] = start
        return self._items(
            limit,
            IndexName=index,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=dump(values),
            ScanIndexForward=not newest_first,
        )

    def _batch_get(
        self, keys: Sequence[tuple[str, str]], projection: str | None = None
    ) -> list[dict[str, Any]]:
        """Strongly consistent reads of many keys, 100 per request, unprocessed ones retried;
        only the `projection` attributes when given (an occurrence's alert can be 350 KB)."""
        found: list[dict[str, Any]] = []
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 100):
            request: dict[str, Any] = {
                "Keys": [dump({"pk": pk, "sk": sk}) for pk, sk in unique[start : start + 100]],
                "ConsistentRead": True,
            }
            if projection is not None:
                request["ProjectionExpression"] = projection
            pending: dict[str, Any] = {self.table: request}
            for attempt in range(10):
                answer = self._call("batch_get_item", RequestItems=pending)
                found.extend(load(item) for item in answer["Responses"].get(self.table, []))
                pending = answer.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise StoreError(f"DynamoDB kept keys of {self.table} unprocessed")
        return found

    def _expires_at(self, moment: datetime) -> int:
        return int((as_utc(moment) + self.retention).timestamp())

    def ping(self) -> None:
        self._call("describe_table", TableName=self.table)

    def check(self) -> str:
        """The table, keyed as this release writes it, with every index it reads, and TTL on
        `expires_at`. TTL off is said, not failed: nothing is lost, old items are just kept."""
        table = self._call("describe_table", TableName=self.table)["Table"]
        keys = {key["AttributeName"]: key["KeyType"] for key in table["KeySchema"]}
        if keys != {"pk": "HASH", "sk": "RANGE"}:
            raise StoreError(f"{self.table} is keyed {keys}, not pk/sk: it is not this bot's table")
        present = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
        missing = [index for index in INDEXES if index not in present]
        if missing:
            raise StoreError(f"{self.table} lacks the index(es) {', '.join(missing)}")
        ttl = self._call("describe_time_to_live", TableName=self.table)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") and (
            ttl.get("AttributeName") == "expires_at"
        ):
            expiry = "TTL on expires_at"
        else:
            expiry = "TTL off (enable it on expires_at, or old items are kept for ever)"
        return (
            f"DynamoDB table {self.table}: {table['TableStatus']}, {len(INDEXES)} indexes, {expiry}"
        )

    def close(self) -> None:
        self._writers.shutdown(wait=True)
        self._client.close()


def _key_schema(hash_key: str, range_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key is not None:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
    return schema


def dump(values: dict[str, Any]) -> dict[str, Any]:
    """Plain values to DynamoDB's typed form; a None attribute is left out, which is what
    keeps the indexes sparse."""
    return {name: _SERIALIZER.serialize(v) for name, v in values.items() if v is not None}


def load(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _DESERIALIZER.deserialize(v) for name, v in item.items()}
