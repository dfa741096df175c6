"""The publisher's store reads under a storm, against the Slack emulator: a storm's repeats
cost the store what their coalesced updates cost, not a read each (on DynamoDB every read is a
request, and bench/sqs_replicas.py counts them per alert)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings
from bot.slack_publisher import SlackPublisher
from incidents.leases import Leases
from incidents.lifecycle import IncidentService, OutcomeKind
from incidents.models import Silence
from incidents.sqlite import SqliteStore
from tests.conftest import make_alert
from tests.fakes.slack_emulator import SlackEmulator

pytestmark = pytest.mark.integration

CHANNEL = "C1"
REPEATS = 50


class CountingStore(SqliteStore):
    """SQLite, counting the silence lookups."""

    silence_reads = 0

    def silence(self, fingerprint: str) -> Silence | None:
        self.silence_reads += 1
        return super().silence(fingerprint)


@pytest.fixture
async def emulator() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(channels=(CHANNEL,)) as started:
        yield started


def _publisher(store: CountingStore, emulator: SlackEmulator) -> SlackPublisher:
    settings = Settings(slack_bot_token="xoxb-test", slack_app_token="xapp-test",
                        slack_api_url=emulator.api_url, slack_channel=CHANNEL,
                        update_interval=timedelta(milliseconds=300))  # fmt: skip
    client = AsyncWebClient(token="xoxb-test", base_url=emulator.api_url)
    leases = Leases(store, timedelta(seconds=30), holder="test")
    return SlackPublisher(client, IncidentService(store), settings, leases, store=store)


async def test_a_storm_of_repeats_reads_the_silence_per_update_not_per_alert(
    tmp_path: Path, emulator: SlackEmulator
):
    store = CountingStore(tmp_path / "bot.db")
    publisher = _publisher(store, emulator)
    opened = publisher.service.record(make_alert())
    await publisher.publish(opened)
    for _ in range(REPEATS):
        repeat = publisher.service.record(make_alert())
        assert repeat.kind is OutcomeKind.REPEATED
        await publisher.publish(repeat)
    shown = f"*Occurrences*\\n{REPEATS + 1}"
    await emulator.wait_for(  # the root post, or its update, shows every repeat
        lambda: any(shown in json.dumps(c.params.get("blocks")) for c in emulator.calls)
    )
    await publisher.close()

    assert len(emulator.calls_to("chat.postMessage")) == 1
    # The post and the update read it twice each at most (before the lease, as they render).
    assert store.silence_reads <= 4, f"{store.silence_reads} silence reads for a post, an update"
    store.close()


async def test_a_silenced_incident_is_left_as_it_is_by_its_repeats(
    tmp_path: Path, emulator: SlackEmulator
):
    store = CountingStore(tmp_path / "bot.db")
    publisher = _publisher(store, emulator)
    opened = publisher.service.record(make_alert())
    await publisher.publish(opened)
    assert opened.incident is not None
    await emulator.wait_for(lambda: emulator.calls_to("chat.postMessage"))
    publisher.service.silence(opened.incident.id, timedelta(hours=1), "U7")
    before = store.silence_reads
    for _ in range(REPEATS):
        await publisher.publish(publisher.service.record(make_alert()))
    await asyncio.sleep(0.6)  # two update intervals: time for an update that must not come
    await publisher.close()

    assert len(emulator.calls_to("chat.postMessage")) == 1
    assert emulator.calls_to("chat.update") == []
    assert store.silence_reads - before <= 1, "at most one read for the update it skipped"
    store.close()
