"""On-call over time, end to end: `incident-bot run` as a real process against the Slack
emulator, the PagerDuty fake and moto, with its scheduler running on its own loop. The
escalation delay is seconds here; the arithmetic of rounds is tested with a manual clock in
test_escalation.py, so nothing here waits for more than a few seconds."""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from blocks.ids import ActionId
from tests.alarms import classic_alarm_payload, put_cpu
from tests.conftest import BRIEF_ALERT
from tests.fakes.bot_process import BotProcess, slack_env
from tests.fakes.moto_server import aws, boto3_env, moto_server  # noqa: F401
from tests.fakes.pagerduty_server import ROUTING_KEY, PagerDutyFake
from tests.fakes.slack_emulator import Message, SlackEmulator

pytestmark = pytest.mark.integration

CHANNEL = "C1"
USER = "U7"
ONCALL = "S0ONCALL"


@pytest.fixture
async def emulator() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(channels=(CHANNEL,)) as started:
        yield started


def _root(emulator: SlackEmulator) -> Message | None:
    roots = [m for m in emulator.messages(CHANNEL) if m.by_bot and m.thread_ts is None]
    return roots[0] if roots else None


def _replies(emulator: SlackEmulator, root: Message) -> list[Message]:
    return [m for m in emulator.thread(CHANNEL, root.ts) if m.ts != root.ts]


def _reminders(emulator: SlackEmulator, root: Message) -> list[Message]:
    return [m for m in _replies(emulator, root) if "unacknowledged" in m.text]


async def test_no_ack_reminds_once_and_pages_then_ack_stops_the_reminders(
    tmp_path: Path, emulator: SlackEmulator
):
    runbooks = tmp_path / "runbooks.yaml"
    runbooks.write_text(
        "runbooks:\n"
        "  - name: Database connections\n"
        "    match: {source: test}\n"
        "    url: https://wiki.example.com/runbooks/db-connections\n"
    )
    async with PagerDutyFake() as pagerduty:
        env = slack_env(
            tmp_path,
            emulator.api_url,
            SLACK_CHANNEL=CHANNEL,
            RUNBOOKS_FILE=str(runbooks),
            ESCALATE_AFTER_HIGH="3s",
            ESCALATION_REPEATS="2",
            ESCALATION_INTERVAL="1s",
            ONCALL_MENTION=ONCALL,
            PAGERDUTY_ROUTING_KEY=ROUTING_KEY,
            PAGERDUTY_EVENTS_URL=pagerduty.events_url,
        )
        bot = BotProcess(env, tmp_path / "bot.db")
        await bot.start()
        try:
            answer = await bot.alert(BRIEF_ALERT)
            incident_id = answer["incidents"][0]
            root = await emulator.wait_for(lambda: _root(emulator), timeout=15)
            [reminder] = await emulator.wait_for(lambda: _reminders(emulator, root), timeout=15)
            await emulator.block_action(ActionId.ACKNOWLEDGE, message_ts=root.ts, user_id=USER)
            await emulator.wait_for(lambda: len(pagerduty.events) == 2, timeout=15)
            # Past the second round's due time (6 s after the opening): it must not come.
            await asyncio.sleep(4)
        finally:
            assert await bot.stop() == 0
    assert f"<!subteam^{ONCALL}>" in reminder.text and incident_id in reminder.text
    assert len(_reminders(emulator, root)) == 1
    actions = [(e["event_action"], e["dedup_key"]) for e in pagerduty.events]
    assert actions == [("trigger", incident_id), ("acknowledge", incident_id)]
    assert [m for m in _replies(emulator, root) if "Paged on-call through PagerDuty" in m.text]
    shown = json.dumps(emulator.message(root.ts).blocks)
    assert "<https://wiki.example.com/runbooks/db-connections|Database connections>" in shown


async def test_a_resolved_incident_gets_its_post_mortem_as_a_markdown_file_in_its_thread(
    tmp_path: Path, emulator: SlackEmulator
):
    bot = BotProcess(slack_env(tmp_path, emulator.api_url, SLACK_CHANNEL=CHANNEL),
                     tmp_path / "bot.db")  # fmt: skip
    await bot.start()
    try:
        answer = await bot.alert(BRIEF_ALERT)
        incident_id = answer["incidents"][0]
        root = await emulator.wait_for(lambda: _root(emulator), timeout=15)
        await emulator.block_action(ActionId.ACKNOWLEDGE, message_ts=root.ts, user_id=USER)
        await emulator.block_action(ActionId.RESOLVE, message_ts=root.ts, user_id=USER)

        def postmortem_button() -> bool:
            message = emulator.message(root.ts)
            return ActionId.POSTMORTEM.value in json.dumps(message.blocks)

        await emulator.wait_for(postmortem_button, timeout=15)
        await emulator.block_action(ActionId.POSTMORTEM, message_ts=root.ts, user_id=USER)
        [upload] = await emulator.wait_for(lambda: emulator.files, timeout=30)
        await emulator.slash_command("/incident", f"postmortem {incident_id}", user_id=USER)
        await emulator.wait_for(lambda: len(emulator.files) == 2, timeout=30)
    finally:
        assert await bot.stop() == 0
    assert (upload.channel, upload.thread_ts) == (CHANNEL, root.ts)
    assert upload.filename.endswith(".md") and incident_id in upload.filename
    document = (upload.content or b"").decode()
    assert document.startswith("# ") and incident_id in document
    for heading in ("Summary", "Impact", "Timeline", "Root cause", "Action items"):
        assert f"## {heading}" in document
    assert "timeline alone" in document, "the offline draft says what it was built from"
    assert upload.initial_comment and incident_id in upload.initial_comment
    assert [e for e in emulator.ephemerals if "post-mortem draft" in str(e).lower()]


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "a real PNG"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


async def test_a_cloudwatch_alarm_gets_its_metric_graph_in_the_thread(
    tmp_path: Path,
    emulator: SlackEmulator,
    aws: str,  # noqa: F811
):
    put_cpu()
    env = slack_env(tmp_path, emulator.api_url, SLACK_CHANNEL=CHANNEL,
                    **boto3_env(aws, tmp_path / "no-aws-config"))  # fmt: skip
    bot = BotProcess(env, tmp_path / "bot.db")
    await bot.start()
    try:
        await bot.alert(classic_alarm_payload())
        root = await emulator.wait_for(lambda: _root(emulator), timeout=15)
        [upload] = await emulator.wait_for(lambda: emulator.files, timeout=30)
    finally:
        assert await bot.stop() == 0
    assert (upload.channel, upload.thread_ts) == (CHANNEL, root.ts)
    assert upload.filename.endswith("-metric.png")
    assert _png_size(upload.content or b"") == (1000, 400)
    assert upload.initial_comment and "web-cpu-high" in upload.initial_comment


async def test_without_aws_the_graph_is_skipped_with_a_note_and_the_analysis_still_comes(
    tmp_path: Path, emulator: SlackEmulator
):
    bot = BotProcess(slack_env(tmp_path, emulator.api_url, SLACK_CHANNEL=CHANNEL),
                     tmp_path / "bot.db")  # fmt: skip
    await bot.start()
    try:
        await bot.alert(classic_alarm_payload())
        root = await emulator.wait_for(lambda: _root(emulator), timeout=15)

        def note() -> list[Message]:
            return [m for m in _replies(emulator, root) if "No metric graph" in m.text]

        try:
            [skipped] = await emulator.wait_for(note, timeout=15)
        except TimeoutError:
            raise AssertionError("\n".join(bot.lines)) from None
        await emulator.wait_for(
            lambda: "Root cause" in json.dumps(emulator.message(root.ts).blocks), timeout=15
        )
    finally:
        assert await bot.stop() == 0
    assert "AWS is not configured" in skipped.text, bot.lines
    assert emulator.files == []
