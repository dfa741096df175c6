"""The delivery outbox on a real SQLite store: once per key, retried with backoff across
restarts, given up visibly, and one attempt at a time across replicas. The senders are the
test's own functions: the channels themselves are tested against their local servers."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from incidents.leases import Leases
from incidents.models import Delivery, DeliveryStatus
from incidents.sqlite import SqliteStore
from notify.outbox import DeliveryError, Outbox, retry_delay
from tests.conftest import ManualClock

MINUTE = timedelta(minutes=1)


class Channel:
    """A sender that records what it was asked to send and fails as scripted."""

    def __init__(self, *failures: DeliveryError, delay: float = 0.0) -> None:
        self.failures = list(failures)
        self.sent: list[str] = []
        self.delay = delay

    async def __call__(self, delivery: Delivery) -> str | None:
        await asyncio.sleep(self.delay)
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(delivery.key)
        return f"sent-{len(self.sent)}"


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "outbox.db")


def _outbox(store: SqliteStore, clock: ManualClock, channel: Channel, **kwargs: object) -> Outbox:
    leases = Leases(store, MINUTE)
    return Outbox(store, leases, {"pagerduty": channel}, clock=clock, **kwargs)  # type: ignore[arg-type]


async def test_a_request_is_sent_once_and_remembered(store: SqliteStore, clock: ManualClock):
    channel = Channel()
    outbox = _outbox(store, clock, channel)
    delivery = outbox.new("INC-1", "pagerduty", "trigger", "U1", {"severity": "CRITICAL"})

    done = await outbox.request(delivery)
    again = await outbox.request(outbox.new("INC-1", "pagerduty", "trigger", "U2"))

    assert done is not None and done.status is DeliveryStatus.SENT and done.result == "sent-1"
    assert again is None, "the same request twice is one delivery"
    assert channel.sent == ["INC-1:pagerduty:trigger"]
    [stored] = store.deliveries("INC-1")
    assert (stored.status, stored.attempts, stored.requested_by) == (DeliveryStatus.SENT, 1, "U1")


async def test_a_transient_failure_is_retried_later_and_then_sent(
    store: SqliteStore, clock: ManualClock
):
    channel = Channel(DeliveryError("HTTP 503"), DeliveryError("timed out"))
    outbox = _outbox(store, clock, channel)

    first = await outbox.request(outbox.new("INC-1", "pagerduty", "trigger", "U1"))
    assert first is not None and first.status is DeliveryStatus.PENDING
    assert first.last_error == "HTTP 503" and first.next_attempt_at == clock.now + retry_delay(1)
    assert await outbox.run_due() == 0, "not due before its backoff"

    clock.advance(seconds=30)
    assert await outbox.run_due() == 1
    clock.advance(seconds=59)
    assert await outbox.run_due() == 0, "the second backoff is twice the first"
    clock.advance(seconds=1)
    assert await outbox.run_due() == 1

    [stored] = store.deliveries("INC-1")
    assert stored.status is DeliveryStatus.SENT and stored.attempts == 3
    assert stored.last_error is None and channel.sent == ["INC-1:pagerduty:trigger"]


async def test_a_permanent_failure_gives_up_at_once_and_says_so(
    store: SqliteStore, clock: ManualClock
):
    told: list[Delivery] = []

    async def tell(delivery: Delivery) -> None:
        told.append(delivery)

    channel = Channel(DeliveryError("Event object is invalid", retryable=False))
    outbox = _outbox(store, clock, channel, on_failed=tell)

    ended = await outbox.request(outbox.new("INC-1", "pagerduty", "trigger", "U1"))

    assert ended is not None and ended.status is DeliveryStatus.FAILED
    assert [d.last_error for d in told] == ["Event object is invalid"]
    clock.advance(hours=5)
    assert await outbox.run_due() == 0 and channel.sent == []


async def test_retries_end_after_the_last_attempt(store: SqliteStore, clock: ManualClock):
    told: list[Delivery] = []

    async def tell(delivery: Delivery) -> None:
        told.append(delivery)

    channel = Channel(*(DeliveryError(f"HTTP 500 #{n}") for n in range(10)))
    outbox = _outbox(store, clock, channel, on_failed=tell, max_attempts=3)
    await outbox.request(outbox.new("INC-1", "pagerduty", "trigger", "U1"))
    for _ in range(5):
        clock.advance(hours=1)
        await outbox.run_due()

    [stored] = store.deliveries("INC-1")
    assert stored.status is DeliveryStatus.FAILED and stored.attempts == 3
    assert [d.last_error for d in told] == ["HTTP 500 #2"]


async def test_what_a_stopped_process_left_pending_is_sent_after_a_restart(
    store: SqliteStore, clock: ManualClock
):
    before = _outbox(store, clock, Channel(DeliveryError("connection refused")))
    await before.request(before.new("INC-1", "pagerduty", "resolve", "U1"))

    channel = Channel()
    after = _outbox(store, clock, channel)
    clock.advance(minutes=1)
    await after.run_due()

    assert channel.sent == ["INC-1:pagerduty:resolve"]


async def test_two_replicas_running_the_same_due_list_send_each_delivery_once(
    store: SqliteStore, clock: ManualClock
):
    first_channel = Channel(delay=0.05)
    second_channel = Channel(delay=0.05)
    first = _outbox(store, clock, first_channel)
    second = _outbox(store, clock, second_channel)
    for n in range(6):
        store.add_delivery(first.new(f"INC-{n}", "pagerduty", "trigger", "U1"))

    await asyncio.gather(first.run_due(), second.run_due())

    sent = first_channel.sent + second_channel.sent
    assert sorted(sent) == sorted(f"INC-{n}:pagerduty:trigger" for n in range(6))


async def test_a_target_no_longer_configured_fails_visibly(store: SqliteStore, clock: ManualClock):
    outbox = _outbox(store, clock, Channel())
    store.add_delivery(outbox.new("INC-1", "teams", "post", "U1"))

    await outbox.run_due()

    [stored] = store.deliveries("INC-1")
    assert stored.status is DeliveryStatus.FAILED
    assert stored.last_error == "teams is no longer configured"
