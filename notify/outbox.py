"""Every outbound notification as a delivery record: requested once, attempted until it is
sent or given up, across restarts and replicas.

A request is written to the store before anything is sent (`OutboxStore.add_delivery`, idempotent
on its key), then attempted at once. A transient failure (a 5xx, a timeout, a refused
connection) leaves it pending with its next attempt pushed back exponentially; the `forever`
loop, run once per interval across replicas, picks up what is due, including what a killed
process left. A permanent failure (Jira's "field required", PagerDuty's 400), or running out
of attempts, marks it failed and tells the incident's thread, so no failure is silent. Each
attempt holds the delivery's lease, so two replicas never send the same one at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta

from incidents.leases import Leases
from incidents.models import Delivery, DeliveryStatus
from incidents.offload import Offload
from incidents.store import OutboxStore

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)
LAST_RETRY = timedelta(hours=1)
_ERROR_LIMIT = 300


class DeliveryError(Exception):
    """A send that did not happen. `retryable` says whether trying again later can help."""

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        self.reason = " ".join(reason.split())[:_ERROR_LIMIT]
        self.retryable = retryable
        super().__init__(self.reason)


# Sends one delivery; returns what to remember of it (a ticket key, a message id) or None.
Sender = Callable[[Delivery], Awaitable[str | None]]
# Told of a delivery that ended: sent (`on_sent`), or failed for good (`on_failed`).
Listener = Callable[[Delivery], Awaitable[None]]


def utcnow() -> datetime:
    return datetime.now(UTC)


async def ignore(delivery: Delivery) -> None:
    """The listener of whoever needs to hear of nothing."""
    return None


def retry_delay(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, ... up to an hour: eight attempts span about two hours."""
    delay: timedelta = FIRST_RETRY * 2 ** max(attempts - 1, 0)
    return min(delay, LAST_RETRY)


class Outbox:
    def __init__(
        self,
        store: OutboxStore,
        leases: Leases,
        senders: Mapping[str, Sender],
        *,
        on_failed: Listener = ignore,
        on_sent: Listener = ignore,
        executor: Executor | None = None,
        clock: Callable[[], datetime] = utcnow,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.store = store
        self.leases = leases
        self.senders = dict(senders)
        self.on_failed = on_failed
        self.on_sent = on_sent
        self.max_attempts = max_attempts
        self._offload = Offload(executor)
        self._clock = clock

    def new(
        self,
        incident_id: str,
        target: str,
        action: str,
        requested_by: str,
        request: Mapping[str, object] | None = None,
        *,
        nonce: str | None = None,
    ) -> Delivery:
        """A delivery keyed so that the same request made twice is one delivery; `nonce`
        tells apart requests that may rightly repeat (an email sent again on purpose)."""
        now = self._clock()
        return Delivery(
            key=self.key(incident_id, target, action, nonce),
            incident_id=incident_id,
            target=target,
            action=action,
            requested_by=requested_by,
            requested_at=now,
            next_attempt_at=now,
            request=dict(request or {}),
        )

    @staticmethod
    def key(incident_id: str, target: str, action: str, nonce: str | None = None) -> str:
        """The idempotency key of a delivery, for whoever must look one up before asking."""
        return f"{incident_id}:{target}:{action}" + (f":{nonce}" if nonce else "")

    async def request(self, delivery: Delivery) -> Delivery | None:
        """Record the delivery and attempt it now. None when it was already requested (and
        so is being, or was, delivered); else its state after this first attempt."""
        if delivery.target not in self.senders:
            raise ValueError(f"no sender for {delivery.target!r}")
        if not await self._offload(self.store.add_delivery, delivery):
            return None
        return await self.attempt(delivery)

    async def attempt(self, delivery: Delivery) -> Delivery:
        """One attempt under the delivery's lease; the stored state after it is returned.
        Another replica attempting the same delivery leaves it to that one."""
        name = f"delivery:{delivery.key}"
        async with self.leases.holding(name, wait=timedelta(0)) as grant:
            if not grant.granted:
                return delivery
            # What this replica read may be stale: another may have sent it since.
            current = await self._offload(self.store.delivery, delivery.key)
            if current is None or current.status is not DeliveryStatus.PENDING:
                return current or delivery
            if current.attempts != delivery.attempts:
                return current
            return await self._attempt(current)

    async def _attempt(self, delivery: Delivery) -> Delivery:
        attempts = delivery.attempts + 1
        try:
            sender = self.senders.get(delivery.target)
            if sender is None:
                raise DeliveryError(f"{delivery.target} is no longer configured", retryable=False)
            result = await sender(delivery)
        except DeliveryError as exc:
            gave_up = not exc.retryable or attempts >= self.max_attempts
            ended = delivery.model_copy(
                update={
                    "attempts": attempts,
                    "last_error": exc.reason,
                    "status": DeliveryStatus.FAILED if gave_up else DeliveryStatus.PENDING,
                    "next_attempt_at": self._clock() + retry_delay(attempts),
                }
            )
            await self._offload(self.store.put_delivery, ended)
            if gave_up:
                logger.error("%s gave up after %d attempt(s): %s", ended.key, attempts, exc.reason)
                await self.on_failed(ended)
            else:
                logger.warning("%s failed (%s); retrying at %s", ended.key, exc.reason,
                               ended.next_attempt_at.isoformat(timespec="seconds"))  # fmt: skip
            return ended
        sent = delivery.model_copy(
            update={
                "attempts": attempts,
                "status": DeliveryStatus.SENT,
                "result": result,
                "last_error": None,
            }
        )
        await self._offload(self.store.put_delivery, sent)
        logger.info("%s sent%s", sent.key, f": {result}" if result else "")
        await self.on_sent(sent)
        return sent

    async def run_due(self) -> int:
        """Attempt every delivery now due; how many were attempted."""
        due = await self._offload(self.store.due_deliveries, self._clock(), 50)
        for delivery in due:
            await self.attempt(delivery)
        return len(due)

    async def forever(self, interval: timedelta) -> None:
        """The retry loop: one pass per interval across replicas (a job lease)."""
        while True:
            try:
                if (await self.leases.acquire("job:deliveries", interval * 0.9)).granted:
                    await self.run_due()
            except Exception:  # the loop is the retry: one failed pass must not end it
                logger.exception("delivery pass failed; the next one follows in %s", interval)
            await asyncio.sleep(interval.total_seconds())
