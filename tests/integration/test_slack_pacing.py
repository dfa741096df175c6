"""Slack pacing against the rate-limiting emulator.

End to end, `incident-bot run` as a real process takes a 60-problem storm while the emulator
enforces Slack's published limits, scaled (with the bot's rates) SCALE times faster so that
the storm takes seconds: every incident gets its one root post, every message catches up to
its incident's count in the store, and Slack never has to answer 429. In process, publishing
returns at once however far behind Slack's pace the messages are, so the receiver and the
SQS consumer never wait for it.
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import timedelta
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings
from bot.slack_pacing import Pacer, slack_rates
from bot.slack_publisher import SlackPublisher
from incidents.leases import Leases
from incidents.lifecycle import IncidentService
from incidents.sqlite import SqliteStore
from tests.conftest import LoopClock, make_alert
from tests.fakes.bot_process import BotProcess, slack_env
from tests.fakes.slack_emulator import Message, SlackEmulator, scaled_limits

pytestmark = pytest.mark.integration

SCALE = 10
SERVICES = ["orders", "payments", "search", "checkout", "inventory", "billing"]
FAILURES = [
    "disk full",
    "queue backlog",
    "certificate expiring",
    "dns failure",
    "throttling",
    "connection refused",
    "memory pressure",
    "replica lag",
    "deadlock",
    "cold start",
]
PROBLEMS = [(service, failure) for service in SERVICES for failure in FAILURES]
REPEATS = 20
RESOLVED = range(5)  # problems that end while the counters catch up


def _alert(problem: int, n: int) -> dict[str, str]:
    """One alert of a problem: half of them CRITICAL, posted to their own channel."""
    service, failure = PROBLEMS[problem]
    return {
        "source": service,
        "title": f"{service} {failure}",
        "message": f"{failure} on {service} (request {n})",
        "severity": "CRITICAL" if problem % 2 else "HIGH",
    }


def _occurrences(bot: BotProcess, incident_ids: set[str]) -> dict[str, int]:
    """Each incident's count of alerts, as the store has it."""
    store = bot.store()
    try:
        incidents = [store.get_incident(i) for i in incident_ids]
    finally:
        store.close()
    return {incident.id: incident.occurrences for incident in incidents if incident is not None}


def _root_of(emulator: SlackEmulator, incident_id: str) -> Message | None:
    for channel in ("C1", "C2"):
        for message in emulator.messages(channel):
            payload = (message.metadata or {}).get("event_payload") or {}
            if message.thread_ts is None and payload.get("incident_id") == incident_id:
                return message
    return None


def _replies(emulator: SlackEmulator, root: Message) -> list[Message]:
    return emulator.thread(root.channel, root.ts)[1:]


def _shows(message: Message | None, occurrences: int) -> bool:
    blocks = json.dumps(message.blocks) if message else ""
    return f"*Occurrences*\\n{occurrences}" in blocks and "Root cause" in blocks


async def test_a_60_problem_storm_posts_every_incident_and_counters_catch_up_without_a_429(
    tmp_path: Path,
):
    async with SlackEmulator(channels=("C1", "C2"), rate_limits=scaled_limits(SCALE)) as emulator:
        env = slack_env(
            tmp_path,
            emulator.api_url,
            SLACK_CHANNEL="C1",
            SLACK_CHANNEL_CRITICAL="C2",
            SLACK_POST_RATE=f"{SCALE}/s",
            SLACK_UPDATE_RATE=f"{50 * SCALE}/m",
        )
        bot = BotProcess(env, tmp_path / "bot.db")
        await bot.start()
        try:
            # A round of 60 new problems, then round after round of their repeats, as fast
            # as the receiver takes them: the counters move while the posts wait their turn.
            # Then a few problems resolve, while the counters are still catching up.
            incidents: dict[int, str] = {}
            for n in range(1 + REPEATS):
                problems = random.Random(n).sample(range(len(PROBLEMS)), len(PROBLEMS))
                answers = await asyncio.gather(*(bot.alert(_alert(p, n)) for p in problems))
                for problem, answer in zip(problems, answers, strict=True):
                    incidents.setdefault(problem, answer["incidents"][0])
            await asyncio.gather(
                *(bot.alert({**_alert(p, 0), "status": "resolved"}) for p in RESOLVED)
            )
            counts = _occurrences(bot, set(incidents.values()))

            def caught_up() -> bool:
                return all(_shows(_root_of(emulator, i), n) for i, n in counts.items())

            await emulator.wait_for(caught_up, timeout=60)
            resolved = [_root_of(emulator, incidents[p]) for p in RESOLVED]

            def told_in_threads() -> bool:
                return all(
                    root is not None
                    and "resolved" in root.text.lower()
                    and any("resolved" in r.text.lower() for r in _replies(emulator, root))
                    for root in resolved
                )

            await emulator.wait_for(told_in_threads)
        finally:
            assert await bot.stop() == 0

    assert len(counts) == len(PROBLEMS)
    roots = [
        call.params["metadata"]["event_payload"]["incident_id"]
        for call in emulator.calls_to("chat.postMessage")
        if call.ok and not call.params.get("thread_ts")
    ]
    assert sorted(roots) == sorted(counts), "one root post per incident"
    assert not emulator.rate_limited, f"Slack answered 429: {emulator.rate_limited}"


async def test_publishing_returns_at_once_however_far_behind_slacks_pace(
    tmp_path: Path, store: SqliteStore, service: IncidentService
):
    """The pacer's clock is moved by hand: had `publish` waited for a turn, it would never
    return until the clock moved."""
    clock = LoopClock()
    pacer = Pacer(slack_rates(1.0, 50 / 60), clock)
    async with SlackEmulator(channels=("C1",), rate_limits={}) as emulator:
        settings = Settings(slack_bot_token="xoxb-test", slack_app_token="xapp-test",
                            slack_api_url=emulator.api_url, slack_channel="C1")  # fmt: skip
        client = AsyncWebClient(token="xoxb-test", base_url=emulator.api_url)
        leases = Leases(store, timedelta(seconds=30))
        publisher = SlackPublisher(client, service, settings, leases, pacer=pacer, store=store)
        outcomes = [service.record(make_alert(f"{failure} on orders")) for failure in FAILURES]

        async def publish_all() -> None:
            for outcome in outcomes:
                await publisher.publish(outcome)

        await asyncio.wait_for(publish_all(), timeout=10)  # a guard against a hang only

        def burst_posted() -> bool:
            """The burst went out; the rest wait for their turns."""
            return len(emulator.messages("C1")) == 3 and pacer.waiting > 0

        await emulator.wait_for(burst_posted)

        for posted in range(4, len(FAILURES) + 1):  # one more post per second

            def one_more(n: int = posted) -> bool:
                return len(emulator.messages("C1")) == n

            clock.advance(1.0)
            await emulator.wait_for(one_more)
        await publisher.close()
