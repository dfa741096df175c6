"""The SQS consumer: what CloudWatch publishes through SNS into SQS, recorded exactly once.

A message is deleted only after its alerts are durably recorded, or after an unreadable body
has been kept as a dead letter: nothing is lost and nothing loops. A transient failure (the
store unreachable) leaves the message for redelivery, and the queue's redrive policy moves a
poison message to its DLQ. A redelivered message (same SNS or SQS MessageId) counts once,
because that id is the idempotency key of its alerts. Work in progress keeps the message
invisible, and a full process stops receiving rather than buffering without bound. A busy
process receives and deletes ten messages a request, and the messages of a receive are written
together by the group committer.

At stop, messages not yet being written are handed back at once (visibility 0) for another
replica to take, instead of waiting out their visibility timeout; a long poll in progress is
abandoned on its daemon thread rather than waited for.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from incidents.store import StoreError
from ingest.group_commit import BackloggedError, GroupCommitter, StoppingError, WithdrawnError
from ingest.pipeline import IngestReport, UnreadablePayloadError
from ingest.threads import in_daemon_thread

logger = logging.getLogger(__name__)

LONG_POLL_SECONDS = 20
BATCH_SIZE = 10
DELETE_LINGER_SECONDS = 0.1
"""How long a handled message may wait for others to be deleted in the same request."""


@dataclass(frozen=True)
class ConsumerConfig:
    queue_url: str
    pollers: int = 2
    max_in_flight: int = 50
    visibility_timeout: int = 20
    """Seconds a received message stays invisible; renewed while it is being worked on."""
    wait_seconds: int = LONG_POLL_SECONDS
    """Long poll: at most this long per receive, which is also how long a stop may wait."""


class SqsConsumer:
    def __init__(self, sqs: Any, committer: GroupCommitter, config: ConsumerConfig) -> None:
        self.sqs = sqs
        self.committer = committer
        self.config = config
        self._working: set[asyncio.Task[None]] = set()
        self._reserved = 0
        """Slots held by receives on their way: two pollers must not both fill the last ones."""
        self._room_changed = asyncio.Event()
        self._to_delete: list[dict[str, Any]] = []
        self._to_release: list[dict[str, Any]] = []
        self._batch_full = asyncio.Event()
        self._deleting: asyncio.Task[None] | None = None
        self._stopping = False

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set, then finish what is in flight; the rest stays in the
        queue and reappears after its visibility timeout."""
        pollers = [
            asyncio.create_task(self._poll(stop)) for _ in range(max(1, self.config.pollers))
        ]
        await stop.wait()
        for poller in pollers:
            poller.cancel()
        await asyncio.gather(*pollers, return_exceptions=True)
        withdrawn = self.committer.withdraw()
        if withdrawn:
            logger.info("stopping: handing %d unwritten SQS messages back to the queue", withdrawn)
        while self._working:
            await asyncio.gather(*list(self._working), return_exceptions=True)
        self._stopping = True
        self._batch_full.set()
        while self._deleting is not None:
            await self._deleting
        await self._release(self._to_release)

    @property
    def in_hand(self) -> int:
        """Messages received and not yet written, kept as a dead letter or handed back."""
        return len(self._working)

    async def _poll(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            room = await self._wait_for_room()
            self._reserved += room
            try:
                messages = await in_daemon_thread(self._receive, room)
            except Exception as exc:  # the queue unreachable: say so, wait, poll again
                logger.error("SQS receive failed: %s; retrying in 5s", exc)
                await asyncio.sleep(5)
                continue
            finally:
                self._reserved -= room
                self._room_changed.set()
            for message in messages:
                task = asyncio.create_task(self._handle(message))
                self._working.add(task)
                task.add_done_callback(self._done)

    async def _wait_for_room(self) -> int:
        """Backpressure: receive only what fits under the limit, so that a busy process
        leaves messages in the queue instead of buffering them; and only once a whole batch
        fits (the whole limit, when that is smaller), so that a busy process receives ten
        messages a request rather than one each time a slot frees up. Returns the room."""
        batch = min(BATCH_SIZE, self.config.max_in_flight)
        while True:
            room = self.config.max_in_flight - len(self._working) - self._reserved
            if room >= batch:
                return min(BATCH_SIZE, room)
            self._room_changed.clear()
            await self._room_changed.wait()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._working.discard(task)
        self._room_changed.set()
        if not task.cancelled() and task.exception() is not None:
            logger.error("SQS message handling failed", exc_info=task.exception())

    def _receive(self, count: int) -> list[dict[str, Any]]:
        answer = self.sqs.receive_message(
            QueueUrl=self.config.queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=self.config.wait_seconds,
            VisibilityTimeout=self.config.visibility_timeout,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        messages: list[dict[str, Any]] = answer.get("Messages", [])
        return messages

    async def _handle(self, message: dict[str, Any]) -> None:
        heartbeat = asyncio.create_task(self._keep_invisible(message))
        try:
            report = await self._record(message)
        except WithdrawnError:
            self._to_release.append(message)
            return
        finally:
            heartbeat.cancel()
        if report is not None:
            self._delete_soon(message)

    def _delete_soon(self, message: dict[str, Any]) -> None:
        """A handled message is deleted in one request with up to nine others: at once when
        ten are waiting, else after DELETE_LINGER_SECONDS, and at the latest when the consumer
        stops. One that is not deleted (the process killed meanwhile, SQS refusing) comes back
        after its visibility timeout and counts once, as any redelivery."""
        self._to_delete.append(message)
        if len(self._to_delete) >= BATCH_SIZE:
            self._batch_full.set()
        if self._deleting is None:
            self._deleting = asyncio.create_task(self._delete_batches())

    async def _delete_batches(self) -> None:
        try:
            while self._to_delete:
                if len(self._to_delete) < BATCH_SIZE and not self._stopping:
                    self._batch_full.clear()
                    try:
                        await asyncio.wait_for(self._batch_full.wait(), DELETE_LINGER_SECONDS)
                    except TimeoutError:
                        pass
                batch = self._to_delete[:BATCH_SIZE]
                del self._to_delete[:BATCH_SIZE]
                await self._delete_batch(batch)
        finally:
            self._deleting = None

    async def _delete_batch(self, batch: list[dict[str, Any]]) -> None:
        try:
            answer = await asyncio.to_thread(
                self.sqs.delete_message_batch,
                QueueUrl=self.config.queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": message["ReceiptHandle"]}
                    for n, message in enumerate(batch)
                ],
            )
        except Exception as exc:  # SQS unreachable: the messages come back, and count once
            logger.warning(
                "could not delete %d handled SQS messages (%s); they will be redelivered "
                "and counted once",
                len(batch),
                exc,
            )
            return
        for refusal in answer.get("Failed", []):
            logger.warning(
                "SQS did not delete handled message %s (%s %s); it will be redelivered and "
                "counted once",
                batch[int(refusal["Id"])]["MessageId"],
                refusal.get("Code"),
                refusal.get("Message", ""),
            )

    async def _release(self, messages: list[dict[str, Any]]) -> None:
        """Visibility 0, ten a request: another replica receives them at once. One that is
        not released reappears after its visibility timeout, and counts once all the same."""
        for start in range(0, len(messages), BATCH_SIZE):
            batch = messages[start : start + BATCH_SIZE]
            try:
                await asyncio.to_thread(
                    self.sqs.change_message_visibility_batch,
                    QueueUrl=self.config.queue_url,
                    Entries=[
                        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                        for n, m in enumerate(batch)
                    ],
                )
            except Exception as exc:  # they come back after their timeout: only later, not lost
                logger.warning("could not hand %d SQS messages back: %s", len(batch), exc)

    async def _record(self, message: dict[str, Any]) -> IngestReport | None:
        """The report of a recorded message, an empty one for a kept dead letter, or None to
        leave the message in the queue for redelivery. WithdrawnError at stop."""
        body = str(message.get("Body", "")).encode()
        message_id = f"sqs:{message['MessageId']}"
        try:
            return await self.committer.submit(body, "sqs", message_id, withdrawable=True)
        except UnreadablePayloadError as exc:
            logger.warning(
                "SQS message %s kept as dead letter %s: %s",
                message["MessageId"],
                exc.dead_letter_ids,
                exc.reason,
            )
            return IngestReport(outcomes=[], rejections=[], dead_letter_ids=exc.dead_letter_ids)
        except (StoreError, BackloggedError, StoppingError) as exc:
            logger.error("SQS message %s left for redelivery: %s", message["MessageId"], exc)
            return None

    async def _keep_invisible(self, message: dict[str, Any]) -> None:
        """Slow work must not let the message reappear and be worked on twice."""
        period = max(1.0, self.config.visibility_timeout / 2)
        while True:
            await asyncio.sleep(period)
            try:
                await asyncio.to_thread(
                    self.sqs.change_message_visibility,
                    QueueUrl=self.config.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=self.config.visibility_timeout,
                )
            except Exception as exc:  # a failed renewal only risks a redelivery, counted once
                logger.warning("could not extend visibility of %s: %s", message["MessageId"], exc)
