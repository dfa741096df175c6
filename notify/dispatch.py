"""What reaches Jira, email, PagerDuty and Teams when an incident changes: the channels'
policy, in one place, on top of the outbox.

Every notification is a delivery keyed by incident, channel, action and the incident's
opening (`reopen_count`), so that the same change seen twice (a double click, two replicas, a
redelivered alert) sends once, while a reopened incident pages again. Requests carry only what
the sender cannot read back later (recipients, a note, a route name); the content itself (the
analysis, the timeline, the Slack link) is read from the store when the attempt is made, so
that a retry an hour later sends what is true then, and no webhook secret is ever stored.

The policy:
- PagerDuty: a trigger when an incident is (or becomes) CRITICAL, or when an incident of any
  severity is escalated for want of an acknowledgement; acknowledge and resolve mirrored
  only for incidents PagerDuty was told of.
- Slack reminders: one per escalation round, through the outbox like the rest, so that a
  Slack outage delays a reminder rather than loses it.
- Teams: one card when the first analysis of an opening lands, routed by severity; one short
  card when an incident that had a card resolves.
- Email: on request from Slack, to the recipients given; automatically for CRITICAL incidents
  when `EMAIL_ON_CRITICAL` is set, to `EMAIL_TO`, once the analysis is in.
- Jira: a comment on the incident's ticket when it resolves, then the configured transition.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Protocol

from analysis.models import Analysis
from incidents.escalation import escalation_nonce
from incidents.leases import Leases
from incidents.lifecycle import short_duration
from incidents.models import Delivery, DeliveryStatus, Incident, Severity
from incidents.offload import Offload
from incidents.store import AnalysisStore, IncidentStore, OutboxStore, TicketStore
from notify.email import build_message, compose
from notify.jira import JiraTickets, TicketError
from notify.outbox import DeliveryError, Listener, Outbox, Sender, ignore, utcnow
from notify.pagerduty import PagerDutyEvents
from notify.teams import TeamsWebhook, adaptive_card, resolved_card

logger = logging.getLogger(__name__)

PAGERDUTY = "pagerduty"
TEAMS = "teams"
EMAIL = "email"
JIRA = "jira"
SLACK = "slack"
REMINDER = "reminder"


class EmailTransport(Protocol):
    """SMTP or SES: sends one message, blocking, and returns its id; `DeliveryError` else."""

    def send(self, message: EmailMessage) -> str: ...

    def check(self) -> str:
        """Everything short of sending: for `incident-bot doctor`."""
        ...


async def no_permalink(incident_id: str) -> str | None:
    """Without Slack there is no message to link to."""
    return None


@dataclass
class Channels:
    """The configured channels; None (or no route) means that channel is off."""

    pagerduty: PagerDutyEvents | None = None
    teams: TeamsWebhook | None = None
    teams_route: Callable[[Severity], str | None] = lambda severity: None
    email: EmailTransport | None = None
    email_from: str = ""
    email_to: Sequence[str] = ()
    email_on_critical: bool = False
    jira: JiraTickets | None = None
    jira_resolve_transition: str | None = None
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


class NotifierStore(IncidentStore, AnalysisStore, OutboxStore, TicketStore, Protocol):
    """What the notifier reads to compose a message (the incident, its timeline, analysis
    and ticket) and the outbox it records deliveries in."""


class Notifier:
    def __init__(
        self,
        store: NotifierStore,
        leases: Leases,
        channels: Channels,
        *,
        permalink: Callable[[str], Awaitable[str | None]] = no_permalink,
        on_sent: Listener = ignore,
        on_failed: Listener = ignore,
        senders: Mapping[str, Sender] | None = None,
        executor: Executor | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`senders` are the bot's own deliveries, made reliable by the same outbox: the
        escalation reminders (`slack`) and the daily digest. Without a `slack` sender,
        escalation only pages."""
        self.store = store
        self.channels = channels
        self._permalink = permalink
        self._offload = Offload(executor)
        by_target: dict[str, Sender] = {}
        if channels.pagerduty is not None:
            by_target[PAGERDUTY] = self._send_pagerduty
        if channels.teams is not None:
            by_target[TEAMS] = self._send_teams
        if channels.email is not None:
            by_target[EMAIL] = self._send_email
        if channels.jira is not None:
            by_target[JIRA] = self._send_jira
        by_target.update(senders or {})
        self.outbox = Outbox(
            store,
            leases,
            by_target,
            on_sent=on_sent,
            on_failed=on_failed,
            executor=executor,
            clock=clock,
        )

    # -- incident events --------------------------------------------------------------------

    async def opened(self, incident: Incident) -> None:
        """A new or reopened incident, or one whose severity rose: page when it is CRITICAL."""
        if self.channels.pagerduty is not None and incident.severity is Severity.CRITICAL:
            await self._request(incident, PAGERDUTY, "trigger", "system")

    async def analysed(self, incident: Incident, analysis: Analysis) -> None:
        """The analysis is what Teams and automatic email carry, so they wait for it."""
        await self.opened(incident)
        if self.channels.teams is not None:
            route = self.channels.teams_route(incident.severity)
            if route is not None:
                request = {"card": "analysis", "severity": incident.severity.value}
                await self._request(incident, TEAMS, "analysis", "system", request)
        channels = self.channels
        if (
            channels.email is not None
            and channels.email_on_critical
            and channels.email_to
            and incident.severity is Severity.CRITICAL
        ):
            mail = {"to": list(channels.email_to), "note": "", "sent_by": "incident-bot"}
            await self._request(incident, EMAIL, "auto", "system", mail)

    async def acknowledged(self, incident: Incident, user: str) -> None:
        if self.channels.pagerduty is not None and await self._was_sent(
            incident, PAGERDUTY, "trigger"
        ):
            await self._request(incident, PAGERDUTY, "acknowledge", user)

    async def resolved(self, incident: Incident, user: str) -> None:
        """Mirror the resolution wherever the incident was announced."""
        if self.channels.pagerduty is not None and await self._was_sent(
            incident, PAGERDUTY, "trigger"
        ):
            await self._request(incident, PAGERDUTY, "resolve", user)
        if self.channels.teams is not None and await self._was_sent(incident, TEAMS, "analysis"):
            await self._request(incident, TEAMS, "resolved", user)
        ticket = await self._offload(self.store.ticket, incident.id)
        if self.channels.jira is not None and ticket is not None and ticket.key:
            await self._request(incident, JIRA, "comment", user, {"ticket": ticket.key})
            if self.channels.jira_resolve_transition:
                transition = {"ticket": ticket.key, "name": self.channels.jira_resolve_transition}
                await self._request(incident, JIRA, "transition", user, transition)

    async def escalate(self, incident: Incident, round_number: int) -> bool:
        """Reminder `round_number` for an incident nobody acknowledged: in its thread, and a
        PagerDuty page when PagerDuty is configured. The page is one trigger per opening, the
        same one a CRITICAL incident got when it opened: PagerDuty's own escalation policy
        repeats it from there, and acknowledge and resolve are mirrored to it as usual.
        True when this call requested the reminder; False when an earlier pass (or another
        replica) already had, or there is nowhere to remind."""
        requested = False
        nonce = escalation_nonce(incident, round_number)
        # A pass every 30 s finds the same rounds due until someone acknowledges: a read
        # tells it so, where a refused conditional write would cost DynamoDB write capacity.
        if SLACK in self.outbox.senders and not await self._recorded(
            self.outbox.key(incident.id, SLACK, REMINDER, nonce)
        ):
            delivery = self.outbox.new(
                incident.id, SLACK, REMINDER, "escalation", {"round": round_number}, nonce=nonce
            )
            requested = await self.outbox.request(delivery) is not None
        if self.channels.pagerduty is not None and not await self._recorded(
            self.outbox.key(incident.id, PAGERDUTY, "trigger", _opening(incident))
        ):
            await self._request(incident, PAGERDUTY, "trigger", "escalation")
        return requested

    async def email(
        self, incident: Incident, recipients: Sequence[str], note: str, user: str
    ) -> Delivery:
        """Mail the incident now, as a person asked from Slack: each request is its own
        delivery (sending again on purpose is allowed); its state after the first attempt."""
        if self.channels.email is None:
            raise DeliveryError("email is not configured here", retryable=False)
        request = {"to": list(recipients), "note": note, "sent_by": user}
        delivery = self.outbox.new(
            incident.id, EMAIL, "send", user, request, nonce=secrets.token_hex(4)
        )
        done = await self.outbox.request(delivery)
        assert done is not None, "a fresh nonce is never a duplicate"
        return done

    async def record_ticket(
        self, incident_id: str, user: str, *, key: str | None, error: str | None
    ) -> None:
        """A ticket created from Slack goes through the ticket claim, not the outbox (the
        clicker retries it, and the claim keeps it to one); it is recorded for the list of
        what was sent where all the same."""
        delivery = self.outbox.new(
            incident_id, JIRA, "create", user, nonce=secrets.token_hex(4)
        ).model_copy(
            update={
                "status": DeliveryStatus.SENT if key else DeliveryStatus.FAILED,
                "attempts": 1,
                "result": key,
                "last_error": error,
            }
        )
        await self._offload(self.store.put_delivery, delivery)

    async def forever(self, interval: timedelta) -> None:
        """Retry what is pending, once per interval across replicas, until cancelled."""
        await self.outbox.forever(interval)

    async def close(self) -> None:
        for close in self.channels.closers:
            await close()

    # -- requests ---------------------------------------------------------------------------

    async def _request(
        self,
        incident: Incident,
        target: str,
        action: str,
        user: str,
        request: Mapping[str, object] | None = None,
    ) -> Delivery | None:
        delivery = self.outbox.new(
            incident.id, target, action, user, request, nonce=_opening(incident)
        )
        return await self.outbox.request(delivery)

    async def _was_sent(self, incident: Incident, target: str, action: str) -> bool:
        key = self.outbox.key(incident.id, target, action, _opening(incident))
        delivery = await self._offload(self.store.delivery, key)
        return delivery is not None and delivery.status is not DeliveryStatus.FAILED

    async def _recorded(self, key: str) -> bool:
        return await self._offload(self.store.delivery, key) is not None

    # -- senders ----------------------------------------------------------------------------

    async def _send_pagerduty(self, delivery: Delivery) -> str | None:
        events = self.channels.pagerduty
        assert events is not None
        if delivery.action == "trigger":
            incident, analysis = await self._incident(delivery)
            return await events.trigger(incident, analysis, await self._permalink(incident.id))
        if delivery.action == "acknowledge":
            return await events.acknowledge(delivery.incident_id)
        return await events.resolve(delivery.incident_id)

    async def _send_teams(self, delivery: Delivery) -> str | None:
        teams = self.channels.teams
        assert teams is not None
        incident, analysis = await self._incident(delivery)
        severity = Severity(str(delivery.request.get("severity") or incident.severity))
        url = self.channels.teams_route(severity)
        if url is None:
            raise DeliveryError(f"no Teams webhook is configured for {severity}", retryable=False)
        if delivery.action == "resolved":
            card = resolved_card(incident)
        else:
            card = adaptive_card(incident, analysis, await self._permalink(incident.id))
        return await teams.post(url, card)

    async def _send_email(self, delivery: Delivery) -> str | None:
        transport = self.channels.email
        assert transport is not None
        incident, analysis = await self._incident(delivery)
        timeline = await self._offload(self.store.timeline, incident.id)
        recipients = [str(address) for address in delivery.request.get("to") or []]
        if not recipients:
            raise DeliveryError("the email has no recipient", retryable=False)
        content = compose(
            incident,
            analysis,
            timeline,
            await self._permalink(incident.id),
            str(delivery.request.get("note") or "") or None,
            str(delivery.request.get("sent_by") or delivery.requested_by),
        )
        message = build_message(content, self.channels.email_from, recipients)
        return await asyncio.to_thread(transport.send, message)

    async def _send_jira(self, delivery: Delivery) -> str | None:
        jira = self.channels.jira
        assert jira is not None
        key = str(delivery.request.get("ticket") or "")
        try:
            if delivery.action == "transition":
                name = str(delivery.request.get("name") or "")
                status = await asyncio.to_thread(jira.transition, key, name)
                return f"{key} → {status}"
            incident, _ = await self._incident(delivery)
            await asyncio.to_thread(jira.comment, key, resolution_comment(incident))
            return key
        except TicketError as exc:
            raise DeliveryError(exc.reason, retryable=exc.retryable) from exc

    async def _incident(self, delivery: Delivery) -> tuple[Incident, Analysis | None]:
        incident = await self._offload(self.store.get_incident, delivery.incident_id)
        if incident is None:
            raise DeliveryError(f"incident {delivery.incident_id} is gone", retryable=False)
        record = await self._offload(self.store.latest_analysis, incident.id)
        return incident, Analysis.model_validate_json(record.body) if record else None


def resolution_comment(incident: Incident) -> str:
    """The Jira comment: who resolved it, after how long, and how many alerts it had."""
    by = incident.resolved_by or "the alert clearing"
    lasted = short_duration((incident.resolved_at or datetime.now(UTC)) - incident.opened_at)
    return (
        f"Incident {incident.id} was resolved by {by} after {lasted}, "
        f"with {incident.occurrences} occurrence(s)."
    )


def _opening(incident: Incident) -> str:
    """Which opening of the incident a delivery belongs to: a reopen notifies again."""
    return str(incident.reopen_count)
