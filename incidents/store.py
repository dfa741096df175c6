"""The storage contract, shaped after what DynamoDB can promise.

Every write is one conditional write of a small set of items that DynamoDB can apply in one
`TransactWriteItems` call: the incident (conditioned on the version it was read at), the
fingerprint's head pointer (conditioned on the incident it pointed to), the occurrence
(conditioned on its idempotency key being new) and the timeline events. There are no joins and
no reads inside a write, so the SQLite backend and the DynamoDB backend that follows can give
exactly the same guarantees: a lost race is an error the caller retries, never a lost update.

The contract is split by role (IncidentStore, AnalysisStore, OutboxStore, ...), and each
consumer asks for the roles it uses, so that what a component can touch is read from its
signature. Each backend (`incidents/sqlite/`, `incidents/dynamodb/`) implements every role,
one module per role, and `Store` is that whole backend, for the code that opens and closes it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from incidents.models import (
    DeadLetter,
    Delivery,
    Incident,
    IncidentStatus,
    MessageRef,
    Occurrence,
    Severity,
    Silence,
    TicketRef,
    TimelineEvent,
)


class StoreError(Exception):
    """The store could not do what was asked; the caller decides whether to retry."""


class ConflictError(StoreError):
    """A conditional write lost a race: re-read and try again."""


class DuplicateOccurrenceError(StoreError):
    """An occurrence's idempotency key is already recorded: the alert was counted before."""


class WriteTooLargeError(StoreError):
    """The change does not fit one atomic write of the backend (DynamoDB's 100 items or 4 MB
    per transaction): write its occurrences in smaller changes."""


@dataclass(frozen=True)
class IncidentWrite:
    """One atomic change to one incident.

    `expected_version` is None when the incident must not exist yet. When `claims_head` is set,
    the fingerprint's head pointer moves to this incident, provided it still points at
    `previous_head` (None: no incident ever had this fingerprint). `occurrences` are the
    alerts the change counts, each conditioned on its key being new: a storm's repeats of one
    incident become one write of the incident with all of them.
    """

    incident: Incident
    expected_version: int | None
    occurrences: Sequence[Occurrence] = field(default_factory=tuple)
    events: Sequence[TimelineEvent] = field(default_factory=tuple)
    claims_head: bool = False
    previous_head: str | None = None


class LeaseGrant(StrEnum):
    """What `acquire_lease` found. TAKEN_OVER is a grant too, with a warning: the previous
    holder's lease ran out unreleased, so it died (or stalled) in the middle of its work, and
    whatever that work sends outside the store (a Slack post) may already have been sent."""

    BUSY = "busy"
    ACQUIRED = "acquired"
    TAKEN_OVER = "taken_over"

    @property
    def granted(self) -> bool:
        return self is not LeaseGrant.BUSY


@dataclass(frozen=True)
class AnalysisRecord:
    """An analysis as the store keeps it: indexed bookkeeping plus the analysis as JSON.

    The store does not know the analysis model (that lives above, in `analysis/`); it keeps
    the body verbatim and the few fields that costs and the cache are queried by.
    """

    incident_id: str
    fingerprint: str
    source: str
    prompt_version: str
    created_at: datetime
    analyzer: str
    model: str | None
    cached: bool
    cost_usd: float
    body: str


@dataclass(frozen=True)
class CostTotal:
    day: str
    source: str
    analyses: int
    model_calls: int
    cached: int
    cost_usd: float


@dataclass(frozen=True)
class AlertCount:
    """How many of a period's alerts came from one fingerprint or one source. For a
    fingerprint, `title` is the title of the incident its newest alert in the period belongs
    to (what people call the problem); for a source it is empty."""

    key: str
    alerts: int
    title: str = ""


@dataclass(frozen=True, kw_only=True)
class PeriodFigures:
    """What happened in the half-open period [since, until), as the store counts it.

    - `opened`: incidents whose `opened_at` is in the period, per (current) severity.
    - `resolved`: incidents whose `resolved_at` is in the period, per severity. A reopened
      incident has no `resolved_at` until it resolves again, so it counts then, once.
    - MTTA and MTTR are kept as sums and counts, so that they add up across periods and
      backends give identical figures: `ack_seconds` sums the time from the incident's last
      opening (its reopening, if it reopened) to `acknowledged_at` over the `acknowledged`
      incidents whose `acknowledged_at` is in the period; `resolve_seconds` sums the same to
      `resolved_at` over those counted in `resolved`. An incident the alert
      resolved before anyone acknowledged it counts towards MTTR only.
    - `alerts`: alerts received in the period that belong to an incident (a resolution of
      nothing open is not noise the bot grouped), and `alerted_incidents`: how many distinct
      incidents they belong to. Their ratio is the noise reduction: alerts per incident.
    - `top_fingerprints`, `top_sources`: the most alerts among those, most first, ties by
      name.
    - `active`, `active_shown`: incidents not resolved *now* (the store's current state, not
      as of `until`), and the first few of them, most severe first, then oldest.
    """

    opened: Mapping[Severity, int]
    resolved: Mapping[Severity, int]
    acknowledged: int
    ack_seconds: float
    resolve_seconds: float
    alerts: int
    alerted_incidents: int
    top_fingerprints: Sequence[AlertCount]
    top_sources: Sequence[AlertCount]
    active: int
    active_shown: Sequence[Incident]

    @property
    def mtta(self) -> timedelta | None:
        """Mean time to acknowledge, to the millisecond; None when nothing was acknowledged."""
        return _mean(self.ack_seconds, self.acknowledged)

    @property
    def mttr(self) -> timedelta | None:
        """Mean time to resolve, to the millisecond; None when nothing was resolved."""
        return _mean(self.resolve_seconds, sum(self.resolved.values()))


def _mean(seconds: float, count: int) -> timedelta | None:
    """Rounded to the millisecond: the backends add the same float seconds in different
    orders, and must report the same figure."""
    return timedelta(milliseconds=round(seconds * 1000 / count)) if count else None


class IncidentStore(Protocol):
    """Incidents, the alerts they count, their timelines and their fingerprints' silences:
    what the lifecycle reads and writes, and what every view of an incident reads."""

    def head_incident(self, fingerprint: str) -> Incident | None:
        """The newest incident of a fingerprint, whatever its status."""

    def heads(self, fingerprints: Collection[str]) -> dict[str, Incident]:
        """The head incident of each fingerprint that has one: one read for a whole batch."""

    def get_incident(self, incident_id: str) -> Incident | None: ...

    def write(self, change: IncidentWrite) -> None:
        """Apply the change atomically or raise ConflictError / DuplicateOccurrenceError /
        WriteTooLargeError."""

    def write_all(self, changes: Sequence[IncidentWrite]) -> list[StoreError | None]:
        """Apply changes to distinct incidents, each atomically on its own conditions, several
        at once where the backend can: what each failed with (None: applied), in order, so
        that the caller knows which are durable even when others failed."""

    def recorded_keys(self, keys: Collection[str]) -> set[str]:
        """Which of these occurrence keys are recorded already: one read for a whole batch."""

    def put_occurrence(self, occurrence: Occurrence) -> bool:
        """Record an alert that belongs to no incident; False when its key was seen before."""

    def has_occurrence(self, key: str) -> bool: ...

    def list_incidents(
        self,
        *,
        statuses: Sequence[IncidentStatus] | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[Incident]:
        """Newest first, optionally only those opened at or after `since`."""

    def occurrences(self, incident_id: str, limit: int = 50) -> list[Occurrence]:
        """Newest first."""

    def alerts_by_severity(
        self, severity: Severity, since: datetime, limit: int = 100
    ) -> list[Occurrence]:
        """Every alert of a severity received since `since`, newest first: the product
        brief's "all CRITICAL alerts of the last 24 hours"."""

    def timeline(self, incident_id: str) -> list[TimelineEvent]:
        """Oldest first."""

    def put_silence(self, silence: Silence) -> None: ...

    def silence(self, fingerprint: str) -> Silence | None: ...


class IngestStore(Protocol):
    """What the ingest path needs beside the lifecycle: one commit for a payload's writes,
    the dead letters that keep what could not be read, and whether it can take alerts now.
    Not a part of IncidentStore because only the receivers use it: a dead letter belongs to
    no incident, and a batch is the receiver's unit of durability, not the lifecycle's."""

    def put_dead_letter(self, letter: DeadLetter) -> None: ...

    def batch(self) -> AbstractContextManager[None]:
        """Make the writes inside durable together, at the end, where the backend can: one
        fsync for a whole payload instead of one per alert. Each write keeps its own
        condition; a failed one is undone alone. A backend without such grouping applies
        every write as it comes, which is equally correct."""

    def dead_letters(self, limit: int = 50) -> list[DeadLetter]:
        """Newest first."""

    def ping(self) -> None:
        """Raise StoreError when the store cannot serve requests."""


class AnalysisStore(Protocol):
    """Each incident's analyses, and the cache of analyses per problem and prompt version."""

    def put_analysis(self, record: AnalysisRecord) -> None:
        """Append an analysis to its incident; the newest is the one shown."""

    def latest_analysis(self, incident_id: str) -> AnalysisRecord | None: ...

    def cached_analysis(
        self, fingerprint: str, prompt_version: str, not_before: datetime
    ) -> AnalysisRecord | None:
        """The cached analysis of a problem, if it was made at or after `not_before`."""

    def put_cached_analysis(self, record: AnalysisRecord, begun: datetime | None = None) -> None:
        """Cache by fingerprint and prompt version, if the analysis was begun (`begun`, by
        default its `created_at`) at or after the cached one was made and after the problem's
        cache was last forgotten; otherwise nothing is written. One atomic check and write, so
        that an analysis begun before a confirmation never refills the cache the confirmation
        forgot, whichever of the problem's incidents either was about; and a newer analysis
        replaces an older one."""

    def forget_cached_analysis(self, fingerprint: str, prompt_version: str, at: datetime) -> None:
        """Forget a problem's cached analysis (idempotent): the team confirmed a cause at `at`
        that the cached one could not know, so the next incident of the problem gets a fresh
        one. What is left is a tombstone holding `at` (a later one is kept), which reads as a
        miss and refuses an analysis begun at or before it."""


class ReportStore(Protocol):
    """The aggregates `/incident stats`, the daily digest and `incident-bot costs` report."""

    def cost_totals(self, since: datetime) -> list[CostTotal]:
        """Analyses, model calls and cost per UTC day and source, oldest day first."""

    def period_figures(
        self, since: datetime, until: datetime, *, top: int = 5, active_shown: int = 10
    ) -> PeriodFigures:
        """The counts of `/incident stats` and the daily digest for [since, until), from
        indexed ranges only, so that they stay fast at 100,000 incidents (PeriodFigures says
        what each figure counts); `top` fingerprints and sources, `active_shown` incidents."""


class ChatRefStore(Protocol):
    """Where each incident's chat message is and which version it shows: how a thread reply
    finds its incident and a resync finds what is stale."""

    def put_message_ref(self, ref: MessageRef) -> None:
        """Record (or move forward) where an incident's message is and what it shows."""

    def message_ref(self, incident_id: str) -> MessageRef | None: ...

    def incident_for_message(self, channel: str, ts: str) -> str | None:
        """The incident whose message is `ts` in `channel`: how a thread reply finds it."""

    def unsynced_incidents(self, now: datetime, limit: int = 100) -> list[Incident]:
        """Incidents whose message is missing (and which are still active) or older than the
        incident, and which are not silenced at `now`: what a resync must post or update,
        oldest first."""


class TicketStore(Protocol):
    """Which incident has a tracker ticket, or a claim on creating one. Not an OutboxStore
    delivery: a ticket is created by the person who clicked, once, while they wait, and its
    claim is held for that one attempt rather than retried on a schedule."""

    def claim_ticket(self, claim: TicketRef, lease: timedelta) -> bool:
        """Record the claim unless the incident has a ticket, or a claim younger than `lease`:
        True when this claim went in and its holder may create the ticket."""

    def ticket(self, incident_id: str) -> TicketRef | None: ...

    def put_ticket(self, ticket: TicketRef) -> None:
        """The created ticket's key and URL, over the claim."""

    def release_ticket(self, claim: TicketRef) -> None:
        """Withdraw a claim whose creation failed, so that the next click may try again."""


class LeaseStore(Protocol):
    """Named leases: how replicas agree on who does work that must happen once."""

    def acquire_lease(
        self, name: str, holder: str, now: datetime, duration: timedelta
    ) -> LeaseGrant:
        """Hold `name` until `now + duration` if it is free, expired, or already `holder`'s (a
        renewal): one conditional write, so of replicas racing for it exactly one is granted."""

    def release_lease(self, name: str, holder: str) -> None:
        """Free `name` if `holder` still holds it; someone else's lease is left alone."""


class OutboxStore(Protocol):
    """Requested deliveries (a page, a mail, a reminder, a digest) and what became of them."""

    def add_delivery(self, delivery: Delivery) -> bool:
        """Record a requested delivery unless one with its key exists: False when it does, so
        that asking twice (a double click, two replicas) sends once."""

    def put_delivery(self, delivery: Delivery) -> None:
        """The delivery's state after an attempt, over the stored one."""

    def delivery(self, key: str) -> Delivery | None:
        """One delivery's current state, read consistently: what an attempt starts from."""

    def deliveries(self, incident_id: str) -> list[Delivery]:
        """An incident's deliveries, oldest first: what was sent where."""

    def due_deliveries(self, now: datetime, limit: int = 50) -> list[Delivery]:
        """Pending deliveries whose next attempt is due at `now`, the longest waiting first."""


class Store(
    IncidentStore,
    IngestStore,
    AnalysisStore,
    ReportStore,
    ChatRefStore,
    TicketStore,
    LeaseStore,
    OutboxStore,
    Protocol,
):
    """A whole backend: every role, and what only its owner does with it (the composition
    root that opens it, `incident-bot doctor` that checks it). Consumers ask for roles."""

    def check(self) -> str:
        """What `incident-bot doctor` says of the store: where it is and that its schema is
        what this release needs. Raise StoreError with the reason when it is not usable."""

    def close(self) -> None: ...
