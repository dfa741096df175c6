"""What recorded alerts set off, kept off the ingest path and bounded whatever the inflow.

The group committer hands over each batch's outcomes as it becomes durable. Work that each
distinct event needs (an analysis for a new incident, a page, a graph) starts at once; the
message updates go through one queue per incident, worked in order, where a repeat replaces the
repeat still waiting before it: the message is rendered from the store's current state, so the
newest repeat says all the older ones would. However many alerts a storm brings, what waits
here is at most a few outcomes per incident, and a slow Slack never holds a sender's answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

from incidents.lifecycle import OutcomeKind, RecordOutcome

logger = logging.getLogger(__name__)

Handler = Callable[[RecordOutcome], Awaitable[None]]
Starter = Callable[[RecordOutcome], None]
_COLLAPSIBLE = (OutcomeKind.REPEATED, OutcomeKind.MEMBER_RESOLVED)


class Reactions:
    def __init__(self, start: Starter, publish: Handler) -> None:
        self._start = start
        self._publish = publish
        self._queues: dict[str, deque[RecordOutcome]] = {}
        self._workers: set[asyncio.Task[None]] = set()

    def push(self, outcomes: Iterable[RecordOutcome]) -> None:
        """Called by the committer on the event loop, once per durable batch."""
        for outcome in outcomes:
            if outcome.kind is OutcomeKind.DUPLICATE:
                continue
            self._start(outcome)
            key = outcome.incident.id if outcome.incident else f"fp:{outcome.alert.fingerprint}"
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = deque()
                worker = asyncio.create_task(self._work(key, queue))
                self._workers.add(worker)
                worker.add_done_callback(self._workers.discard)
            if queue and queue[-1].kind in _COLLAPSIBLE and outcome.kind in _COLLAPSIBLE:
                queue[-1] = outcome
            else:
                queue.append(outcome)

    async def _work(self, key: str, queue: deque[RecordOutcome]) -> None:
        try:
            while queue:
                outcome = queue.popleft()
                try:
                    await self._publish(outcome)
                except Exception:  # the worker's last stop: the resync repairs the message
                    logger.exception("publishing %s of %s failed", outcome.kind.value, key)
        finally:
            del self._queues[key]

    async def drain(self) -> None:
        """Wait until every queued outcome is published (the caller bounds the wait)."""
        while self._workers:
            await asyncio.gather(*list(self._workers), return_exceptions=True)

    def cancel(self) -> None:
        for worker in self._workers:
            worker.cancel()
