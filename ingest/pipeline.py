"""One entry point for every receiver: bytes in, alerts recorded, anything unreadable kept.

Every receiver goes through `Ingestor.parse` then `Ingestor.commit` (the HTTP receiver and the
SQS consumer through a group commit that batches what arrives together, the one-shot commands
through `ingest`), so the promise "nothing is lost" is kept in one place: an alert is either
recorded in its incident or its payload is in the dead-letter table with the reason.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from incidents.lifecycle import IncidentService, PartialBatchError, RecordOutcome
from incidents.models import DeadLetter
from incidents.store import IngestStore, StoreError
from ingest.content_coding import decode_content
from ingest.normalize import MAX_PAYLOAD_BYTES, ParseResult, Rejection, parse_body
from ingest.parsers.base import ParseError

logger = logging.getLogger(__name__)


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
        store: IngestStore,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.service = service
        self.store = store
        self._clock = clock

    def ingest(self, body: bytes, origin: str, message_id: str | None = None) -> IngestReport:
        """Parse and record one payload. Raises UnreadablePayloadError when no alert came out
        of it, and lets StoreError through so that the caller can tell its sender to retry."""
        (outcome,) = self.commit_isolating([self.parse(body, origin, message_id)])
        if isinstance(outcome, UnreadablePayloadError | StoreError):
            raise outcome
        return outcome

    def parse(
        self,
        body: bytes,
        origin: str,
        message_id: str | None = None,
        content_encoding: str | None = None,
    ) -> Parsed:
        """CPU only, no store: a receiver parses while the previous batch is being written.

        `content_encoding` is the HTTP header: the body is inflated here, bounded, and kept as
        it came when it does not inflate. Raises InflatedTooLargeError past the payload limit."""
        received_at = self._clock()
        try:
            decoded = decode_content(body, content_encoding, MAX_PAYLOAD_BYTES)
            result = parse_body(decoded, received_at, message_id)
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

    def commit_isolating(self, payloads: Sequence[Parsed]) -> list[Answer]:
        """`commit`, but a payload the store cannot take (an alert it fails to serialise) does
        not fail the payloads beside it: then each is written alone, and one that still fails
        is kept whole as a dead letter with the reason. A StoreError of one payload written
        alone answers that payload alone: those written before it are durable."""
        try:
            return self.commit(payloads)
        except StoreError:
            raise
        except Exception as exc:  # the payload's fault, not the store's: isolate it
            if len(payloads) == 1:
                return [self._commit_alert_by_alert(payloads[0], exc)]
            logger.warning(
                "a batch of %d payloads failed (%s); writing each alone", len(payloads), exc
            )
        answers: list[Answer] = []
        for parsed in payloads:
            try:
                answers.extend(self.commit([parsed]))
            except StoreError as exc:  # this one retries; those written before it are done
                answers.append(exc)
            except Exception as exc:  # kept and answered; the others are written
                answers.append(self._commit_alert_by_alert(parsed, exc))
        return answers

    def _commit_alert_by_alert(self, parsed: Parsed, exc: Exception) -> Answer:
        """A payload the store refused whole: each of its alerts written alone, so that one
        alert the store cannot take (an Alertmanager group's one bad entry) is kept as its own
        dead letter and the others are recorded. A payload of one alert, or with none read,
        is kept whole."""
        if parsed.result is None or len(parsed.result.alerts) < 2:
            return self._keep_unrecordable(parsed, exc)
        logger.warning(
            "a payload of %d alerts from %s failed (%s); writing each alert alone",
            len(parsed.result.alerts),
            parsed.origin,
            exc,
        )
        outcomes: list[RecordOutcome] = []
        rejections = list(parsed.result.rejections)
        try:
            with self.store.batch():
                letter_ids = self._keep_rejections(parsed)
            for alert in parsed.result.alerts:
                try:
                    with self.store.batch():
                        outcomes.extend(self.service.record_batch([alert]))
                except StoreError:
                    raise
                except Exception as refused:  # this alert alone: kept, the others go on
                    reason = f"could not be recorded: {' '.join(str(refused).split())[:500]}"
                    logger.error(
                        "alert %r from %s could not be recorded; kept as a dead letter",
                        alert.title[:200],
                        parsed.origin,
                        exc_info=refused,
                    )
                    rejection = Rejection(
                        reason, alert.raw if alert.raw is not None else alert.title
                    )
                    with self.store.batch():
                        letter_ids.append(
                            self._keep(
                                _fragment_bytes(rejection.fragment), parsed.origin, reason, parsed
                            )
                        )
                    rejections.append(rejection)
        except StoreError as unreachable:  # those written are durable; the sender retries
            return unreachable
        if not outcomes:
            return UnreadablePayloadError(
                "; ".join(r.reason for r in rejections), letter_ids, informational=False
            )
        return IngestReport(outcomes, rejections, letter_ids)

    def _keep_unrecordable(self, parsed: Parsed, exc: Exception) -> Answer:
        """Keep a payload whose alerts the store refused (not for being unreachable) whole as a
        dead letter, so that what could not be recorded is still never lost; a store that
        cannot keep it either answers its sender to retry."""
        logger.error(
            "payload from %s could not be recorded; kept as a dead letter",
            parsed.origin,
            exc_info=exc,
        )
        reason = f"could not be recorded: {' '.join(str(exc).split())[:500]}"
        try:
            with self.store.batch():
                letter_id = self._keep(parsed.body, parsed.origin, reason, parsed)
        except StoreError as unkept:
            return unkept
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
    """A rejected part as bytes; a lone surrogate (which UTF-8 cannot hold) as its `\\uXXXX`
    escape, so that keeping the part never fails on what made it unreadable."""
    if isinstance(fragment, str):
        return fragment.encode("utf-8", "backslashreplace")
    return json.dumps(fragment, ensure_ascii=False, default=str).encode("utf-8", "backslashreplace")
