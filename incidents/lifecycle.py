"""The incident lifecycle: open -> acknowledged -> resolved, reopened on recurrence, flapping.

Every decision is taken on a fresh read and written with a condition on what was read; a lost
race re-reads and decides again. That keeps the rules here free of locks and makes them hold
unchanged when several replicas share one DynamoDB table.
"""

from __future__ import annotations

import random
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from incidents.models import (
    Alert,
    AlertStatus,
    Incident,
    IncidentStatus,
    Occurrence,
    Silence,
    TimelineEvent,
    TimelineKind,
)
from incidents.store import (
    ConflictError,
    DuplicateOccurrenceError,
    IncidentStore,
    IncidentWrite,
    StoreError,
    WriteTooLargeError,
)
from incidents.transitions import (
    confirmation,
    member_resolution,
    opening,
    reopening,
    repeat,
    resolution,
    with_event,
)

# Re-exported: blocks, notify, analysis and bot import `short_duration` from here.
from incidents.transitions import short_duration as short_duration

MAX_WRITE_ATTEMPTS = 10
BACKOFF_BASE_SECONDS = 0.005
BACKOFF_CAP_SECONDS = 0.5
SILENCE_CACHE_SECONDS = 1.0
"""How long a fingerprint's silence, as read, answers again: a storm's repeats then cost one
read of it a second rather than one each; a silence another replica sets takes effect here
within that second, and one set through this service at once."""
OCCURRENCES_PER_WRITE = 25
"""Alerts one incident write counts at most: with their timeline events, the incident and its
head, well inside DynamoDB's 100 items per transaction."""
_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class OutcomeKind(StrEnum):
    OPENED = "opened"
    REPEATED = "repeated"
    RESOLVED = "resolved"
    MEMBER_RESOLVED = "member_resolved"
    REOPENED = "reopened"
    DUPLICATE = "duplicate"
    UNMATCHED_RESOLVE = "unmatched_resolve"


@dataclass(frozen=True)
class RecordOutcome:
    """What recording one alert did; `incident` is its state after the write."""

    kind: OutcomeKind
    alert: Alert
    incident: Incident | None
    events: tuple[TimelineEvent, ...] = ()


@dataclass(frozen=True)
class LifecyclePolicy:
    """A recurrence within `reopen_window` of the resolution reopens the incident; after it,
    a new incident opens. `flap_threshold` reopens within `flap_window` mark it flapping."""

    reopen_window: timedelta = timedelta(hours=1)
    flap_threshold: int = 3
    flap_window: timedelta = timedelta(hours=1)


@dataclass
class _Segment:
    """One planned write of a batch and the alerts it counts, with what each did."""

    write: IncidentWrite
    indices: list[int] = field(default_factory=list)
    outcomes: list[RecordOutcome] = field(default_factory=list)


@dataclass(frozen=True)
class _Loose:
    """A resolution of nothing open: an occurrence that belongs to no write."""

    occurrence: Occurrence
    index: int
    outcome: RecordOutcome


_Step = _Segment | _Loose


class PartialBatchError(StoreError):
    """A batch could not be recorded whole; `recorded` holds what was, by the alert's place in
    the batch. Where the store has no transaction across writes (DynamoDB) that part is
    durable, and its senders can be answered while the rest retry."""

    def __init__(self, reason: str, recorded: dict[int, RecordOutcome]) -> None:
        super().__init__(reason)
        self.recorded = recorded


class IncidentNotFoundError(StoreError):
    """No incident has that id."""


class InvalidTransitionError(StoreError):
    """The incident's status does not allow the requested change."""


def new_incident_id() -> str:
    """Short enough to type in `/incident show`, random enough that collisions stay theoretical
    (40 bits); a collision would still be refused by the conditional write."""
    return "INC-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


def _utcnow() -> datetime:
    return datetime.now(UTC)


class IncidentService:
    def __init__(
        self,
        store: IncidentStore,
        policy: LifecyclePolicy | None = None,
        clock: Callable[[], datetime] = _utcnow,
        new_id: Callable[[], str] = new_incident_id,
    ) -> None:
        self.store = store
        self.policy = policy or LifecyclePolicy()
        self._clock = clock
        self._new_id = new_id
        self._silences: dict[str, tuple[float, Silence | None]] = {}

    def record(self, alert: Alert) -> RecordOutcome:
        """Fold one alert into its incident. Idempotent for alerts that carry a dedup key."""
        return self.record_batch([alert])[0]

    def record_batch(self, alerts: Sequence[Alert]) -> list[RecordOutcome]:
        """Fold alerts that arrived together into their incidents, in order: what each did.

        A storm costs what its distinct problems cost: the heads are read once for the batch,
        and the alerts of one incident become one write of it (count +n, last seen, members,
        their events) instead of one write each. Each write keeps its own conditions, so a lost
        race re-reads that fingerprint alone and plans its alerts again. Idempotent per alert:
        a key recorded before (found by its write's condition, then read) or twice in the
        batch counts once. PartialBatchError says what was recorded when not all could be."""
        keys = [alert.dedup_key or uuid.uuid4().hex for alert in alerts]
        outcomes: dict[int, RecordOutcome] = {}
        todo: dict[str, list[int]] = defaultdict(list)
        first_of: dict[str, int] = {}
        for index, key in enumerate(keys):
            if key in first_of:
                outcomes[index] = RecordOutcome(OutcomeKind.DUPLICATE, alerts[index], None)
            else:
                first_of[key] = index
                todo[alerts[index].fingerprint].append(index)
        try:
            self._record_all(alerts, keys, outcomes, todo)
        except StoreError as exc:
            settled = self._settled(alerts, keys, first_of, outcomes)
            raise PartialBatchError(str(exc), settled) from exc
        if todo:
            raise PartialBatchError(
                f"gave up recording alerts of {', '.join(sorted(todo))}: too much contention",
                self._settled(alerts, keys, first_of, outcomes),
            )
        return [
            outcome
            for _, outcome in sorted(self._settled(alerts, keys, first_of, outcomes).items())
        ]

    @staticmethod
    def _settled(
        alerts: Sequence[Alert],
        keys: list[str],
        first_of: dict[str, int],
        outcomes: dict[int, RecordOutcome],
    ) -> dict[int, RecordOutcome]:
        """What is settled so far; a repeat within the batch belongs where its first copy
        went, and is settled once that one is."""
        settled: dict[int, RecordOutcome] = {}
        for index, outcome in outcomes.items():
            first = first_of[keys[index]]
            if first == index:
                settled[index] = outcome
            elif first in outcomes:
                settled[index] = replace(outcome, incident=outcomes[first].incident)
        return settled

    def _record_all(
        self,
        alerts: Sequence[Alert],
        keys: list[str],
        outcomes: dict[int, RecordOutcome],
        todo: dict[str, list[int]],
    ) -> None:
        """Plan and write until nothing is left to do or the attempts run out. Keys recorded
        before are found by the writes' own conditions (a duplicate fails its write, and its
        keys are read then), so a storm of new alerts pays no read for them."""
        known: set[str] = set()
        capped: set[str] = set()
        for attempt in range(MAX_WRITE_ATTEMPTS):
            heads = self.store.heads(todo)
            for fingerprint, indices in list(todo.items()):
                fresh = [i for i in indices if keys[i] not in known]
                for index in indices:
                    if keys[index] in known:
                        outcomes[index] = RecordOutcome(
                            OutcomeKind.DUPLICATE, alerts[index], heads.get(fingerprint)
                        )
                if fresh:
                    todo[fingerprint] = fresh
                else:
                    del todo[fingerprint]
            now = self._clock()
            plans = {
                fingerprint: self._fold(
                    [(alerts[i], keys[i], i) for i in indices],
                    heads.get(fingerprint),
                    now,
                    1 if fingerprint in capped else OCCURRENCES_PER_WRITE,
                )
                for fingerprint, indices in todo.items()
            }
            lost = self._apply(plans, outcomes, todo, capped)
            if not todo:
                return
            if lost:
                known |= self.store.recorded_keys([keys[i] for i in lost])
            _back_off(attempt)

    def _apply(
        self,
        plans: dict[str, list[_Step]],
        outcomes: dict[int, RecordOutcome],
        todo: dict[str, list[int]],
        capped: set[str],
    ) -> list[int]:
        """Write each fingerprint's steps in order, the first pending write of every
        fingerprint together (`Store.write_all`); a fingerprint whose write lost stays in
        `todo` with its unwritten alerts. Returns the alerts of writes refused as duplicates,
        whose keys the caller reads again."""
        cursors = dict.fromkeys(plans, 0)
        duplicates: list[int] = []
        while cursors:
            wave: list[tuple[str, _Segment]] = []
            for fingerprint in list(cursors):
                steps = plans[fingerprint]
                at = cursors[fingerprint]
                while at < len(steps) and isinstance(steps[at], _Loose):
                    loose = steps[at]
                    assert isinstance(loose, _Loose)
                    stored = self.store.put_occurrence(loose.occurrence)
                    outcomes[loose.index] = (
                        loose.outcome
                        if stored
                        else replace(loose.outcome, kind=OutcomeKind.DUPLICATE)
                    )
                    at += 1
                cursors[fingerprint] = at
                if at == len(steps):
                    del cursors[fingerprint]
                    del todo[fingerprint]
                    continue
                segment = steps[at]
                assert isinstance(segment, _Segment)
                wave.append((fingerprint, segment))
            if not wave:
                break
            failures = self.store.write_all([segment.write for _, segment in wave])
            fatal: StoreError | None = None
            for (fingerprint, segment), failure in zip(wave, failures, strict=True):
                if failure is None:
                    outcomes.update(zip(segment.indices, segment.outcomes, strict=True))
                    cursors[fingerprint] += 1
                    continue
                del cursors[fingerprint]
                written = {i for i in todo[fingerprint] if i in outcomes}
                todo[fingerprint] = [i for i in todo[fingerprint] if i not in written]
                if isinstance(failure, DuplicateOccurrenceError):
                    duplicates.extend(segment.indices)
                elif isinstance(failure, WriteTooLargeError):
                    capped.add(fingerprint)
                elif not isinstance(failure, ConflictError):
                    fatal = failure  # raised once the wave's other writes are accounted for
            if fatal is not None:
                raise fatal
        return duplicates

    def _fold(
        self,
        alerts: list[tuple[Alert, str, int]],
        head: Incident | None,
        now: datetime,
        per_write: int,
    ) -> list[_Step]:
        """Plan one fingerprint's alerts in order, each on the state the ones before it left,
        merging the changes to one incident into one write of at most `per_write` alerts."""
        steps: list[_Step] = []
        current = head
        pending: _Segment | None = None
        for alert, key, index in alerts:
            if alert.status is AlertStatus.RESOLVED and (current is None or not current.is_active):
                occurrence = Occurrence(
                    key=key, incident_id=current.id if current else None, alert=alert
                )
                outcome = RecordOutcome(OutcomeKind.UNMATCHED_RESOLVE, alert, current)
                steps.append(_Loose(occurrence, index, outcome))
                pending = None  # what follows is written after it, in arrival order
                continue
            kind, change = self._plan(alert, current, now)
            occurrence = Occurrence(key=key, incident_id=change.incident.id, alert=alert)
            outcome = RecordOutcome(kind, alert, change.incident, tuple(change.events))
            if (
                pending is not None
                and pending.write.incident.id == change.incident.id
                and len(pending.indices) < per_write
            ):
                # One write, one version: the merged change keeps the version it writes.
                change.incident.version = pending.write.incident.version
                pending.write = replace(
                    pending.write,
                    incident=change.incident,
                    occurrences=(*pending.write.occurrences, occurrence),
                    events=(*pending.write.events, *change.events),
                )
            else:
                pending = _Segment(replace(change, occurrences=(occurrence,)))
                steps.append(pending)
            pending.indices.append(index)
            pending.outcomes.append(outcome)
            current = change.incident
        return steps

    def _plan(
        self, alert: Alert, head: Incident | None, now: datetime
    ) -> tuple[OutcomeKind, IncidentWrite]:
        if alert.status is AlertStatus.RESOLVED:
            assert head is not None
            still_firing = [m for m in head.firing_members if m != alert.member]
            if alert.member is not None and still_firing:
                return OutcomeKind.MEMBER_RESOLVED, member_resolution(head, still_firing)
            return OutcomeKind.RESOLVED, resolution(head, f"alert:{alert.source}", now)
        if head is None or (
            not head.is_active
            and head.resolved_at is not None
            and now - head.resolved_at > self.policy.reopen_window
        ):
            return OutcomeKind.OPENED, opening(alert, head, now, self._new_id())
        if head.is_active:
            return OutcomeKind.REPEATED, repeat(alert, head, now)
        return OutcomeKind.REOPENED, reopening(
            alert,
            head,
            now,
            flap_threshold=self.policy.flap_threshold,
            flap_window=self.policy.flap_window,
        )

    def acknowledge(self, incident_id: str, actor: str) -> Incident:
        """Idempotent: acknowledging an acknowledged incident changes nothing."""

        def plan(incident: Incident, now: datetime) -> IncidentWrite | None:
            if incident.status is IncidentStatus.RESOLVED:
                raise InvalidTransitionError(f"{incident_id} is already resolved")
            if incident.status is IncidentStatus.ACKNOWLEDGED:
                return None
            updated = incident.model_copy(
                update={
                    "status": IncidentStatus.ACKNOWLEDGED,
                    "acknowledged_at": now,
                    "acknowledged_by": actor,
                    "version": incident.version + 1,
                }
            )
            event = TimelineEvent(
                incident_id=incident_id,
                at=now,
                actor=actor,
                kind=TimelineKind.ACKNOWLEDGED,
                detail=f"acknowledged after {short_duration(now - incident.opened_at)}",
            )
            return IncidentWrite(
                incident=updated, expected_version=incident.version, events=(event,)
            )

        return self._change(incident_id, plan)

    def resolve(self, incident_id: str, actor: str, note: str | None = None) -> Incident:
        """Idempotent: resolving a resolved incident changes nothing. `note` goes in the
        timeline with the resolution."""

        def plan(incident: Incident, now: datetime) -> IncidentWrite | None:
            if incident.status is IncidentStatus.RESOLVED:
                return None
            return resolution(incident, actor, now, note)

        return self._change(incident_id, plan)

    def confirm(
        self,
        incident_id: str,
        actor: str,
        *,
        cause: str | None = None,
        fix: str | None = None,
        replace: bool = False,
    ) -> Incident:
        """Record the cause and the fix the team confirmed, in any state (often after the
        resolution, sometimes while it is being fixed); a blank one keeps the earlier one
        unless `replace`. ValueError when both are blank."""
        return self._change(
            incident_id,
            lambda incident, now: confirmation(incident, actor, now, cause, fix, replace=replace),
        )

    def silence(self, incident_id: str, duration: timedelta, actor: str) -> Silence:
        """Mute the incident's fingerprint: later alerts still count, but are not posted.

        The silence is on the problem, not the incident, so a recurrence that opens a new
        incident within the duration stays quiet too."""
        incident = self.store.get_incident(incident_id)
        if incident is None:
            raise IncidentNotFoundError(f"no incident {incident_id}")
        now = self._clock()
        silence = Silence(fingerprint=incident.fingerprint, until=now + duration, by=actor, at=now)
        self.store.put_silence(silence)
        self._silences[silence.fingerprint] = (time.monotonic(), silence)
        event = TimelineEvent(
            incident_id=incident_id,
            at=now,
            actor=actor,
            kind=TimelineKind.SILENCED,
            detail=f"silenced for {short_duration(duration)}",
        )
        self._change(incident_id, lambda current, _: with_event(current, event))
        return silence

    def silenced_until(self, fingerprint: str) -> datetime | None:
        read_at, silence = self._silences.get(fingerprint, (0.0, None))
        if time.monotonic() - read_at > SILENCE_CACHE_SECONDS:
            silence = self.store.silence(fingerprint)
            if len(self._silences) > 10_000:
                self._silences.clear()
            self._silences[fingerprint] = (time.monotonic(), silence)
        if silence is None or silence.until <= self._clock():
            return None
        return silence.until

    def _change(
        self,
        incident_id: str,
        plan: Callable[[Incident, datetime], IncidentWrite | None],
    ) -> Incident:
        for attempt in range(MAX_WRITE_ATTEMPTS):
            incident = self.store.get_incident(incident_id)
            if incident is None:
                raise IncidentNotFoundError(f"no incident {incident_id}")
            change = plan(incident, self._clock())
            if change is None:
                return incident
            try:
                self.store.write(change)
            except ConflictError:
                _back_off(attempt)
                continue
            return change.incident
        raise StoreError(f"gave up changing {incident_id}: too much contention")


def _back_off(attempt: int) -> None:
    """Full jitter after a lost race: writers that collided retry at different moments
    instead of colliding again. Store calls run in worker threads, so sleeping here blocks
    no event loop."""
    time.sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)))
