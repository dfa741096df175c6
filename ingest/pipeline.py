"""One entry point for every receiver: bytes in, alerts recorded, anything unreadable kept.

Every receiver goes through `Ingestor.parse` then `Ingestor.commit` (the HTTP receiver and the
SQS consumer through a group commit that batches what arrives together, the one-shot commands
through `ingest`), so the promise "nothing is lost" is kept in one place: an alert is either
recorded in its incident or its payload is in the dead-letter table with the reason.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from incidents.lifecycle import IncidentService, PartialBatchError, RecordOutcome
from incidents.models import DeadLetter
from incidents.store import Store, StoreError
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


@dataclass(frozen=True)
class Parsed:
    """One payload after parsing, before anything is stored: what a group commit gathers.

    `error` is set when nothing in the body could be read (the body is then kept whole)."""

    body: bytes
    origin: str
    received_at: datetime
    result: ParseResult | None
    error: ParseError | None = None

    @property
    def alert_count(self) -> int:
        return len(self.result.alerts) if self.result is not None else 0


Answer = IngestReport | UnreadablePayloadError | StoreError
"""What one payload of a batch came to: recorded, kept as a dead letter, or to be retried."""


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
        """Parse and record one payload. Raises UnreadablePayloadError when no alert came out
        of it, and lets StoreError through so that the caller can tell its sender to retry."""
        (outcome,) = self.commit([self.parse(body, origin, message_id)])
        if isinstance(outcome, UnreadablePayloadError | StoreError):
            raise outcome
        return outcome

    def parse(self, body: bytes, origin: str, message_id: str | None = None) -> Parsed:
        """CPU only, no store: a receiver parses while the previous batch is being written."""
        received_at = self._clock()
        try:
            result = parse_body(body, received_at, message_id)
        except ParseError as exc:
            return Parsed(body, origin, received_at, None, exc)
        return Parsed(body, origin, received_at, result)

    def commit(self, payloads: Sequence[Parsed]) -> list[Answer]:
        """Record payloads that arrived together as one batch: their dead letters and their
        alerts in one store transaction where the backend has one (one fsync in SQLite), the
        alerts folded into their incidents together (`IncidentService.record_batch`). What
        each payload did, in order. A payload whose alerts were not all recorded is answered
        with the StoreError, to be retried; one recorded whole is answered with its report
        even when others failed (on DynamoDB its writes are durable already, and a sender
        told to retry them would count them twice, or get back duplicates that set nothing
        off). A failure of the batch's own transaction raises, and nothing is acknowledged."""
        failure: StoreError | None = None
        with self.store.batch():
            letters = [self._keep_rejections(parsed) for parsed in payloads]
            alerts = [
                alert
                for parsed in payloads
                if parsed.result is not None
                for alert in parsed.result.alerts
            ]
            try:
                recorded = dict(enumerate(self.service.record_batch(alerts)))
            except PartialBatchError as exc:
                failure, recorded = exc, exc.recorded
        answers: list[Answer] = []
        first = 0
        for parsed, letter_ids in zip(payloads, letters, strict=True):
            count = parsed.alert_count
            mine = [recorded.get(index) for index in range(first, first + count)]
            first += count
            if failure is not None and None in mine:
                answers.append(failure)
                continue
            answers.append(self._answer(parsed, letter_ids, [o for o in mine if o is not None]))
        return answers

    def keep_unrecordable(self, parsed: Parsed, reason: str) -> UnreadablePayloadError:
        """Keep a payload whose alerts the store refused (not for being unreachable) whole as a
        dead letter, so that what could not be recorded is still never lost."""
        with self.store.batch():
            letter_id = self._keep(parsed.body, parsed.origin, reason, parsed)
        return UnreadablePayloadError(reason, [letter_id], informational=False)

    @staticmethod
    def _answer(
        parsed: Parsed, letter_ids: list[str], outcomes: list[RecordOutcome]
    ) -> IngestReport | UnreadablePayloadError:
        if parsed.result is None:
            assert parsed.error is not None
            return UnreadablePayloadError(parsed.error.reason, letter_ids, informational=False)
        result = parsed.result
        if not result.alerts:
            reasons = "; ".join(r.reason for r in result.rejections) or "no alert in payload"
            informational = all(r.informational for r in result.rejections)
            return UnreadablePayloadError(reasons, letter_ids, informational)
        return IngestReport(outcomes, result.rejections, letter_ids)

    def _keep_rejections(self, parsed: Parsed) -> list[str]:
        """Dead letters: the whole body when nothing in it was read, else each bad item."""
        if parsed.result is None:
            assert parsed.error is not None
            return [self._keep(parsed.body, parsed.origin, parsed.error.reason, parsed)]
        rejections = parsed.result.rejections
        if not rejections:
            return []
        if not parsed.result.alerts and len(rejections) == 1:
            return [self._keep(parsed.body, parsed.origin, rejections[0].reason, parsed)]
        return [
            self._keep(_fragment_bytes(r.fragment), parsed.origin, r.reason, parsed)
            for r in rejections
        ]

    def _keep(self, payload: bytes, origin: str, reason: str, parsed: Parsed) -> str:
        letter = DeadLetter(
            id=uuid.uuid4().hex,
            received_at=parsed.received_at,
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
