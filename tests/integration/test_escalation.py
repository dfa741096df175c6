"""Escalation over real sockets, with time moved by hand: the Slack emulator receives the
message and the reminders, the PagerDuty fake the page; the store, lifecycle, publisher,
outbox and escalator are the bot's own. No test waits for a reminder to come due."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.escalation import Escalator, Reminders
from bot.settings import Settings
from bot.slack_publisher import SlackPublisher
from incidents.dynamodb import DynamoStore
from incidents.escalation import EscalationPolicy
from incidents.leases import Leases
from incidents.lifecycle import IncidentService, LifecyclePolicy
from incidents.models import DeliveryStatus, Incident, Severity
from incidents.sqlite import SqliteStore
from incidents.store import Store
from notify.dispatch import SLACK, Channels, Notifier
from notify.pagerduty import PagerDutyEvents
from tests.conftest import ManualClock, make_alert
from tests.fakes.moto_server import serialized_aws  # noqa: F401
from tests.fakes.pagerduty_server import ROUTING_KEY, PagerDutyFake
from tests.fakes.slack_emulator import Message, SlackEmulator

pytestmark = pytest.mark.integration

CHANNEL = "C1"
ONCALL = "S0ONCALL"
POLICY = EscalationPolicy(
    {
        Severity.CRITICAL: timedelta(minutes=5),
        Severity.HIGH: timedelta(minutes=15),
        Severity.MEDIUM: None,
        Severity.LOW: None,
    },
    repeats=3,
)


@dataclass
class Replica:
    """One bot process as far as escalation goes: its own leases, publisher and outbox."""

    publisher: SlackPublisher
    notifier: Notifier
    escalator: Escalator


@dataclass
class Rig:
    emulator: SlackEmulator
    pagerduty: PagerDutyFake
    store: Store
    service: IncidentService
    clock: ManualClock
    replicas: list[Replica]

    def replica(self, name: str) -> Replica:
        """A replica (a restart is one too: nothing carries over but the store)."""
        store = self.store
        settings = Settings(
            slack_bot_token="xoxb-test",
            slack_app_token="xapp-test",
            slack_api_url=self.emulator.api_url,
            slack_channel=CHANNEL,
        )
        leases = Leases(store, timedelta(seconds=30), holder=name, clock=self.clock)
        client = AsyncWebClient(token="xoxb-test", base_url=self.emulator.api_url)
        publisher = SlackPublisher(client, self.service, settings, leases, store=store)
        reminders = Reminders(store, POLICY, publisher.post_in_thread, mention=ONCALL,
                              clock=self.clock)  # fmt: skip
        events = PagerDutyEvents(ROUTING_KEY, self.pagerduty.events_url, backoff=0, timeout=5)
        notifier = Notifier(
            store, leases, Channels(pagerduty=events, closers=[events.close]),
            senders={SLACK: reminders.send}, clock=self.clock,
        )  # fmt: skip
        escalator = Escalator(store, POLICY, notifier, silenced_until=self.service.silenced_until,
                              clock=self.clock)  # fmt: skip
        replica = Replica(publisher, notifier, escalator)
        self.replicas.append(replica)
        return replica

    def reminders(self, incident: Incident) -> list[Message]:
        ref = self.store.message_ref(incident.id)
        assert ref is not None
        return [m for m in self.emulator.thread(CHANNEL, ref.ts) if "unacknowledged" in m.text]


@pytest.fixture(params=["sqlite"])
async def rig(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
) -> AsyncIterator[Rig]:
    """On SQLite; `@pytest.mark.parametrize("rig", ["dynamodb"], indirect=True)` puts it on
    DynamoDB behind a moto that serves one request at a time, as DynamoDB applies them."""
    store: Store
    if request.param == "dynamodb":
        request.getfixturevalue("serialized_aws")
        dynamo = DynamoStore(table_prefix=f"escalation-{uuid.uuid4().hex[:8]}")
        dynamo.create_tables()
        store = dynamo
    else:
        store = SqliteStore(tmp_path / "escalation.db")
    service = IncidentService(store, LifecyclePolicy(), clock=clock)
    async with SlackEmulator(channels=(CHANNEL,)) as emulator, PagerDutyFake() as pagerduty:
        rig = Rig(emulator, pagerduty, store, service, clock, [])
        yield rig
        for replica in rig.replicas:
            await replica.notifier.close()
    store.close()


async def _posted(
    rig: Rig, replica: Replica, severity: Severity, title: str = "Disk full"
) -> Incident:
    incident = rig.service.record(make_alert(title, severity=severity)).incident
    assert incident is not None
    await replica.publisher.sync(incident.id)
    return incident


async def test_no_ack_means_one_reminder_per_interval_then_a_page_and_ack_stops_them(rig: Rig):
    bot = rig.replica("bot-1")
    incident = await _posted(rig, bot, Severity.HIGH)

    rig.clock.advance(minutes=14, seconds=59)
    assert await bot.escalator.run_once() == 0
    assert rig.reminders(incident) == [] and rig.pagerduty.events == []

    rig.clock.advance(seconds=1)
    assert await bot.escalator.run_once() == 1
    [reminder] = rig.reminders(incident)
    assert f"<!subteam^{ONCALL}>" in reminder.text and "15m" in reminder.text
    assert "reminder 1 of 3" in reminder.text
    [page] = rig.pagerduty.events
    assert (page["event_action"], page["dedup_key"]) == ("trigger", incident.id)

    rig.clock.advance(minutes=5)
    assert await bot.escalator.run_once() == 0, "at most one reminder per interval"
    assert len(rig.reminders(incident)) == 1

    rig.clock.advance(minutes=10)
    assert await bot.escalator.run_once() == 1
    assert "reminder 2 of 3" in rig.reminders(incident)[-1].text
    assert len(rig.pagerduty.events) == 1, "PagerDuty's own escalation repeats the page"

    acknowledged = rig.service.acknowledge(incident.id, "U7")
    await bot.notifier.acknowledged(acknowledged, "U7")
    rig.clock.advance(hours=2)
    assert await bot.escalator.run_once() == 0
    assert len(rig.reminders(incident)) == 2
    assert [e["event_action"] for e in rig.pagerduty.events] == ["trigger", "acknowledge"]


async def test_reminders_are_bounded_and_a_long_outage_sends_the_current_round_only(rig: Rig):
    bot = rig.replica("bot-1")
    incident = await _posted(rig, bot, Severity.CRITICAL)

    rig.clock.advance(minutes=12)  # the process was down through rounds 1 and 2
    assert await bot.escalator.run_once() == 1
    assert ["reminder 2 of 3" in m.text for m in rig.reminders(incident)] == [True]
    rig.clock.advance(hours=5)
    assert await bot.escalator.run_once() == 1
    rig.clock.advance(hours=5)
    assert await bot.escalator.run_once() == 0
    texts = [m.text for m in rig.reminders(incident)]
    assert len(texts) == 2 and "This is the last reminder" in texts[-1]


@pytest.mark.parametrize("rig", ["sqlite", "dynamodb"], indirect=True)
async def test_a_restart_recomputes_from_the_store_and_repeats_nothing(rig: Rig):
    first = rig.replica("bot-1")
    incident = await _posted(rig, first, Severity.HIGH)
    rig.clock.advance(minutes=15)
    assert await first.escalator.run_once() == 1

    restarted = rig.replica("bot-1-restarted")
    assert await restarted.escalator.run_once() == 0
    rig.clock.advance(minutes=15)
    assert await restarted.escalator.run_once() == 1, "the next round is not lost either"
    assert len(rig.reminders(incident)) == 2
    assert len(rig.pagerduty.events) == 1


@pytest.mark.parametrize("rig", ["sqlite", "dynamodb"], indirect=True)
async def test_two_replicas_passing_at_once_remind_once(rig: Rig):
    one, two = rig.replica("bot-1"), rig.replica("bot-2")
    incident = await _posted(rig, one, Severity.HIGH)
    rig.clock.advance(minutes=15)

    counts = await asyncio.gather(one.escalator.run_once(), two.escalator.run_once())

    assert sorted(counts) == [0, 1]
    assert len(rig.reminders(incident)) == 1
    assert len(rig.pagerduty.events) == 1


async def test_a_reminder_slack_refused_is_retried_by_the_outbox(rig: Rig):
    bot = rig.replica("bot-1")
    incident = await _posted(rig, bot, Severity.HIGH)
    rig.clock.advance(minutes=15)
    rig.emulator.set_down()

    assert await bot.escalator.run_once() == 1
    [delivery] = [d for d in rig.store.deliveries(incident.id) if d.target == SLACK]
    assert delivery.status is DeliveryStatus.PENDING and delivery.last_error

    rig.emulator.set_down(False)
    rig.clock.advance(minutes=1)
    assert await bot.notifier.outbox.run_due() >= 1
    assert len(rig.reminders(incident)) == 1
    assert rig.store.delivery(delivery.key).status is DeliveryStatus.SENT  # type: ignore[union-attr]


async def test_silenced_resolved_and_non_escalating_incidents_get_no_reminder(rig: Rig):
    bot = rig.replica("bot-1")
    silenced = await _posted(rig, bot, Severity.CRITICAL, "Queue backlog")
    rig.service.silence(silenced.id, timedelta(hours=4), "U7")
    resolved = await _posted(rig, bot, Severity.CRITICAL, "Lambda errors")
    rig.service.resolve(resolved.id, "U7")
    low = await _posted(rig, bot, Severity.LOW, "Certificate expires in 20 days")

    rig.clock.advance(hours=1)
    assert await bot.escalator.run_once() == 0
    for incident in (silenced, low):
        assert rig.reminders(incident) == []
    assert rig.pagerduty.events == []


async def test_a_reopened_incident_waits_afresh_and_is_reminded_again(rig: Rig):
    bot = rig.replica("bot-1")
    incident = await _posted(rig, bot, Severity.HIGH)
    rig.clock.advance(minutes=15)
    assert await bot.escalator.run_once() == 1
    rig.service.resolve(incident.id, "U7")
    rig.clock.advance(minutes=1)
    reopened = rig.service.record(make_alert("Disk full", severity=Severity.HIGH)).incident
    assert reopened is not None and reopened.id == incident.id and reopened.reopen_count == 1

    rig.clock.advance(minutes=14)
    assert await bot.escalator.run_once() == 0, "the wait starts at the reopening"
    rig.clock.advance(minutes=1)
    assert await bot.escalator.run_once() == 1
    assert len(rig.reminders(incident)) == 2
    assert [e["event_action"] for e in rig.pagerduty.events] == ["trigger", "trigger"]


async def test_rounds_missed_in_an_outage_are_not_posted_in_a_burst(rig: Rig):
    bot = rig.replica("bot-1")
    incident = await _posted(rig, bot, Severity.HIGH)
    rig.emulator.set_down()
    rig.clock.advance(minutes=15)
    assert await bot.escalator.run_once() == 1
    rig.clock.advance(minutes=15)
    assert await bot.escalator.run_once() == 1

    rig.emulator.set_down(False)
    rig.clock.advance(minutes=1)
    await bot.notifier.outbox.run_due()

    [reminder] = rig.reminders(incident)
    assert "reminder 2 of 3" in reminder.text
    results = sorted(
        (d.action, d.status, d.result or "")
        for d in rig.store.deliveries(incident.id)
        if d.target == SLACK
    )
    assert results[0][1] is results[1][1] is DeliveryStatus.SENT
    assert any("superseded" in result for _, _, result in results)
