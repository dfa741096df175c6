"""The daily digest as the scheduler requests it: figures from a seeded store, posted to the
Slack emulator's channel through the outbox, once a day across replicas and restarts, and
retried while Slack is down. The clock is moved by hand."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from blocks.kit import Message
from bot.digest import DIGEST, Digest
from bot.settings import Settings
from bot.slack_publisher import SlackPublisher
from incidents.leases import Leases
from incidents.lifecycle import IncidentService, LifecyclePolicy
from incidents.models import Alert, DeliveryStatus, Severity
from incidents.sqlite import SqliteStore
from notify.outbox import Outbox
from tests.conftest import ManualClock, make_alert
from tests.fakes.slack_emulator import SlackEmulator

pytestmark = pytest.mark.integration

CHANNEL = "C1"
PARIS = ZoneInfo("Europe/Paris")
# T0 is 08:00 UTC, 09:00 in Paris: the seeded day's activity ends before noon.
DIGEST_AT = time(12, 0)


@pytest.fixture
async def emulator() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(channels=(CHANNEL,)) as started:
        yield started


def _replica(
    name: str,
    store: SqliteStore,
    service: IncidentService,
    emulator: SlackEmulator,
    clock: ManualClock,
) -> tuple[Digest, Outbox]:
    settings = Settings(slack_bot_token="xoxb-test", slack_app_token="xapp-test",
                        slack_api_url=emulator.api_url, slack_channel=CHANNEL)  # fmt: skip
    leases = Leases(store, timedelta(seconds=30), holder=name, clock=clock)
    client = AsyncWebClient(token="xoxb-test", base_url=emulator.api_url)
    publisher = SlackPublisher(client, service, settings, leases, store=store)
    digest = Digest(store, publisher.post_to_channel, PARIS, DIGEST_AT, clock=clock)
    return digest, Outbox(store, leases, {DIGEST: digest.send}, clock=clock)


def _alert(clock: ManualClock, title: str, *, severity: Severity) -> Alert:
    """An alert received now, by the test's clock."""
    return make_alert(title, severity=severity).model_copy(
        update={"received_at": clock(), "occurred_at": clock()}
    )


def _seed(service: IncidentService, clock: ManualClock) -> None:
    """Three incidents in the day: a CRITICAL acknowledged after 4 min and resolved after
    20 min, a HIGH with three alerts still open, a LOW resolved after an hour."""
    critical = service.record(_alert(clock, "API down", severity=Severity.CRITICAL)).incident
    assert critical is not None
    for _ in range(3):
        service.record(_alert(clock, "Queue backlog", severity=Severity.HIGH))
    low = service.record(_alert(clock, "Certificate expiring", severity=Severity.LOW)).incident
    assert low is not None
    clock.advance(minutes=4)
    service.acknowledge(critical.id, "U7")
    clock.advance(minutes=16)
    service.resolve(critical.id, "U7")
    clock.advance(minutes=40)
    service.resolve(low.id, "U7")


def _digests(emulator: SlackEmulator) -> list[str]:
    return [
        json.dumps(m.blocks, ensure_ascii=False)
        for m in emulator.messages(CHANNEL)
        if "Daily incident digest" in m.text
    ]


async def test_the_digest_posts_the_day_once_across_replicas_and_restarts(
    tmp_path: Path, emulator: SlackEmulator, clock: ManualClock
):
    store = SqliteStore(tmp_path / "digest.db")
    service = IncidentService(store, LifecyclePolicy(), clock=clock)
    _seed(service, clock)
    clock.advance(hours=2)
    one, two = (
        _replica("bot-1", store, service, emulator, clock),
        _replica("bot-2", store, service, emulator, clock),
    )

    assert await one[0].request(one[1]) is True
    assert await two[0].request(two[1]) is False, "the other replica finds today's recorded"
    restarted = _replica("bot-1-restarted", store, service, emulator, clock)
    assert await restarted[0].request(restarted[1]) is False

    [blocks] = _digests(emulator)
    # 3 opened (1 CRITICAL, 1 HIGH, 1 LOW), 2 resolved; MTTA 4m (one acknowledgement);
    # MTTR (20m + 60m) / 2 = 40m; 5 alerts over 3 incidents = 1.7 per incident; 1 still open.
    for figure in ("3 · ", "2 · ", "4m", "40m", "1.7 (5 alerts, 3 incidents)", "Queue backlog"):
        assert figure in blocks, figure
    assert "Certificate expiring" not in blocks.split("Still open")[-1], "resolved: not open"

    clock.advance(days=1)
    assert await two[0].request(two[1]) is True, "the next day is a new digest"
    assert len(_digests(emulator)) == 2
    store.close()


async def test_a_digest_slack_refused_is_retried_and_reports_the_same_day(
    tmp_path: Path, emulator: SlackEmulator, clock: ManualClock
):
    store = SqliteStore(tmp_path / "digest.db")
    service = IncidentService(store, LifecyclePolicy(), clock=clock)
    _seed(service, clock)
    clock.advance(hours=2)
    digest, outbox = _replica("bot-1", store, service, emulator, clock)
    emulator.set_down()

    assert await digest.request(outbox) is True
    [pending] = store.deliveries(DIGEST)
    assert pending.status is DeliveryStatus.PENDING and pending.last_error

    emulator.set_down(False)
    clock.advance(hours=1)
    service.record(_alert(clock, "Late arrival", severity=Severity.CRITICAL))
    assert await outbox.run_due() == 1
    [blocks] = _digests(emulator)
    period = blocks.split("Still open (")[0]
    assert "Late arrival" not in period, "the period is the day that was due, not the retry's"
    assert "*Resolved*\\n2 · " in period
    assert store.delivery(pending.key).status is DeliveryStatus.SENT  # type: ignore[union-attr]
    store.close()


@pytest.mark.parametrize(
    ("now_utc", "since_utc", "until_utc"),
    [
        # On time, the day clocks went back (CEST to CET): 25 hours, no gap, no overlap.
        ("2026-10-25T11:00:00+00:00", "2026-10-24T10:00:00+00:00", "2026-10-25T11:00:00+00:00"),
        # Two hours late, the same day is reported.
        ("2026-10-25T13:00:00+00:00", "2026-10-24T10:00:00+00:00", "2026-10-25T11:00:00+00:00"),
        # Before noon, the digest last due is yesterday's.
        ("2026-10-26T09:00:00+00:00", "2026-10-24T10:00:00+00:00", "2026-10-25T11:00:00+00:00"),
        # The day clocks went forward: 23 hours.
        ("2026-03-29T10:30:00+00:00", "2026-03-28T11:00:00+00:00", "2026-03-29T10:00:00+00:00"),
    ],
)
def test_the_digest_period_runs_from_digest_at_to_digest_at_in_local_time(
    tmp_path: Path, now_utc: str, since_utc: str, until_utc: str
):
    store = SqliteStore(tmp_path / "digest.db")
    clock = ManualClock(datetime.fromisoformat(now_utc))
    digest = Digest(store, _unused_poster, PARIS, DIGEST_AT, clock=clock)
    outbox = Outbox(store, Leases(store, timedelta(seconds=30), clock=clock), {}, clock=clock)

    delivery = digest.delivery(outbox)

    since = datetime.fromisoformat(str(delivery.request["since"]))
    until = datetime.fromisoformat(str(delivery.request["until"]))
    assert (since, until) == (datetime.fromisoformat(since_utc), datetime.fromisoformat(until_utc))
    assert delivery.key.endswith(until.astimezone(PARIS).date().isoformat())
    store.close()


async def _unused_poster(message: Message) -> str:
    raise AssertionError("nothing is posted by computing a period")
