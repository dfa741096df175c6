"""The DynamoDB backend of the Store contract: the state several replicas share.

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
| cached analysis | `CACHE#{fingerprint}` | `PROMPT#{version}` | |
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
"""

from __future__ import annotations

import time
import uuid
import zlib
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from incidents.escalation import waiting_since
from incidents.models import (
    Alert,
    DeadLetter,
    Delivery,
    DeliveryStatus,
    Incident,
    IncidentStatus,
    MessageRef,
    Occurrence,
    Severity,
    Silence,
    TicketRef,
    TimelineEvent,
)
from incidents.store import (
    AlertCount,
    AnalysisRecord,
    ConflictError,
    CostTotal,
    DuplicateOccurrenceError,
    IncidentWrite,
    LeaseGrant,
    PeriodFigures,
    StoreError,
    WriteTooLargeError,
)

DEFAULT_RETENTION = timedelta(days=365)
TRANSACTION_ITEMS = 100  # DynamoDB's TransactWriteItems limit
TRANSACTION_BYTES = 4_000_000  # its 4 MB limit, with room for keys and attribute names
WRITERS = 8  # independent incident writes of one batch in flight at once
ITEM_BUDGET = 350_000  # bytes of payload per item: under the 400 KB item limit, keys included
DEAD_LETTER_CHUNKS = 10  # 3.5 MB per letter: under the 4 MB transaction limit
INDEXES = ("kind", "group", "outbox", "message")
_UNSYNCED = "UNSYNCED"
_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


class _ConditionFailed(StoreError):
    """A single-item condition failed: the caller decides what that means."""


class _Cancelled(StoreError):
    """A transaction was cancelled; `reasons` holds one code per item, in request order."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(f"transaction cancelled: {reasons}")
        self.reasons = reasons


class DynamoStore:
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

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, operation: str, **request: Any) -> Any:
        """One request. Failed conditions become `_ConditionFailed` / `_Cancelled` (both
        StoreErrors, so an unexpected one still reads as a store failure); the rest StoreError."""
        try:
            return getattr(self._client, operation)(**request)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed(f"condition failed on {self.table}") from exc
            if code == "TransactionCanceledException":
                reasons = exc.response.get("CancellationReasons", [])
                raise _Cancelled([r.get("Code", "None") for r in reasons]) from exc
            raise StoreError(f"DynamoDB {operation} on {self.table} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"DynamoDB {operation} on {self.table} failed: {exc}") from exc

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        found = self._call(
            "get_item", TableName=self.table, Key=_dump({"pk": pk, "sk": sk}), ConsistentRead=True
        )
        return _load(found["Item"]) if "Item" in found else None

    def _put(
        self, item: dict[str, Any], condition: str, values: dict[str, Any] | None = None
    ) -> None:
        self._call("put_item", **self._put_request(item, condition, values))

    def _put_request(
        self, item: dict[str, Any], condition: str, values: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "Item": _dump(item),
            "ConditionExpression": condition,
        }
        if values:
            request["ExpressionAttributeValues"] = _dump(values)
        return request

    def _pages(self, **request: Any) -> Iterator[list[dict[str, Any]]]:
        """Every page of a query, fetched only as the caller reads on."""
        while True:
            page = self._call("query", TableName=self.table, **request)
            yield [_load(item) for item in page["Items"]]
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
            ExpressionAttributeValues=_dump(values),
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
                "Keys": [_dump({"pk": pk, "sk": sk}) for pk, sk in unique[start : start + 100]],
                "ConsistentRead": True,
            }
            if projection is not None:
                request["ProjectionExpression"] = projection
            pending: dict[str, Any] = {self.table: request}
            for attempt in range(10):
                answer = self._call("batch_get_item", RequestItems=pending)
                found.extend(_load(item) for item in answer["Responses"].get(self.table, []))
                pending = answer.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise StoreError(f"DynamoDB kept keys of {self.table} unprocessed")
        return found

    def _expires_at(self, moment: datetime) -> int:
        return int((_utc(moment) + self.retention).timestamp())

    # -- incidents --------------------------------------------------------------------------

    def head_incident(self, fingerprint: str) -> Incident | None:
        head = self._get(f"FP#{fingerprint}", "HEAD")
        return self.get_incident(str(head["incident_id"])) if head else None

    def heads(self, fingerprints: Collection[str]) -> dict[str, Incident]:
        """Two batched reads, the head pointers then their incidents, instead of two reads per
        fingerprint. A head read between the two that moved on is caught by the write's
        condition on it, as any stale read is."""
        pointers = self._batch_get([(f"FP#{fp}", "HEAD") for fp in fingerprints])
        owners = {str(item["incident_id"]): str(item["pk"])[3:] for item in pointers}
        incidents = self._batch_get([(f"INC#{id_}", "INCIDENT") for id_ in owners])
        found: dict[str, Incident] = {}
        for item in incidents:
            incident = Incident.model_validate_json(item["data"])
            found[owners[incident.id]] = incident
        return found

    def get_incident(self, incident_id: str) -> Incident | None:
        item = self._get(f"INC#{incident_id}", "INCIDENT")
        return Incident.model_validate_json(item["data"]) if item else None

    def write_all(self, changes: Sequence[IncidentWrite]) -> list[StoreError | None]:
        """Up to WRITERS transactions in flight at once: the incidents are distinct, so their
        writes are independent, and a batch costs the slowest write rather than their sum."""
        if len(changes) == 1:
            return [self._try_write(changes[0])]
        return list(self._writers.map(self._try_write, changes))

    def _try_write(self, change: IncidentWrite) -> StoreError | None:
        try:
            self.write(change)
        except StoreError as exc:  # each write's own: the others of the batch may be durable
            return exc
        return None

    def recorded_keys(self, keys: Collection[str]) -> set[str]:
        found = self._batch_get([(f"OCC#{key}", "OCCURRENCE") for key in keys], projection="pk")
        return {str(item["pk"])[4:] for item in found}

    def write(self, change: IncidentWrite) -> None:
        """One TransactWriteItems: incident, head, occurrences, events, each with its
        condition. A change past the transaction's limits is refused as WriteTooLargeError,
        for the caller to split its occurrences."""
        incident = change.incident
        if change.expected_version is None:
            actions = [self._put_request(self._incident_item(incident), "attribute_not_exists(pk)")]
        else:
            actions = [
                self._put_request(
                    self._incident_item(incident),
                    "version = :expected",
                    {":expected": change.expected_version},
                )
            ]
        head_at = None
        if change.claims_head:
            head_at = len(actions)
            head = {"pk": f"FP#{incident.fingerprint}", "sk": "HEAD", "incident_id": incident.id}
            if change.previous_head is None:
                actions.append(self._put_request(head, "attribute_not_exists(pk)"))
            else:
                actions.append(
                    self._put_request(
                        head, "incident_id = :previous", {":previous": change.previous_head}
                    )
                )
        occurrences_at = range(len(actions), len(actions) + len(change.occurrences))
        actions.extend(
            self._put_request(self._occurrence_item(occurrence), "attribute_not_exists(pk)")
            for occurrence in change.occurrences
        )
        actions.extend(
            self._put_request(
                self._event_item(event, incident.version, n), "attribute_not_exists(pk)"
            )
            for n, event in enumerate(change.events)
        )
        if len(actions) > TRANSACTION_ITEMS or _size(actions) > TRANSACTION_BYTES:
            raise WriteTooLargeError(
                f"the write of {incident.id} with {len(change.occurrences)} alerts does not "
                "fit one DynamoDB transaction"
            )
        try:
            self._call("transact_write_items", TransactItems=[{"Put": a} for a in actions])
        except _Cancelled as exc:
            raise _write_error(exc.reasons, head_at, occurrences_at, change) from exc

    def _incident_item(self, incident: Incident) -> dict[str, Any]:
        """The incident, indexed by time, by status, and in the outbox until a message shows
        this version (every write bumps the version, so every write re-enters the outbox)."""
        opened = f"{_ts(incident.opened_at)}#{incident.id}"
        return {
            "pk": f"INC#{incident.id}",
            "sk": "INCIDENT",
            "data": incident.model_dump_json(),
            "version": incident.version,
            "kind_pk": "INCIDENT",
            "kind_sk": opened,
            "group_pk": f"STATUS#{incident.status.value}",
            "group_sk": opened,
            "outbox_pk": _UNSYNCED,
            "outbox_sk": opened,
        }

    def _event_item(self, event: TimelineEvent, version: int, n: int) -> dict[str, Any]:
        """Sorted by the version of the write that added it, then its place in that write:
        insertion order, like SQLite's sequence; the nonce keeps a repeated version unique."""
        return {
            "pk": f"INC#{event.incident_id}",
            "sk": f"EVENT#{version:012d}#{n:03d}#{uuid.uuid4().hex[:8]}",
            "data": event.model_dump_json(),
            "expires_at": self._expires_at(event.at),
        }

    def _occurrence_item(self, occurrence: Occurrence) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": f"OCC#{occurrence.key}",
            "sk": "OCCURRENCE",
            "key": occurrence.key,
            "incident_id": occurrence.incident_id,
            "expires_at": self._expires_at(occurrence.alert.received_at),
            **_alert_attributes(occurrence.alert),
        }
        if occurrence.incident_id is not None:
            item["group_pk"] = f"OCCURRENCES#{occurrence.incident_id}"
            item["group_sk"] = f"{_ts(occurrence.alert.received_at)}#{occurrence.key}"
        item["kind_pk"] = f"ALERT#{occurrence.alert.severity.value}"
        item["kind_sk"] = f"{_ts(occurrence.alert.received_at)}#{occurrence.key}"
        return item

    def put_occurrence(self, occurrence: Occurrence) -> bool:
        try:
            self._put(self._occurrence_item(occurrence), "attribute_not_exists(pk)")
        except _ConditionFailed:
            return False
        return True

    def has_occurrence(self, key: str) -> bool:
        return self._get(f"OCC#{key}", "OCCURRENCE") is not None

    def list_incidents(
        self,
        *,
        statuses: Sequence[IncidentStatus] | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[Incident]:
        """One index query (all incidents), or one per status merged: never a scan."""
        start = _ts(since) if since is not None else None
        if statuses:
            items = [
                item
                for status in dict.fromkeys(statuses)
                for item in self._index(
                    "group", f"STATUS#{status.value}", start=start, newest_first=True, limit=limit
                )
            ]
            items.sort(key=lambda item: str(item["kind_sk"]), reverse=True)
        else:
            items = self._index("kind", "INCIDENT", start=start, newest_first=True, limit=limit)
        return [Incident.model_validate_json(item["data"]) for item in items[: max(limit, 0)]]

    def occurrences(self, incident_id: str, limit: int = 50) -> list[Occurrence]:
        items = self._index("group", f"OCCURRENCES#{incident_id}", newest_first=True, limit=limit)
        return [
            Occurrence(key=str(item["key"]), incident_id=incident_id, alert=_alert(item))
            for item in items
        ]

    def alerts_by_severity(
        self, severity: Severity, since: datetime, limit: int = 100
    ) -> list[Occurrence]:
        items = self._index(
            "kind", f"ALERT#{severity.value}", start=_ts(since), newest_first=True, limit=limit
        )
        return [
            Occurrence(
                key=str(item["key"]),
                incident_id=str(item["incident_id"]) if item.get("incident_id") else None,
                alert=_alert(item),
            )
            for item in items
        ]

    def timeline(self, incident_id: str) -> list[TimelineEvent]:
        items = self._items(
            None,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :event)",
            ExpressionAttributeValues=_dump({":pk": f"INC#{incident_id}", ":event": "EVENT#"}),
            ConsistentRead=True,
        )
        return [TimelineEvent.model_validate_json(item["data"]) for item in items]

    # -- dead letters -----------------------------------------------------------------------

    def put_dead_letter(self, letter: DeadLetter) -> None:
        """Kept whole in chunks of ITEM_BUDGET bytes written in one transaction, because a
        DynamoDB item holds 400 KB and payloads reach 1 MiB. Beyond DEAD_LETTER_CHUNKS chunks
        (3.5 MB, past any payload the receivers accept) the rest is cut, and the reason says so.
        """
        payload = letter.payload
        reason = letter.reason
        if len(payload) > ITEM_BUDGET * DEAD_LETTER_CHUNKS:
            payload = payload[: ITEM_BUDGET * DEAD_LETTER_CHUNKS]
            reason += (
                f" (payload cut to its first {len(payload)} of {len(letter.payload)} bytes: "
                "DynamoDB transaction limit)"
            )
        chunks = [
            payload[at : at + ITEM_BUDGET] for at in range(0, max(len(payload), 1), ITEM_BUDGET)
        ]
        received = _ts(letter.received_at)
        expires_at = self._expires_at(letter.received_at)
        header = {
            "pk": f"DEAD#{letter.id}",
            "sk": "LETTER",
            "kind_pk": "DEAD_LETTER",
            "kind_sk": f"{received}#{letter.id}",
            "id": letter.id,
            "received_at": received,
            "origin": letter.origin,
            "reason": reason,
            "size": letter.size,
            "chunks": len(chunks),
            "payload": chunks[0],
            "expires_at": expires_at,
        }
        actions = [self._put_request(header, "attribute_not_exists(pk)")]
        actions.extend(
            self._put_request(
                {
                    "pk": f"DEAD#{letter.id}",
                    "sk": f"CHUNK#{n:03d}",
                    "payload": chunk,
                    "expires_at": expires_at,
                },
                "attribute_not_exists(pk)",
            )
            for n, chunk in enumerate(chunks[1:], start=1)
        )
        if len(actions) == 1:
            self._call("put_item", **actions[0])
        else:
            self._call("transact_write_items", TransactItems=[{"Put": a} for a in actions])

    def dead_letters(self, limit: int = 50) -> list[DeadLetter]:
        letters = []
        for header in self._index("kind", "DEAD_LETTER", newest_first=True, limit=limit):
            payload = bytes(header["payload"].value)
            if int(header["chunks"]) > 1:
                rest = self._items(
                    None,
                    KeyConditionExpression="pk = :pk AND begins_with(sk, :chunk)",
                    ExpressionAttributeValues=_dump({":pk": header["pk"], ":chunk": "CHUNK#"}),
                    ConsistentRead=True,
                )
                payload += b"".join(bytes(item["payload"].value) for item in rest)
            letters.append(
                DeadLetter(
                    id=str(header["id"]),
                    received_at=datetime.fromisoformat(str(header["received_at"])),
                    origin=str(header["origin"]),
                    reason=str(header["reason"]),
                    size=int(header["size"]),
                    payload=payload,
                )
            )
        return letters

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Groups nothing: DynamoDB has no transaction across requests, and each write here is
        already durable and conditional on its own, which the protocol allows."""
        yield

    # -- analyses ---------------------------------------------------------------------------

    def put_analysis(self, record: AnalysisRecord) -> None:
        """Sorted by creation time, then by the write's clock for equal times: the newest is
        the latest, as SQLite's insertion order gives when analyses arrive in time order."""
        created = _ts(record.created_at)
        order = f"{created}#{time.time_ns():020d}#{uuid.uuid4().hex[:8]}"
        item = {
            **self._analysis_attributes(record),
            "pk": f"INC#{record.incident_id}",
            "sk": f"ANALYSIS#{order}",
            "kind_pk": "ANALYSIS",
            "kind_sk": order,
        }
        self._put(item, "attribute_not_exists(pk)")

    def latest_analysis(self, incident_id: str) -> AnalysisRecord | None:
        items = self._items(
            1,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :analysis)",
            ExpressionAttributeValues=_dump(
                {":pk": f"INC#{incident_id}", ":analysis": "ANALYSIS#"}
            ),
            ScanIndexForward=False,
            ConsistentRead=True,
        )
        return _analysis_record(items[0]) if items else None

    def cached_analysis(
        self, fingerprint: str, prompt_version: str, not_before: datetime
    ) -> AnalysisRecord | None:
        item = self._get(f"CACHE#{fingerprint}", f"PROMPT#{prompt_version}")
        if item is None or str(item["created_at"]) < _ts(not_before):
            return None
        return _analysis_record(item)

    def put_cached_analysis(self, record: AnalysisRecord) -> None:
        """Conditional on being at least as new as the cached one: a slow writer of an older
        analysis cannot replace a newer one (a failed condition is that case, not an error)."""
        item = {
            **self._analysis_attributes(record),
            "pk": f"CACHE#{record.fingerprint}",
            "sk": f"PROMPT#{record.prompt_version}",
        }
        try:
            self._put(
                item,
                "attribute_not_exists(pk) OR created_at <= :created",
                {":created": item["created_at"]},
            )
        except _ConditionFailed:
            return

    def _analysis_attributes(self, record: AnalysisRecord) -> dict[str, Any]:
        return {
            "incident_id": record.incident_id,
            "fingerprint": record.fingerprint,
            "source": record.source,
            "prompt_version": record.prompt_version,
            "created_at": _ts(record.created_at),
            "analyzer": record.analyzer,
            "model": record.model,
            "cached": record.cached,
            "cost_usd": Decimal(str(record.cost_usd)),
            "body": record.body,
            "expires_at": self._expires_at(record.created_at),
        }

    def cost_totals(self, since: datetime) -> list[CostTotal]:
        """A query of the analyses' time index from `since` on, summed here per day and
        source: DynamoDB has no GROUP BY. The body is not fetched."""
        totals: dict[tuple[str, str], list[Any]] = {}
        for page in self._pages(
            IndexName="kind",
            KeyConditionExpression="kind_pk = :p AND kind_sk >= :since",
            ExpressionAttributeValues=_dump({":p": "ANALYSIS", ":since": _ts(since)}),
            ProjectionExpression="#c, #s, #a, #k, #u",
            ExpressionAttributeNames={
                "#c": "created_at",
                "#s": "source",
                "#a": "analyzer",
                "#k": "cached",
                "#u": "cost_usd",
            },
        ):
            for item in page:
                total = totals.setdefault(
                    (str(item["created_at"])[:10], str(item["source"])), [0, 0, 0, Decimal(0)]
                )
                total[0] += 1
                total[1] += int(not item["cached"] and item["analyzer"] == "claude")
                total[2] += int(bool(item["cached"]))
                total[3] += item["cost_usd"]
        return [
            CostTotal(
                day=day,
                source=source,
                analyses=count,
                model_calls=calls,
                cached=cached,
                cost_usd=float(cost),
            )
            for (day, source), (count, calls, cached, cost) in sorted(totals.items())
        ]

    # -- period figures ---------------------------------------------------------------------

    def period_figures(
        self, since: datetime, until: datetime, *, top: int = 5, active_shown: int = 10
    ) -> PeriodFigures:
        """Index queries summed here, DynamoDB having no GROUP BY: the incidents opened in the
        period (time index), the active ones (their two status partitions), the resolved ones
        opened before `until`, and the period's alerts (one time-index partition per
        severity). Resolution and acknowledgement times are in no index key, so the resolved
        partition is read whole up to `until`, incident data only: a cost that grows with the
        incidents ever resolved, where SQLite reads only the period's."""
        start, end = _ts(since), _ts(until)
        # Keys are `{time}#{id}`, never equal to a bare time: BETWEEN is [start, end) here.
        opened = Counter(i.severity for i in self._incidents("kind", "INCIDENT", start, end))
        active = [
            incident
            for status in (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED)
            for incident in self._incidents("group", f"STATUS#{status.value}", None, None)
        ]
        closed = self._incidents("group", f"STATUS#{IncidentStatus.RESOLVED.value}", None, end)
        resolved = [i for i in closed if _within(i.resolved_at, since, until)]
        acknowledged = [i for i in (*active, *closed) if _within(i.acknowledged_at, since, until)]
        alerts = Counter[str]()
        sources = Counter[str]()
        incidents_of: dict[str, set[str]] = {}
        latest: dict[str, tuple[str, str]] = {}
        for severity in Severity:
            for item in self._index_range(f"ALERT#{severity.value}", start, end):
                alert = _alert(item)
                if not item.get("incident_id"):
                    continue
                incident_id = str(item["incident_id"])
                alerts[alert.fingerprint] += 1
                sources[alert.source] += 1
                incidents_of.setdefault(alert.fingerprint, set()).add(incident_id)
                newest = (str(item["kind_sk"]), incident_id)
                latest[alert.fingerprint] = max(latest.get(alert.fingerprint, newest), newest)
        noisiest = _most(alerts, top)
        titles = {
            str(item["pk"]).removeprefix("INC#"): Incident.model_validate_json(item["data"]).title
            for item in self._batch_get(
                [(f"INC#{latest[fingerprint][1]}", "INCIDENT") for fingerprint, _ in noisiest]
            )
        }
        active.sort(key=lambda i: (-i.severity.rank, _utc(i.opened_at), i.id))
        return PeriodFigures(
            opened={severity: opened[severity] for severity in Severity},
            resolved={
                severity: sum(i.severity is severity for i in resolved) for severity in Severity
            },
            acknowledged=len(acknowledged),
            ack_seconds=sum(_seconds(waiting_since(i), i.acknowledged_at) for i in acknowledged),
            resolve_seconds=sum(_seconds(waiting_since(i), i.resolved_at) for i in resolved),
            alerts=alerts.total(),
            alerted_incidents=sum(len(ids) for ids in incidents_of.values()),
            top_fingerprints=[
                AlertCount(fingerprint, count, titles.get(latest[fingerprint][1], ""))
                for fingerprint, count in noisiest
            ],
            top_sources=[AlertCount(source, count) for source, count in _most(sources, top)],
            active=len(active),
            active_shown=active[: max(active_shown, 0)],
        )

    def _incidents(
        self, index: str, partition: str, start: str | None, end: str | None
    ) -> list[Incident]:
        """The incidents of one index partition whose sort key (opening time, then id) is in
        [start, end), either bound open when None; only their data is fetched."""
        condition = f"{index}_pk = :p"
        values: dict[str, Any] = {":p": partition}
        if start is not None and end is not None:
            condition += f" AND {index}_sk BETWEEN :start AND :end"
            values |= {":start": start, ":end": end}
        elif end is not None:
            condition += f" AND {index}_sk < :end"
            values[":end"] = end
        items = self._items(
            None,
            IndexName=index,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=_dump(values),
            ProjectionExpression="#d",
            ExpressionAttributeNames={"#d": "data"},
        )
        return [Incident.model_validate_json(item["data"]) for item in items]

    def _index_range(self, partition: str, start: str, end: str) -> Iterator[dict[str, Any]]:
        """The items of one `kind` partition from `start` to `end`, page by page, without the
        keys and attributes no figure reads."""
        for page in self._pages(
            IndexName="kind",
            KeyConditionExpression="kind_pk = :p AND kind_sk BETWEEN :start AND :end",
            ExpressionAttributeValues=_dump({":p": partition, ":start": start, ":end": end}),
            ProjectionExpression="incident_id, kind_sk, alert, alert_z",
        ):
            yield from page

    # -- chat messages ----------------------------------------------------------------------

    def put_message_ref(self, ref: MessageRef) -> None:
        """Moves forward only: a ref older than the stored one is a slow writer's and changes
        nothing (channel and ts included), so a failed condition is success. A ref at or past
        the incident's version then takes the incident out of the outbox index."""
        try:
            self._call(
                "update_item",
                TableName=self.table,
                Key=_dump({"pk": f"INC#{ref.incident_id}", "sk": "MESSAGE"}),
                UpdateExpression="SET channel = :c, #ts = :ts, synced_version = :v, "
                "message_pk = :m",
                ConditionExpression="attribute_not_exists(pk) OR synced_version <= :v",
                ExpressionAttributeNames={"#ts": "ts"},
                ExpressionAttributeValues=_dump(
                    {
                        ":c": ref.channel,
                        ":ts": ref.ts,
                        ":v": ref.synced_version,
                        ":m": f"{ref.channel}#{ref.ts}",
                    }
                ),
            )
        except _ConditionFailed:
            return
        self._settle(ref.incident_id, "version <= :v", ref.synced_version)

    def _settle(self, incident_id: str, condition: str, version: int) -> None:
        """Take an incident out of the outbox index if `condition` on its version still holds;
        a failed condition means a newer write put it back, which is right."""
        try:
            self._call(
                "update_item",
                TableName=self.table,
                Key=_dump({"pk": f"INC#{incident_id}", "sk": "INCIDENT"}),
                UpdateExpression="REMOVE outbox_pk, outbox_sk",
                ConditionExpression=f"attribute_exists(pk) AND {condition}",
                ExpressionAttributeValues=_dump({":v": version}),
            )
        except _ConditionFailed:
            return

    def message_ref(self, incident_id: str) -> MessageRef | None:
        item = self._get(f"INC#{incident_id}", "MESSAGE")
        return _message_ref(incident_id, item) if item else None

    def incident_for_message(self, channel: str, ts: str) -> str | None:
        items = self._items(
            1,
            IndexName="message",
            KeyConditionExpression="message_pk = :m",
            ExpressionAttributeValues=_dump({":m": f"{channel}#{ts}"}),
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
            ExpressionAttributeValues=_dump({":p": _UNSYNCED}),
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
                if str(item["until"]) > _ts(now)
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

    # -- tickets and silences ---------------------------------------------------------------

    def claim_ticket(self, claim: TicketRef, lease: timedelta) -> bool:
        item = {
            "pk": f"INC#{claim.incident_id}",
            "sk": "TICKET",
            "claimed_at": _ts(claim.claimed_at),
            "data": claim.model_dump_json(),
        }
        try:
            self._put(
                item,
                "attribute_not_exists(pk) OR "
                "(attribute_not_exists(ticket_key) AND claimed_at < :stale)",
                {":stale": _ts(claim.claimed_at - lease)},
            )
        except _ConditionFailed:
            return False
        return True

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
        try:
            self._call(
                "update_item",
                TableName=self.table,
                Key=_dump({"pk": f"INC#{ticket.incident_id}", "sk": "TICKET"}),
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#d": "data"},
                ExpressionAttributeValues=_dump(values),
            )
        except _ConditionFailed:
            return

    def release_ticket(self, claim: TicketRef) -> None:
        """Only this claim, and only while no ticket was created from it."""
        try:
            self._call(
                "delete_item",
                TableName=self.table,
                Key=_dump({"pk": f"INC#{claim.incident_id}", "sk": "TICKET"}),
                ConditionExpression="attribute_not_exists(ticket_key) AND claimed_at = :c",
                ExpressionAttributeValues=_dump({":c": _ts(claim.claimed_at)}),
            )
        except _ConditionFailed:
            return

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
                        "until": _ts(until),
                        "expires_at": int(_utc(until).timestamp()) + 86_400,
                    },
                    "attribute_not_exists(pk) OR holder = :h OR #u <= :now",
                    {":h": holder, ":now": _ts(now)},
                ),
                ExpressionAttributeNames={"#u": "until"},
                ReturnValues="ALL_OLD",
            )
        except _ConditionFailed:
            return LeaseGrant.BUSY
        previous = _load(answer.get("Attributes", {}))
        if previous and previous.get("holder") != holder:
            return LeaseGrant.TAKEN_OVER
        return LeaseGrant.ACQUIRED

    def release_lease(self, name: str, holder: str) -> None:
        try:
            self._call(
                "delete_item",
                TableName=self.table,
                Key=_dump({"pk": f"LEASE#{name}", "sk": "LEASE"}),
                ConditionExpression="holder = :h",
                ExpressionAttributeValues=_dump({":h": holder}),
            )
        except _ConditionFailed:
            return

    # -- deliveries --------------------------------------------------------------------------

    def _delivery_item(self, delivery: Delivery) -> dict[str, Any]:
        """Listed per incident in the group index; in the kind index only while pending, so
        that the due list reads nothing but what is waiting."""
        item: dict[str, Any] = {
            "pk": f"DLV#{delivery.key}",
            "sk": "DELIVERY",
            "data": delivery.model_dump_json(),
            "group_pk": f"DELIVERIES#{delivery.incident_id}",
            "group_sk": f"{_ts(delivery.requested_at)}#{delivery.key}",
        }
        if delivery.status is DeliveryStatus.PENDING:
            item["kind_pk"] = "DELIVERY_DUE"
            item["kind_sk"] = f"{_ts(delivery.next_attempt_at)}#{delivery.key}"
        return item

    def add_delivery(self, delivery: Delivery) -> bool:
        try:
            self._put(self._delivery_item(delivery), "attribute_not_exists(pk)")
        except _ConditionFailed:
            return False
        return True

    def put_delivery(self, delivery: Delivery) -> None:
        self._call("put_item", TableName=self.table, Item=_dump(self._delivery_item(delivery)))

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
            ExpressionAttributeValues=_dump({":p": "DELIVERY_DUE", ":now": f"{_ts(now)}#~"}),
        )
        return [Delivery.model_validate_json(item["data"]) for item in items]

    def put_silence(self, silence: Silence) -> None:
        """Unconditional, like SQLite's replace: a person's latest silence is the one that
        holds, even a shorter one."""
        self._call(
            "put_item",
            TableName=self.table,
            Item=_dump(
                {
                    "pk": f"FP#{silence.fingerprint}",
                    "sk": "SILENCE",
                    "until": _ts(silence.until),
                    "data": silence.model_dump_json(),
                }
            ),
        )

    def silence(self, fingerprint: str) -> Silence | None:
        item = self._get(f"FP#{fingerprint}", "SILENCE")
        return Silence.model_validate_json(item["data"]) if item else None

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


def _write_error(
    reasons: list[str], head_at: int | None, occurrences_at: range, change: IncidentWrite
) -> StoreError:
    """Name the failed condition in SQLite's order: the head, then the occurrences, then the
    incident. A concurrent transaction on the same items is a lost race too."""
    failed = {n for n, code in enumerate(reasons) if code == "ConditionalCheckFailed"}
    incident = change.incident
    if head_at in failed:
        return ConflictError(f"fingerprint {incident.fingerprint} has a newer incident")
    for at in occurrences_at:
        if at in failed:
            key = change.occurrences[at - occurrences_at.start].key
            return DuplicateOccurrenceError(f"occurrence {key} already recorded")
    if failed:
        if change.expected_version is None:
            return ConflictError(f"incident {incident.id} already exists")
        return ConflictError(
            f"incident {incident.id} changed since version {change.expected_version}"
        )
    if "TransactionConflict" in reasons:
        return ConflictError(f"a concurrent write touched incident {incident.id}")
    return StoreError(f"DynamoDB cancelled the write of {incident.id}: {reasons}")


def _size(actions: list[dict[str, Any]]) -> int:
    """Roughly what DynamoDB counts against a transaction's 4 MB: the attribute values."""
    total = 0
    for action in actions:
        for value in action["Item"].values():
            total += len(value.get("S", "")) + len(value.get("B", b""))
    return total


def _alert_attributes(alert: Alert) -> dict[str, Any]:
    """The alert as JSON; compressed past ITEM_BUDGET (alert JSON packs tightly), and with its
    raw payload replaced by a note in the rare case that still does not fit an item."""
    text = alert.model_dump_json().encode()
    if len(text) <= ITEM_BUDGET:
        return {"alert": text.decode()}
    packed = zlib.compress(text)
    if len(packed) <= ITEM_BUDGET:
        return {"alert_z": packed}
    note = f"[raw payload dropped: the alert took {len(text)} bytes, more than an item holds]"
    return {"alert": alert.model_copy(update={"raw": note}).model_dump_json()}


def _alert(item: dict[str, Any]) -> Alert:
    if "alert_z" in item:
        return Alert.model_validate_json(zlib.decompress(bytes(item["alert_z"].value)))
    return Alert.model_validate_json(item["alert"])


def _analysis_record(item: dict[str, Any]) -> AnalysisRecord:
    return AnalysisRecord(
        incident_id=str(item["incident_id"]),
        fingerprint=str(item["fingerprint"]),
        source=str(item["source"]),
        prompt_version=str(item["prompt_version"]),
        created_at=datetime.fromisoformat(str(item["created_at"])),
        analyzer=str(item["analyzer"]),
        model=str(item["model"]) if "model" in item else None,
        cached=bool(item["cached"]),
        cost_usd=float(item["cost_usd"]),
        body=str(item["body"]),
    )


def _message_ref(incident_id: str, item: dict[str, Any]) -> MessageRef:
    return MessageRef(
        incident_id=incident_id,
        channel=str(item["channel"]),
        ts=str(item["ts"]),
        synced_version=int(item["synced_version"]),
    )


def _within(moment: datetime | None, since: datetime, until: datetime) -> bool:
    """In the half-open period [since, until), for the times no index key holds."""
    return moment is not None and _utc(since) <= _utc(moment) < _utc(until)


def _seconds(start: datetime, end: datetime | None) -> float:
    assert end is not None, "only measured incidents are summed"
    return (_utc(end) - _utc(start)).total_seconds()


def _most(counts: Counter[str], top: int) -> list[tuple[str, int]]:
    """The `top` largest counts, ties by name, as SQLite orders them."""
    return sorted(counts.items(), key=lambda entry: (-entry[1], entry[0]))[: max(top, 0)]


def _key_schema(hash_key: str, range_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key is not None:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
    return schema


def _utc(moment: datetime) -> datetime:
    """Naive times are taken as UTC, the only zone the rest of the product writes."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _ts(moment: datetime) -> str:
    """Fixed-width UTC text, so that string order is time order in keys and conditions
    (`isoformat()` drops zero microseconds and keeps the offset, which breaks that)."""
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dump(values: dict[str, Any]) -> dict[str, Any]:
    """Plain values to DynamoDB's typed form; a None attribute is left out, which is what
    keeps the indexes sparse."""
    return {name: _SERIALIZER.serialize(v) for name, v in values.items() if v is not None}


def _load(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _DESERIALIZER.deserialize(v) for name, v in item.items()}
