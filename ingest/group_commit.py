"""Group commit: what arrives together is written together, and each sender is answered when
its own alerts are durable.

A storm is many small deliveries (one SQS message per alarm, one POST per alert). Writing each
as its own transaction makes the store's round trip (an fsync, a DynamoDB request) the price of
every alert. Here senders hand their parsed payloads to one committer: while one batch is being
written the next gathers, and it is written as one `Ingestor.commit` (one SQLite transaction;
one write per incident on DynamoDB) as soon as the store is free. Idle, a payload waits at most
`window` for company; under load the window is the previous write's duration, so batches grow
with the load and the store's cost per alert falls as the storm rises.

The backlog is bounded: past `max_alerts` alerts or `max_bytes` bytes waiting, `submit` refuses
with `BackloggedError` at once (the receiver answers 429 with Retry-After), so memory stays flat
whatever the inflow. At stop, deliveries another process can take instead (SQS messages) are
withdrawn rather than written, and the rest are written before the committer ends.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from incidents.lifecycle import RecordOutcome
from incidents.store import StoreError
from ingest.pipeline import Answer, Ingestor, IngestReport, Parsed, UnreadablePayloadError

logger = logging.getLogger(__name__)

DEFAULT_WINDOW = 0.002
MAX_BATCH_ALERTS = 2000
"""Alerts one store transaction takes at most: a bounded write time, so a stop is prompt."""
DEFAULT_BACKLOG_ALERTS = 10_000
DEFAULT_BACKLOG_BYTES = 32 * 1024 * 1024

CommitHook = Callable[[list[RecordOutcome]], None]


class BackloggedError(Exception):
    """More is waiting to be written than the committer holds: try again after `retry_after`
    seconds. Nothing of the refused payload was kept; its sender still has it."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"ingest backlog is full; retry in {retry_after}s")
        self.retry_after = retry_after


class StoppingError(Exception):
    """The process is stopping and takes no new payload; the sender retries elsewhere."""


class WithdrawnError(Exception):
    """The payload was handed back unwritten at stop, for another replica to take at once."""


@dataclass
class _Entry:
    parsed: Parsed
    answer: asyncio.Future[Answer]
    withdrawable: bool


class GroupCommitter:
    def __init__(
        self,
        ingestor: Ingestor,
        store_executor: Executor | None,
        *,
        parse_executor: Executor | None = None,
        window: float = DEFAULT_WINDOW,
        max_alerts: int = DEFAULT_BACKLOG_ALERTS,
        max_bytes: int = DEFAULT_BACKLOG_BYTES,
        on_commit: CommitHook | None = None,
    ) -> None:
        self.ingestor = ingestor
        self._store_executor = store_executor
        self._parse_executor = parse_executor
        self._window = window
        self._max_alerts = max_alerts
        self._max_bytes = max_bytes
        self._on_commit = on_commit
        self._pending: deque[_Entry] = deque()
        self._pending_alerts = 0
        self._bytes = 0
        """Bytes of every payload accepted and not yet answered: parsing, waiting or writing."""
        self._writing = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._withdrawing = False
        self._alerts_per_second = 0.0
        self._runner: asyncio.Task[None] | None = None
        self.batches = 0

    @property
    def backlog(self) -> dict[str, int]:
        """What `/readyz` reports: payloads and alerts waiting, and bytes held in all."""
        return {
            "payloads": len(self._pending) + self._writing,
            "alerts": self._pending_alerts,
            "bytes": self._bytes,
        }

    def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.create_task(self._run())

    async def submit(
        self,
        body: bytes,
        origin: str,
        message_id: str | None = None,
        *,
        withdrawable: bool = False,
        content_encoding: str | None = None,
    ) -> IngestReport:
        """Parse, then wait for the batch that writes this payload: its report once durable.

        Raises UnreadablePayloadError (kept as a dead letter), StoreError (nothing written),
        BackloggedError and StoppingError (nothing taken), WithdrawnError (handed back),
        InflatedTooLargeError (a body inflating past the limit under `content_encoding`).
        A withdrawable payload (an SQS message) is not held to the backlog's limits: its
        consumer bounds what it holds, and one refused would only wait out its visibility
        timeout and count towards the queue's redrive limit."""
        if self._closing or (self._runner is not None and self._runner.done()):
            raise StoppingError("stopping: not taking new alerts")
        if not withdrawable and not self.has_room(len(body)):
            raise BackloggedError(self._retry_after())
        self.start()
        self._bytes += len(body)
        try:
            loop = asyncio.get_running_loop()
            parsed = await loop.run_in_executor(
                self._parse_executor,
                self.ingestor.parse,
                body,
                origin,
                message_id,
                content_encoding,
            )
            if withdrawable and self._withdrawing:
                raise WithdrawnError("stopping: handed back before it was written")
            if (
                not withdrawable
                and self._pending_alerts
                and self._pending_alerts + parsed.alert_count > self._max_alerts
            ):
                # Payloads parsed side by side all passed the first check.
                raise BackloggedError(self._retry_after())
            entry = _Entry(parsed, loop.create_future(), withdrawable)
            self._pending.append(entry)
            self._pending_alerts += parsed.alert_count
            self._wake.set()
            # A sender that goes away (a closed connection) must not cancel the write of
            # what it sent: the batch goes on, and a retry counts once.
            answer = await asyncio.shield(entry.answer)
        finally:
            self._bytes -= len(body)
        if isinstance(answer, UnreadablePayloadError | StoreError):
            raise answer
        return answer

    def has_room(self, size: int) -> bool:
        """Whether a payload of `size` bytes would be taken now: the receiver asks before it
        reads a body, so that bodies being read are bounded too."""
        return self._bytes + size <= self._max_bytes and self._pending_alerts < self._max_alerts

    def withdraw(self) -> int:
        """Hand back every withdrawable payload not yet being written (and refuse those still
        parsing): at stop, an SQS message is better released to another replica than written
        by a process on its way out. Returns how many were withdrawn."""
        self._withdrawing = True
        kept: deque[_Entry] = deque()
        withdrawn = 0
        for entry in self._pending:
            if entry.withdrawable:
                self._pending_alerts -= entry.parsed.alert_count
                entry.answer.set_exception(WithdrawnError("stopping: handed back unwritten"))
                withdrawn += 1
            else:
                kept.append(entry)
        self._pending = kept
        return withdrawn

    async def close(self) -> None:
        """Take nothing new, write what is waiting, and end."""
        self._closing = True
        self._wake.set()
        if self._runner is not None:
            await self._runner

    async def _run(self) -> None:
        while True:
            while not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                if self._window > 0 and not self._closing:
                    # Idle until now: let a burst that started together join this batch.
                    await asyncio.sleep(self._window)
            batch = self._take()
            if batch:  # empty when everything waiting was withdrawn meanwhile
                await self._write(batch)

    async def _write(self, batch: list[_Entry]) -> None:
        """Write one batch and answer each of its senders, whatever happens: a sender left
        without an answer would wait forever, and with it an SQS slot or a stop."""
        loop = asyncio.get_running_loop()
        self._writing = len(batch)
        started = time.monotonic()
        try:
            answers = await loop.run_in_executor(
                self._store_executor,
                self.ingestor.commit_isolating,
                [entry.parsed for entry in batch],
            )
        except BaseException as exc:  # StoreError above all; a cancellation is passed on
            for entry in batch:
                if not entry.answer.done():
                    entry.answer.set_exception(
                        exc if isinstance(exc, Exception) else StoppingError("stopped")
                    )
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            self._writing = 0
        self._measure(batch, time.monotonic() - started)
        outcomes: list[RecordOutcome] = []
        for entry, answer in zip(batch, answers, strict=True):
            if isinstance(answer, StoreError):
                entry.answer.set_exception(answer)
                continue
            entry.answer.set_result(answer)
            if isinstance(answer, IngestReport):
                outcomes.extend(answer.outcomes)
        if outcomes and self._on_commit is not None:
            try:
                self._on_commit(outcomes)
            except Exception:  # what follows a write must not stop the writing
                logger.exception("reacting to %d recorded alerts failed", len(outcomes))

    def _take(self) -> list[_Entry]:
        """The waiting payloads, oldest first, up to MAX_BATCH_ALERTS alerts (at least one)."""
        batch: list[_Entry] = []
        alerts = 0
        while self._pending and (
            not batch or alerts + self._pending[0].parsed.alert_count <= MAX_BATCH_ALERTS
        ):
            entry = self._pending.popleft()
            alerts += entry.parsed.alert_count
            batch.append(entry)
        self._pending_alerts -= alerts
        return batch

    def _measure(self, batch: list[_Entry], seconds: float) -> None:
        alerts = sum(entry.parsed.alert_count for entry in batch)
        self.batches += 1
        if seconds > 0 and alerts:
            rate = alerts / seconds
            self._alerts_per_second = (
                rate
                if not self._alerts_per_second
                else (0.8 * self._alerts_per_second + 0.2 * rate)
            )

    def _retry_after(self) -> int:
        """Seconds for the backlog to drain at the recent write rate: 1 to 30."""
        if self._alerts_per_second <= 0:
            return 1
        return max(1, min(30, math.ceil(self._pending_alerts / self._alerts_per_second)))
