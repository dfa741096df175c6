"""One Jira ticket per incident, however many clicks and replicas ask for it at once.

The click whose claim goes into the store creates the ticket; every other click is told where
the ticket is, or that it is on its way. A claim is a lease (`CLAIM_LEASE`): a replica that
dies while creating leaves a claim that runs out, so a later click can try again. A failed
creation releases its claim at once. `create_once` says what happened as a `TicketOutcome`;
the Slack listener only turns it into messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final, Protocol

from analysis.models import Analysis
from incidents.models import Incident, TicketRef
from incidents.store import AnalysisStore, IncidentStore, TicketStore
from notify.jira import JiraTickets, TicketError

CLAIM_LEASE: Final = timedelta(minutes=2)


class TicketResult(StrEnum):
    CREATED = "created"
    EXISTS = "exists"
    IN_PROGRESS = "in_progress"
    NOT_CONFIGURED = "not_configured"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class TicketOutcome:
    result: TicketResult
    key: str | None = None
    url: str | None = None
    reason: str | None = None
    """Why creating failed (FAILED only), as Jira said it."""


class TicketingStore(TicketStore, AnalysisStore, IncidentStore, Protocol):
    """The claim and the ticket, and what the ticket is written from: the incident's analysis
    and timeline."""


def create_once(
    store: TicketingStore,
    tickets: JiraTickets | None,
    incident: Incident,
    user: str,
    permalink: str | None,
    now: datetime,
) -> TicketOutcome:
    """Create the incident's ticket unless it has one or one is being created. Blocking (the
    store and Jira are): run it in a thread."""
    existing = store.ticket(incident.id)
    if existing and existing.key and existing.url:
        return TicketOutcome(TicketResult.EXISTS, existing.key, existing.url)
    if tickets is None:
        return TicketOutcome(TicketResult.NOT_CONFIGURED)
    claim = TicketRef(incident_id=incident.id, claimed_by=user, claimed_at=now)
    if not store.claim_ticket(claim, CLAIM_LEASE):
        return TicketOutcome(TicketResult.IN_PROGRESS)
    record = store.latest_analysis(incident.id)
    analysis = Analysis.model_validate_json(record.body) if record else None
    try:
        ticket = tickets.create(incident, analysis, permalink, store.timeline(incident.id))
    except TicketError as exc:
        store.release_ticket(claim)
        return TicketOutcome(TicketResult.FAILED, reason=exc.reason)
    store.put_ticket(claim.model_copy(update={"key": ticket.key, "url": ticket.url}))
    return TicketOutcome(TicketResult.CREATED, ticket.key, ticket.url)
