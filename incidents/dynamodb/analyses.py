"""AnalysisStore on DynamoDB: analyses under their incident, sorted by creation time, and
the cache of one analysis per problem and prompt version."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from incidents.dynamodb.table import DynamoTable, dump
from incidents.store import AnalysisRecord
from incidents.times import utc_text


class DynamoAnalyses(DynamoTable):
    def put_analysis(self, record: AnalysisRecord) -> None:
        """Sorted by creation time, then by the write's clock for equal times: the newest is
        the latest, as SQLite's insertion order gives when analyses arrive in time order."""
        created = utc_text(record.created_at)
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
            ExpressionAttributeValues=dump({":pk": f"INC#{incident_id}", ":analysis": "ANALYSIS#"}),
            ScanIndexForward=False,
            ConsistentRead=True,
        )
        return _analysis_record(items[0]) if items else None

    def cached_analysis(
        self, fingerprint: str, prompt_version: str, not_before: datetime
    ) -> AnalysisRecord | None:
        item = self._get(f"CACHE#{fingerprint}", f"PROMPT#{prompt_version}")
        if item is None or "forgotten" in item or str(item["created_at"]) < utc_text(not_before):
            return None
        return _analysis_record(item)

    def put_cached_analysis(self, record: AnalysisRecord, begun: datetime | None = None) -> None:
        """Conditional on the item there, checked by DynamoDB in the write: an analysis made
        at or before `begun`, or a tombstone from before it (a failed condition is the case
        the contract describes, not an error)."""
        item = {
            **self._analysis_attributes(record),
            "pk": f"CACHE#{record.fingerprint}",
            "sk": f"PROMPT#{record.prompt_version}",
        }
        self._put_if(
            item,
            "attribute_not_exists(pk) OR (attribute_not_exists(forgotten) AND created_at <= :begun)"
            " OR (attribute_exists(forgotten) AND created_at < :begun)",
            {":begun": utc_text(record.created_at if begun is None else begun)},
        )

    def forget_cached_analysis(self, fingerprint: str, prompt_version: str, at: datetime) -> None:
        """A tombstone replaces any analysis, and an earlier tombstone: the latest forgetting
        holds. It expires with the retention, as a cached analysis does."""
        self._put_if(
            {
                "pk": f"CACHE#{fingerprint}",
                "sk": f"PROMPT#{prompt_version}",
                "fingerprint": fingerprint,
                "prompt_version": prompt_version,
                "created_at": utc_text(at),
                "forgotten": True,
                "expires_at": self._expires_at(at),
            },
            "attribute_not_exists(forgotten) OR created_at < :at",
            {":at": utc_text(at)},
        )

    def _analysis_attributes(self, record: AnalysisRecord) -> dict[str, Any]:
        return {
            "incident_id": record.incident_id,
            "fingerprint": record.fingerprint,
            "source": record.source,
            "prompt_version": record.prompt_version,
            "created_at": utc_text(record.created_at),
            "analyzer": record.analyzer,
            "model": record.model,
            "cached": record.cached,
            "cost_usd": Decimal(str(record.cost_usd)),
            "body": record.body,
            "expires_at": self._expires_at(record.created_at),
        }


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
