"""IngestStore on DynamoDB: dead letters, kept whole in chunks; a batch groups nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from incidents.dynamodb.table import ITEM_BUDGET, DynamoTable, dump
from incidents.models import DeadLetter
from incidents.times import utc_text

DEAD_LETTER_CHUNKS = 10  # 3.5 MB per letter: under the 4 MB transaction limit


class DynamoIngest(DynamoTable):
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
        received = utc_text(letter.received_at)
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
                    ExpressionAttributeValues=dump({":pk": header["pk"], ":chunk": "CHUNK#"}),
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
