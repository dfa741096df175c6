"""Show the work and learn from outcomes, end to end: `incident-bot run` as a real process on
the Slack emulator, Claude on the local Messages API. An investigated analysis says in its
thread how it investigated; Resolve offers the modal for the cause and the fix; a `fix:`
reply records the fix; and the next similar incident's message shows what was confirmed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from analysis import prompting
from blocks.ids import ActionId, BlockId, CallbackId, ModalMetadata
from bot.settings import Settings
from bot.slack_confirm import Confirmations
from bot.slack_publisher import SlackPublisher
from incidents.leases import Leases
from incidents.lifecycle import IncidentService
from incidents.models import Incident
from incidents.offload import Offload
from incidents.sqlite import SqliteStore
from tests.conftest import BRIEF_ALERT, make_alert
from tests.fakes.anthropic_server import FakeAnthropic, ToolUse
from tests.fakes.bot_process import BotProcess
from tests.fakes.slack_emulator import SlackEmulator
from tests.integration.test_engine import GOOD_ANALYSIS
from tests.integration.test_slack_bot import (
    CHANNEL,
    USER,
    _env,
    _replies,
    _root_with_analysis,
    _roots,
    emulator,  # noqa: F401
)

pytestmark = pytest.mark.integration

CAUSE = "pool sized for 10 after the config change"


@pytest.fixture
async def claude() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(default_tool_input=GOOD_ANALYSIS) as fake:
        yield fake


@pytest.fixture
async def bot(
    tmp_path: Path,
    emulator: SlackEmulator,  # noqa: F811
    claude: FakeAnthropic,
) -> AsyncIterator[BotProcess]:
    env = {
        **_env(tmp_path, emulator),
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "ANTHROPIC_BASE_URL": claude.url,
    }
    process = BotProcess(env, tmp_path / "bot.db")
    await process.start()
    yield process
    assert await process.stop() == 0


def _text(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def _incident(bot: BotProcess, incident_id: str) -> Incident:
    store = bot.store()
    incident = store.get_incident(incident_id)
    store.close()
    assert incident is not None
    return incident


async def test_an_investigated_analysis_says_how_in_its_thread(
    bot: BotProcess,
    emulator: SlackEmulator,  # noqa: F811
    claude: FakeAnthropic,
):
    concluded = {**GOOD_ANALYSIS, "evidence": [{"claim": "it happened before", "calls": [1]}]}
    claude.enqueue(
        ToolUse({"limit": 3}, name="past_incidents"),
        ToolUse(concluded, name=prompting.TOOL_NAME),
    )
    await bot.alert(BRIEF_ALERT)  # HIGH: investigated
    root = await _root_with_analysis(emulator)

    [note] = await emulator.wait_for(
        lambda: [m for m in _replies(emulator, root) if "How I investigated" in m.text]
    )
    text = _text(note.blocks)
    assert "1 tool call in 2 steps" in text
    assert "`#1` *past_incidents* `limit=3`" in text
    assert "it happened before — #1" in text
    assert len(claude.requests) == 2


async def test_resolve_offers_the_modal_and_the_next_similar_incident_shows_it(
    bot: BotProcess,
    emulator: SlackEmulator,  # noqa: F811
):
    answer = await bot.alert({**BRIEF_ALERT, "severity": "MEDIUM"})
    incident_id = answer["incidents"][0]
    root = await _root_with_analysis(emulator)

    await emulator.block_action(ActionId.RESOLVE, message_ts=root.ts, user_id=USER)
    [view] = await emulator.wait_for(lambda: emulator.views)
    assert view["callback_id"] == CallbackId.CONFIRM
    metadata = ModalMetadata(incident_id=incident_id).dump()
    blank = await emulator.view_submission(
        CallbackId.CONFIRM, values={}, private_metadata=metadata, user_id=USER
    )
    assert blank.ack is not None and blank.ack.payload is not None
    assert blank.ack.payload["response_action"] == "errors"

    cause = {"type": "plain_text_input", "value": CAUSE}
    await emulator.view_submission(
        CallbackId.CONFIRM,
        values={BlockId.CONFIRM_CAUSE: {ActionId.CONFIRM_CAUSE: cause}},
        private_metadata=metadata,
        user_id=USER,
    )
    await emulator.wait_for(
        lambda: any("confirmed the cause" in m.text for m in _replies(emulator, root))
    )
    await emulator.message_event(
        CHANNEL, text="fix: raised max_connections to 200", user=USER, thread_ts=root.ts
    )
    await emulator.wait_for(lambda: any("the fix:" in m.text for m in _replies(emulator, root)))

    confirmed = _incident(bot, incident_id).confirmed
    assert confirmed is not None and confirmed.by == USER
    assert (confirmed.cause, confirmed.fix) == (CAUSE, "raised max_connections to 200")
    await emulator.wait_for(
        lambda: (
            f"Confirmed by <@{USER}>: cause “{CAUSE}”" in _text(emulator.message(root.ts).blocks)
        )
    )
    assert not any("need Claude" in m.text for m in _replies(emulator, root)), "not a question"

    await bot.alert({**BRIEF_ALERT, "severity": "MEDIUM", "title": f"{BRIEF_ALERT['title']} db-2"})

    def second_root() -> str | None:
        later = [r for r in _roots(emulator) if r.ts != root.ts]
        text = _text(later[0].blocks) if later else ""
        return text if "Root cause" in text else None

    shown = await emulator.wait_for(second_root, timeout=30)
    assert f":bulb: A similar incident ({incident_id}, " in shown
    assert CAUSE in shown and "raised max_connections to 200" in shown
    assert f"(confirmed by <@{USER}>)" in shown


async def test_a_modal_slack_will_not_open_is_logged_not_raised(
    tmp_path: Path,
    emulator: SlackEmulator,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
):
    store = SqliteStore(tmp_path / "bot.db")
    service = IncidentService(store)
    settings = Settings(slack_bot_token="xoxb-test", slack_app_token="xapp-test",
                        slack_api_url=emulator.api_url, slack_channel=CHANNEL)  # fmt: skip
    client = AsyncWebClient(token="xoxb-test", base_url=emulator.api_url)
    leases = Leases(store, timedelta(seconds=30), holder="test")
    publisher = SlackPublisher(client, service, settings, leases, store=store)
    confirmations = Confirmations(service, store, publisher, Offload())
    incident = service.record(make_alert()).incident
    assert incident is not None

    assert await confirmations.offer(incident, "expired-or-forged", client) is False
    assert "the cause-and-fix modal did not open" in caplog.text
    assert await confirmations.offer(incident, emulator.new_trigger_id(), client) is True
    assert [view["callback_id"] for view in emulator.views] == [CallbackId.CONFIRM]
    await publisher.close()
    store.close()


async def test_the_resolve_command_offers_the_modal_too(
    bot: BotProcess,
    emulator: SlackEmulator,  # noqa: F811
):
    answer = await bot.alert({**BRIEF_ALERT, "severity": "MEDIUM"})
    incident_id = answer["incidents"][0]
    await _root_with_analysis(emulator)

    await emulator.slash_command(
        "/incident", f"resolve {incident_id}", user_id=USER, channel_id=CHANNEL
    )

    [view] = await emulator.wait_for(lambda: emulator.views)
    assert view["callback_id"] == CallbackId.CONFIRM
    assert ModalMetadata.parse(view["private_metadata"]).incident_id == incident_id
    [reply] = await emulator.wait_for(lambda: emulator.responses)
    assert f"{incident_id} resolved" in json.dumps(reply.body)


async def _resolved_by_its_alert(bot: BotProcess, slack: SlackEmulator) -> tuple[str, str]:
    """An incident its alert resolved, and the ts of the resolved note in its thread (the
    note carries "Record cause and fix", since nobody clicked Resolve)."""
    answer = await bot.alert({**BRIEF_ALERT, "severity": "MEDIUM"})
    root = await _root_with_analysis(slack)
    await bot.alert({**BRIEF_ALERT, "severity": "MEDIUM", "status": "resolved"})
    [note] = await slack.wait_for(
        lambda: [m for m in _replies(slack, root) if ActionId.CONFIRM in _text(m.blocks)]
    )
    return answer["incidents"][0], note.ts


async def test_the_resolved_notes_button_opens_the_modal(
    bot: BotProcess,
    emulator: SlackEmulator,  # noqa: F811
):
    incident_id, note = await _resolved_by_its_alert(bot, emulator)

    await emulator.block_action(ActionId.CONFIRM, message_ts=note, user_id=USER)

    [view] = await emulator.wait_for(lambda: emulator.views)
    assert view["callback_id"] == CallbackId.CONFIRM
    assert ModalMetadata.parse(view["private_metadata"]).incident_id == incident_id
    assert not emulator.ephemerals


async def test_the_resolved_notes_button_says_when_slack_refuses_the_form(
    bot: BotProcess,
    emulator: SlackEmulator,  # noqa: F811
):
    _, note = await _resolved_by_its_alert(bot, emulator)
    emulator.trigger_ttl = 0  # every trigger has expired by the time views.open redeems it

    await emulator.block_action(ActionId.CONFIRM, message_ts=note, user_id=USER)

    [told] = await emulator.wait_for(lambda: emulator.ephemerals)
    assert told.user == USER and told.channel == CHANNEL
    assert told.text.startswith("Slack did not open the form")
    assert "`cause: …`" in told.text
    assert not emulator.views
