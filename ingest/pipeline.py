"""One entry point for every receiver: bytes in, alerts recorded, anything unreadable kept.

The HTTP receiver, the one-shot `analyze` command and (later) the SQS consumer all call
`Ingestor.ingest`, so the promise "nothing is lost" is kept in one place: an alert is either
recorded in its incident or its payload is in the dead-letter table with the reason.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from incidents.lifecycle import IncidentService, RecordOutcome
from incidents.models import DeadLetter
from incidents.store import Store
from ingest.normalize import ParseResult, Rejection, parse_body
from ingest.parsers.base import ParseError


class UnreadablePayloadError(ParseError):
    """Nothing in the payload was an alert; it has been kept as `dead_letter_ids`."""

    def __init__(self, reason: str, dead_letter_ids: list[str], informational: bool) -> None:
        super().__init__(reason)
        self.dead_letter_ids = dead_letter_ids
        self.informational = informational


@dataclass(frozen=True)
class IngestReport:
    outcomes: list[RecordOutcome]
    rejections: list[Rejection]
    dead_letter_ids: list[str]

    @property
    def incident_ids(self) -> list[str]:
        """Each incident the payload touched, once, in the order first touched."""
        seen: dict[str, None] = {}
        for outcome in self.outcomes:
            if outcome.incident is not None:
                seen.setdefault(outcome.incident.id)
        return list(seen)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Ingestor:
    def __init__(
        self,
        service: IncidentService,
        store: Store,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.service = service
        self.store = store
        self._clock = clock

    def ingest(self, body: bytes, origin: str, message_id: str | None = None) -> IngestReport:
        """Parse and record. Raises UnreadablePayloadError when no alert came out of it, and
        lets StoreError through so that the caller can tell its sender to retry."""
        received_at = self._clock()
        try:
            result = parse_body(body, received_at, message_id)
        except ParseError as exc:
            letter_id = self._keep(body, origin, exc.reason, received_at)
            raise UnreadablePayloadError(exc.reason, [letter_id], informational=False) from exc
        with self.store.batch():
            letter_ids = self._keep_rejections(body, origin, result, received_at)
            outcomes = [self.service.record(alert) for alert in result.alerts]
        if not result.alerts:
            reasons = "; ".join(r.reason for r in result.rejections) or "no alert in payload"
            informational = all(r.informational for r in result.rejections)
            raise UnreadablePayloadError(reasons, letter_ids, informational)
        return IngestReport(outcomes, result.rejections, letter_ids)

    def _keep_rejections(
        self, body: bytes, origin: str, result: ParseResult, received_at: datetime
    ) -> list[str]:
        if not result.rejections:
            return []
        if not result.alerts and len(result.rejections) == 1:
            return [self._keep(body, origin, result.rejections[0].reason, received_at)]
        return [
            self._keep(_fragment_bytes(r.fragment), origin, r.reason, received_at)
            for r in result.rejections
        ]

    def _keep(self, payload: bytes, origin: str, reason: str, received_at: datetime) -> str:
        letter = DeadLetter(
            id=uuid.uuid4().hex,
            received_at=received_at,
            origin=origin,
            reason=reason,
            size=len(payload),
            payload=payload,
        )
        self.store.put_dead_letter(letter)
        return letter.id


def _fragment_bytes(fragment: object) -> bytes:
    if isinstance(fragment, str):
        return fragment.encode()
    return json.dumps(fragment, ensure_ascii=False, default=str).encode()
