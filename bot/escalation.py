"""Escalation: reminders in the thread of an incident nobody acknowledges, then a page.

`Escalator.run_once` is the scheduled pass: it reads the open incidents from the store, asks
the policy which reminder round each is due (`incidents.escalation`), and requests that
round from the notifier, which records it as a delivery keyed by opening and round. So the
pass holds no state of its own: after a restart it finds the same rounds due and the same
rounds already recorded, and two replicas running it at once request each round once.
`Reminders.send` is the outbox's sender for those deliveries: it re-reads the incident and
says nothing if someone acknowledged it in the meantime.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from datetime import datetime

from blocks.kit import Message
from blocks.thread import escalation_reminder
from incidents.escalation import EscalationPolicy, escalation_nonce, waiting_since
from incidents.models import Delivery, IncidentStatus
from incidents.offload import Offload
from incidents.store import IncidentStore
from notify.dispatch import REMINDER, SLACK, Notifier
from notify.outbox import DeliveryError, Outbox, utcnow

logger = logging.getLogger(__name__)

# Open incidents read per pass, newest opening first. Thousands open at once is an outage of
# its own; a reopened incident keeps its first opening time, so the bound is generous.
SCAN_LIMIT = 5000

# Posts a message in an incident's thread; returns its ts, raises DeliveryError when it cannot.
ThreadPoster = Callable[[str, Message], Awaitable[str]]


class Reminders:
    """The sender of reminder deliveries: the message is written when it is sent, so a retry
    after a Slack outage says how long the incident has really waited by then."""

    def __init__(
        self,
        store: IncidentStore,
        policy: EscalationPolicy,
        post: ThreadPoster,
        *,
        mention: str | None = None,
        executor: Executor | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.policy = policy
        self.post = post
        self.mention = mention
        self._offload = Offload(executor)
        self._clock = clock

    async def send(self, delivery: Delivery) -> str | None:
        incident = await self._offload(self.store.get_incident, delivery.incident_id)
        if incident is None:
            raise DeliveryError(f"incident {delivery.incident_id} is gone", retryable=False)
        if incident.status is not IncidentStatus.OPEN:
            return f"not needed: {incident.status.value}"
        round_number = int(str(delivery.request.get("round") or 1))
        now = self._clock()
        # A retry after an outage must not post the rounds it missed in a burst, nor a round
        # of an earlier opening: only the round due now is worth a message.
        nonce = escalation_nonce(incident, round_number)
        if delivery.key != Outbox.key(incident.id, SLACK, REMINDER, nonce):
            return "not needed: the incident reopened since"
        if round_number < self.policy.due_round(incident, now):
            return "not needed: a later reminder superseded it"
        waited = now - waiting_since(incident)
        message = escalation_reminder(
            incident, round_number, self.policy.repeats, waited, self.mention
        )
        return await self.post(incident.id, message)


class Escalator:
    def __init__(
        self,
        store: IncidentStore,
        policy: EscalationPolicy,
        notifier: Notifier,
        *,
        silenced_until: Callable[[str], datetime | None],
        executor: Executor | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`silenced_until(fingerprint)` is the lifecycle's: a silenced incident was muted on
        purpose, so it is not escalated either."""
        self.store = store
        self.policy = policy
        self.notifier = notifier
        self.silenced_until = silenced_until
        self._offload = Offload(executor)
        self._clock = clock

    async def run_once(self) -> int:
        """Request every reminder round now due; how many were newly requested. One
        incident's failure is logged and the others still get theirs."""
        if not self.policy.enabled:
            return 0
        now = self._clock()
        incidents = await self._offload(
            lambda: self.store.list_incidents(statuses=[IncidentStatus.OPEN], limit=SCAN_LIMIT)
        )
        requested = 0
        escalating = [i for i in incidents if self.policy.delays.get(i.severity)]
        for incident in escalating:
            round_number = self.policy.due_round(incident, now)
            if not round_number:
                continue
            if await self._offload(self.silenced_until, incident.fingerprint) is not None:
                continue
            try:
                if await self.notifier.escalate(incident, round_number):
                    requested += 1
                    logger.info("escalated %s: reminder %d", incident.id, round_number)
            except Exception:  # one incident's failure must not cost the others their reminder
                logger.exception("escalation of %s failed; the next pass retries", incident.id)
        return requested
