"""IncidentStore on DynamoDB: incidents, fingerprint heads, occurrences, timeline events and
silences. One `IncidentWrite` is one TransactWriteItems whose items each carry their
condition, so a lost race fails the whole write, as in SQLite."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from incidents.dynamodb.table import (
    ITEM_BUDGET,
    UNSYNCED,
    Cancelled,
    DynamoTable,
    dump,
)
from incidents.models import (
    Alert,
    Incident,
    IncidentStatus,
    Occurrence,
    Severity,
    Silence,
    TimelineEvent,
)
from incidents.store import (
    ConflictError,
    DuplicateOccurrenceError,
    IncidentWrite,
    StoreError,
    WriteTooLargeError,
)
from incidents.times import utc_text

TRANSACTION_ITEMS = 100  # DynamoDB's TransactWriteItems limit
TRANSACTION_BYTES = 4_000_000  # its 4 MB limit, with room for keys and attribute names


class DynamoIncidents(DynamoTable):
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
        except Cancelled as exc:
            raise _write_error(exc.reasons, head_at, occurrences_at, change) from exc

    def _incident_item(self, incident: Incident) -> dict[str, Any]:
        """The incident, indexed by time, by status, and in the outbox until a message shows
        this version (every write bumps the version, so every write re-enters the outbox)."""
        opened = f"{utc_text(incident.opened_at)}#{incident.id}"
        return {
            "pk": f"INC#{incident.id}",
            "sk": "INCIDENT",
            "data": incident.model_dump_json(),
            "version": incident.version,
            "kind_pk": "INCIDENT",
            "kind_sk": opened,
            "group_pk": f"STATUS#{incident.status.value}",
            "group_sk": opened,
            "outbox_pk": UNSYNCED,
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
            item["group_sk"] = f"{utc_text(occurrence.alert.received_at)}#{occurrence.key}"
        item["kind_pk"] = f"ALERT#{occurrence.alert.severity.value}"
        item["kind_sk"] = f"{utc_text(occurrence.alert.received_at)}#{occurrence.key}"
        return item

    def put_occurrence(self, occurrence: Occurrence) -> bool:
        return self._put_if(self._occurrence_item(occurrence), "attribute_not_exists(pk)")

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
        start = utc_text(since) if since is not None else None
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
            Occurrence(key=str(item["key"]), incident_id=incident_id, alert=alert_of(item))
            for item in items
        ]

    def alerts_by_severity(
        self, severity: Severity, since: datetime, limit: int = 100
    ) -> list[Occurrence]:
        items = self._index(
            "kind", f"ALERT#{severity.value}", start=utc_text(since), newest_first=True, limit=limit
        )
        return [
            Occurrence(
                key=str(item["key"]),
                incident_id=str(item["incident_id"]) if item.get("incident_id") else None,
                alert=alert_of(item),
            )
            for item in items
        ]

    def timeline(self, incident_id: str) -> list[TimelineEvent]:
        items = self._items(
            None,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :event)",
            ExpressionAttributeValues=dump({":pk": f"INC#{incident_id}", ":event": "EVENT#"}),
            ConsistentRead=True,
        )
        return [TimelineEvent.model_validate_json(item["data"]) for item in items]

    def put_silence(self, silence: Silence) -> None:
        """Unconditional, like SQLite's replace: a person's latest silence is the one that
        holds, even a shorter one."""
        self._call(
            "put_item",
            TableName=self.table,
            Item=dump(
                {
                    "pk": f"FP#{silence.fingerprint}",
                    "sk": "SILENCE",
                    "until": utc_text(silence.until),
                    "data": silence.model_dump_json(),
                }
            ),
        )

    def silence(self, fingerprint: str) -> Silence | None:
        item = self._get(f"FP#{fingerprint}", "SILENCE")
        return Silence.model_validate_json(item["data"]) if item else None


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


def alert_of(item: dict[str, Any]) -> Alert:
    if "alert_z" in item:
        return Alert.model_validate_json(zlib.decompress(bytes(item["alert_z"].value)))
    return Alert.model_validate_json(item["alert"])
