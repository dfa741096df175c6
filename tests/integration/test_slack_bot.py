"""End to end: `incident-bot run` as a real process, with the real Bolt app and Socket Mode
client, against the Slack emulator over real sockets; alerts arrive on the real receiver."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from blocks.ids import ActionId, ActionValue, BlockId, CallbackId, ModalMetadata
from blocks.limits import assert_view_within_slack_limits, assert_within_slack_limits
from incidents.models import IncidentStatus, MessageRef
from tests.conftest import BRIEF_ALERT
from tests.fakes.bot_process import BotProcess, slack_env
from tests.fakes.jira_server import JiraFake
from tests.fakes.pagerduty_server import ROUTING_KEY, PagerDutyFake
from tests.fakes.slack_emulator import Message, SlackEmulator
from tests.fakes.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration

CHANNEL = "C1"
CRITICAL_CHANNEL = "C2"
USER = "U7"


def _env(tmp_path: Path, emulator: SlackEmulator, sink: SmtpSink | None = None) -> dict[str, str]:
    """The bot on the emulator; with `sink`, email through it (STARTTLS, login, and the
    sink's certificate trusted through SSL_CERT_FILE, as a private CA would be)."""
    email = (
        {
            "EMAIL_FROM": "bot@example.com",
            "EMAIL_TO": "oncall@example.com",
            "SMTP_HOST": sink.host,
            "SMTP_PORT": str(sink.port),
            "SMTP_USER": sink.user,
            "SMTP_PASSWORD": sink.password,
            "SSL_CERT_FILE": sink.ca_file,
        }
        if sink is not None
        else {}
    )
    return slack_env(
        tmp_path,
        emulator.api_url,
        SLACK_CHANNEL=CHANNEL,
        SLACK_CHANNEL_CRITICAL=CRITICAL_CHANNEL,
        **email,
    )


@pytest.fixture
async def emulator() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(channels=(CHANNEL, CRITICAL_CHANNEL)) as started:
        yield started


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as started:
        yield started


@pytest.fixture
async def bot(tmp_path: Path, emulator: SlackEmulator, sink: SmtpSink) -> AsyncIterator[BotProcess]:
    process = BotProcess(_env(tmp_path, emulator, sink), tmp_path / "bot.db")
    await process.start()
    yield process
    assert await process.stop() == 0
    for call in emulator.calls:
        if call.method.startswith("chat.") and call.params.get("blocks"):
            assert_within_slack_limits(call.params["blocks"])
    for response in emulator.responses:
        if response.body.get("blocks"):
            assert_within_slack_limits(response.body["blocks"])
    for call in emulator.calls_to("views.open"):
        assert_view_within_slack_limits(call.params["view"])


def _roots(emulator: SlackEmulator, channel: str = CHANNEL) -> list[Message]:
    return [m for m in emulator.messages(channel) if m.by_bot and m.thread_ts is None]


def _replies(emulator: SlackEmulator, root: Message) -> list[Message]:
    return [m for m in emulator.thread(root.channel, root.ts) if m.ts != root.ts]


def _all_text(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks)


def _action_ids(message: Message) -> set[str]:
    return {
        element["action_id"]
        for block in message.blocks
        if block["type"] == "actions"
        for element in block["elements"]
    }


async def _root_with_analysis(emulator: SlackEmulator, channel: str = CHANNEL) -> Message:
    def analysed() -> Message | None:
        roots = _roots(emulator, channel)
        return roots[0] if roots and "Root cause" in _all_text(roots[0].blocks) else None

    return await emulator.wait_for(analysed, timeout=30)


async def test_an_alert_becomes_one_message_with_its_analysis_and_every_button(
    bot: BotProcess, emulator: SlackEmulator
):
    answer = await bot.alert(BRIEF_ALERT)
    root = await _root_with_analysis(emulator)

    assert len(_roots(emulator)) == 1
    text = _all_text(root.blocks)
    assert "Test Error: Database Connection Failed" in text
    assert "app_user" in text and "offline" in text.lower()
    assert _action_ids(root) >= {
        ActionId.ACKNOWLEDGE,
        ActionId.RESOLVE,
        ActionId.REANALYZE,
        ActionId.SILENCE_1H,
        ActionId.SILENCE_24H,
        ActionId.EMAIL,
    }
    assert ActionId.CREATE_JIRA not in _action_ids(root), "Jira is not configured"
    assert root.text and answer["incidents"][0] in root.text

    def stored_ref() -> MessageRef | None:
        store = bot.store()
        ref = store.message_ref(answer["incidents"][0])
        store.close()
        return ref

    ref = await emulator.wait_for(stored_ref)
    assert (ref.channel, ref.ts) == (CHANNEL, root.ts)


async def test_critical_incidents_go_to_their_own_channel(bot: BotProcess, emulator: SlackEmulator):
    await bot.alert({**BRIEF_ALERT, "title": "Checkout down", "severity": "CRITICAL"})

    await _root_with_analysis(emulator, CRITICAL_CHANNEL)
    assert _roots(emulator, CHANNEL) == []


async def test_a_storm_of_repeats_is_one_post_and_a_few_updates(
    bot: BotProcess, emulator: SlackEmulator
):
    first = await bot.alert(BRIEF_ALERT)
    await asyncio.gather(*(bot.alert(BRIEF_ALERT) for _ in range(50)))
    incident_id = first["incidents"][0]

    def settled() -> bool:
        store = bot.store()
        incident, ref = store.get_incident(incident_id), store.message_ref(incident_id)
        store.close()
        return bool(incident and ref and ref.synced_version == incident.version)

    await emulator.wait_for(settled, timeout=30)
    [root] = _roots(emulator)
    assert "51" in _all_text(root.blocks)
    assert root.updates <= 6, f"{root.updates} updates for 51 alerts"
    assert len(emulator.calls_to("chat.postMessage")) <= 3


async def test_a_resolution_updates_the_message_and_says_so_in_the_thread(
    bot: BotProcess, emulator: SlackEmulator
):
    await bot.alert(BRIEF_ALERT)
    root = await _root_with_analysis(emulator)

    await bot.alert({**BRIEF_ALERT, "status": "resolved"})

    await emulator.wait_for(
        lambda: "resolved" in _all_text(emulator.message(root.ts).blocks).lower()
    )
    notes = await emulator.wait_for(lambda: _replies(emulator, root))
    assert "resolved" in notes[0].text.lower()
    assert ActionId.ACKNOWLEDGE not in _action_ids(emulator.message(root.ts))


async def test_buttons_acknowledge_silence_reanalyze_and_resolve(
    bot: BotProcess, emulator: SlackEmulator
):
    answer = await bot.alert(BRIEF_ALERT)
    incident_id = answer["incidents"][0]
    root = await _root_with_analysis(emulator)

    delivery = await emulator.block_action(ActionId.ACKNOWLEDGE, message_ts=root.ts, user_id=USER)
    assert delivery.ack is not None and delivery.ack.latency < 3
    await emulator.wait_for(lambda: USER in _all_text(emulator.message(root.ts).blocks))

    await emulator.block_action(ActionId.SILENCE_1H, message_ts=root.ts, user_id=USER)
    await emulator.wait_for(lambda: any("ilenced" in m.text for m in _replies(emulator, root)))

    await emulator.block_action(ActionId.REANALYZE, message_ts=root.ts, user_id=USER)
    await emulator.wait_for(lambda: any("nalys" in m.text for m in _replies(emulator, root)))

    await emulator.block_action(ActionId.RESOLVE, message_ts=root.ts, user_id=USER)

    def resolved() -> bool:
        store = bot.store()
        incident = store.get_incident(incident_id)
        store.close()
        return incident is not None and incident.status is IncidentStatus.RESOLVED

    await emulator.wait_for(resolved)
    store = bot.store()
    incident = store.get_incident(incident_id)
    silence = store.silence(incident.fingerprint) if incident else None
    store.close()
    assert incident is not None and incident.acknowledged_by == USER
    assert incident.resolved_by == USER
    assert silence is not None and silence.by == USER


async def test_the_email_modal_validates_then_mails_both_parts_and_says_so(
    bot: BotProcess, emulator: SlackEmulator, sink: SmtpSink
):
    answer = await bot.alert(BRIEF_ALERT)
    root = await _root_with_analysis(emulator)

    await emulator.block_action(ActionId.EMAIL, message_ts=root.ts, user_id=USER)
    [view] = await emulator.wait_for(lambda: emulator.views)
    assert "oncall@example.com" in json.dumps(view)

    metadata = ModalMetadata(incident_id=answer["incidents"][0]).dump()
    field = {"type": "plain_text_input", "value": "not-an-address"}
    bad = await emulator.view_submission(
        CallbackId.EMAIL,
        values={BlockId.EMAIL_RECIPIENTS: {ActionId.EMAIL_RECIPIENTS: field}},
        private_metadata=metadata,
        user_id=USER,
    )
    assert bad.ack is not None and bad.ack.payload is not None
    assert bad.ack.payload["response_action"] == "errors"
    assert "not-an-address" in bad.ack.payload["errors"][BlockId.EMAIL_RECIPIENTS]

    good = {"type": "plain_text_input", "value": "ann@example.com, lead@example.com"}
    note = {"type": "plain_text_input", "value": "Customers affected <!here>"}
    await emulator.view_submission(
        CallbackId.EMAIL,
        values={
            BlockId.EMAIL_RECIPIENTS: {ActionId.EMAIL_RECIPIENTS: good},
            BlockId.EMAIL_NOTE: {ActionId.EMAIL_NOTE: note},
        },
        private_metadata=metadata,
        user_id=USER,
    )
    [mail] = await emulator.wait_for(lambda: list(sink.messages), timeout=15)
    assert mail.tls and mail.user == sink.user
    assert mail.recipients == ["ann@example.com", "lead@example.com"]
    assert answer["incidents"][0] in str(mail.message["Subject"])
    html_part = mail.message.get_body(("html",))
    assert html_part is not None and "Customers affected &lt;!here&gt;" in html_part.get_content()
    told = await emulator.wait_for(
        lambda: [e for e in emulator.ephemerals if "Emailed" in e.text and e.user == USER]
    )
    assert "ann@example.com, lead@example.com" in told[0].text
    notes = await emulator.wait_for(
        lambda: [m for m in _replies(emulator, root) if "emailed this incident" in m.text]
    )
    assert f"<@{USER}>" in notes[0].text and "&lt;!here&gt;" in notes[0].text


async def test_an_interaction_that_fails_is_told_to_the_person(
    bot: BotProcess, emulator: SlackEmulator
):
    await bot.alert(BRIEF_ALERT)
    await _root_with_analysis(emulator)

    await emulator.block_action(
        ActionId.ACKNOWLEDGE,
        value=ActionValue(incident_id="INC-NOSUCH").dump(),
        channel_id=CHANNEL,
        user_id=USER,
    )

    ephemeral = await emulator.wait_for(lambda: [e for e in emulator.ephemerals if e.user == USER])
    assert "INC-NOSUCH" in ephemeral[0].text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("list", "Test Error: Database Connection Failed"),
        ("show {id}", "opened"),
        ("stats 7d", "Alerts per incident"),
        ("help", "/incident"),
        ("frobnicate", "/incident"),
        ("silence {id} 2h", "silenced"),
        ("ack {id}", "acknowledged"),
        ("resolve {id}", "resolved"),
        ("show INC-NOSUCH", "INC-NOSUCH"),
    ],
)
async def test_incident_subcommands(
    bot: BotProcess, emulator: SlackEmulator, text: str, expected: str
):
    answer = await bot.alert(BRIEF_ALERT)
    await _root_with_analysis(emulator)

    delivery = await emulator.slash_command(
        "/incident", text.format(id=answer["incidents"][0]), user_id=USER, channel_id=CHANNEL
    )

    assert delivery.ack is not None and delivery.ack.latency < 3
    [reply] = await emulator.wait_for(lambda: emulator.responses)
    assert expected.lower() in json.dumps(reply.body).lower()
    assert reply.body.get("response_type") == "ephemeral"


async def test_analyze_posts_the_analysis_of_pasted_text(bot: BotProcess, emulator: SlackEmulator):
    await emulator.slash_command(
        "/incident",
        "analyze ERROR: No space left on device writing /var/lib/postgresql/data",
        user_id=USER,
        channel_id=CHANNEL,
    )

    [reply] = await emulator.wait_for(lambda: emulator.responses, timeout=30)
    assert reply.body["response_type"] == "in_channel"
    assert "No space left on device" in json.dumps(reply.body)


async def test_a_thread_question_is_answered_once_and_the_bot_never_answers_itself(
    bot: BotProcess, emulator: SlackEmulator
):
    await bot.alert(BRIEF_ALERT)
    root = await _root_with_analysis(emulator)

    await emulator.message_event(CHANNEL, text="is it the pool?", user=USER, thread_ts=root.ts)
    answers = await emulator.wait_for(
        lambda: [m for m in _replies(emulator, root) if "need Claude" in m.text]
    )
    await emulator.message_event(CHANNEL, text="not in a thread", user=USER)
    await emulator.message_event(CHANNEL, text="other bot", bot_id="BOTHER", thread_ts=root.ts)
    await asyncio.sleep(0.5)

    assert len(answers) == 1
    assert len([m for m in _replies(emulator, root) if m.by_bot]) == 1


async def test_alert_text_never_reaches_slack_as_a_mention_or_link(
    bot: BotProcess, emulator: SlackEmulator
):
    hostile = (
        "<!channel> <!here|here> <!everyone> <@U0ADMIN> <#C0SECRET> "
        "<https://evil.example/login|https://bank.example> & more"
    )
    await bot.alert({**BRIEF_ALERT, "title": f"Disk full {hostile}", "message": hostile})
    root = await _root_with_analysis(emulator)
    await emulator.message_event(CHANNEL, text="what now?", user=USER, thread_ts=root.ts)
    await emulator.wait_for(lambda: len(_replies(emulator, root)) >= 1)

    for call in emulator.calls:
        if call.method.startswith("chat."):
            wire = json.dumps(call.params)
            for raw in ("<!channel>", "<!here", "<!everyone>", "<@U0ADMIN>", "<#C0SECRET>",
                        "<https://evil"):  # fmt: skip
                assert raw not in wire, (raw, call.method)


async def test_every_message_is_delivered_through_a_429_storm_and_an_outage(
    tmp_path: Path, emulator: SlackEmulator
):
    emulator.fail_next("chat.postMessage", status=429, retry_after=1, count=3)
    emulator.fail_next("chat.update", status=429, retry_after=1, count=3)
    bot = BotProcess(_env(tmp_path, emulator), tmp_path / "bot.db")
    await bot.start()
    try:
        emulator.fail_next("chat.postMessage", error="not_in_channel", count=20)
        titles = [
            "Disk full on the orders database",
            "Queue backlog on the billing consumer",
            "Certificate expiring for the public API",
            "DNS failure resolving the payments host",
            "Throttling on the users table",
        ]
        for title in titles:
            await bot.alert({**BRIEF_ALERT, "title": title})
        await bot.wait_line("left pending for retry: not_in_channel")

        def delivered() -> bool:
            posted = {m.text for m in _roots(emulator)}
            return all(any(title in text for text in posted) for title in titles)

        await emulator.wait_for(delivered, timeout=60)
    finally:
        assert await bot.stop() == 0
    assert len(_roots(emulator)) == len(titles)


async def test_a_slack_refusal_at_start_loses_no_alert(tmp_path: Path, emulator: SlackEmulator):
    emulator.fail_next("auth.test", error="invalid_auth", count=2)
    bot = BotProcess(_env(tmp_path, emulator), tmp_path / "bot.db")
    try:
        await bot.start(wait_connected=False)
        answer = await bot.alert(BRIEF_ALERT)
        assert answer["incidents"], "recorded while Slack refuses the bot"
        await bot.wait_line(r"cannot connect to Slack \(invalid_auth: SLACK_BOT_TOKEN")
        await bot.wait_line(r"connected to Slack over Socket Mode")
        root = await _root_with_analysis(emulator)
        assert answer["incidents"][0] in root.text
    finally:
        assert await bot.stop() == 0


async def test_two_clicks_make_one_jira_ticket_and_a_refusal_is_told(
    tmp_path: Path, emulator: SlackEmulator
):
    async with JiraFake(email="bot@example.com", token="jira-token") as jira:
        env = _env(tmp_path, emulator)
        env.update(
            JIRA_URL=jira.url,
            JIRA_EMAIL="bot@example.com",
            JIRA_API_TOKEN="jira-token",
            JIRA_PROJECT="OPS",
        )
        bot = BotProcess(env, tmp_path / "bot.db")
        await bot.start()
        try:
            refused = await bot.alert({**BRIEF_ALERT, "title": "Disk full on the orders database"})
            await bot.alert(BRIEF_ALERT)
            await emulator.wait_for(lambda: len(_roots(emulator)) == 2)
            root = next(r for r in _roots(emulator) if "Connection Failed" in r.text)
            other = next(r for r in _roots(emulator) if r is not root)
            assert ActionId.CREATE_JIRA in _action_ids(root)

            await asyncio.gather(
                emulator.block_action(ActionId.CREATE_JIRA, message_ts=root.ts, user_id=USER),
                emulator.block_action(ActionId.CREATE_JIRA, message_ts=root.ts, user_id="U8"),
            )
            await emulator.wait_for(lambda: "OPS-1" in _all_text(emulator.message(root.ts).blocks))
            notes = await emulator.wait_for(
                lambda: [m for m in _replies(emulator, root) if "OPS-1" in m.text]
            )
            told = await emulator.wait_for(lambda: list(emulator.ephemerals))
            assert len(jira.created) == 1
            assert len(notes) == 1
            assert "OPS-1" in told[0].text or "being created" in told[0].text

            jira.fail_next(status=503)
            await emulator.block_action(ActionId.CREATE_JIRA, message_ts=other.ts, user_id=USER)
            down = await emulator.wait_for(
                lambda: [e for e in emulator.ephemerals if "Jira is unavailable (503)" in e.text]
            )
            assert "No Jira ticket was created" in down[0].text
            jira.fail_next(status=401)
            await emulator.block_action(ActionId.CREATE_JIRA, message_ts=other.ts, user_id=USER)
            refusal = await emulator.wait_for(
                lambda: [e for e in emulator.ephemerals if "credentials (401)" in e.text]
            )
            assert "No Jira ticket was created" in refusal[0].text
            await emulator.block_action(ActionId.CREATE_JIRA, message_ts=other.ts, user_id=USER)
            await emulator.wait_for(lambda: "OPS-2" in _all_text(emulator.message(other.ts).blocks))
            assert refused["incidents"]
        finally:
            assert await bot.stop() == 0


async def test_a_message_deleted_in_slack_is_posted_anew(bot: BotProcess, emulator: SlackEmulator):
    await bot.alert(BRIEF_ALERT)
    await _root_with_analysis(emulator)
    emulator.fail_next("chat.update", error="message_not_found", count=1)

    await bot.alert(BRIEF_ALERT)

    await emulator.wait_for(lambda: len(_roots(emulator)) == 2)
    await bot.wait_line("was deleted in Slack; posting it anew")


async def test_pagerduty_and_jira_follow_the_buttons(tmp_path: Path, emulator: SlackEmulator):
    """A CRITICAL alert pages; Acknowledge and Resolve in Slack reach PagerDuty with the
    incident id as dedup key; resolving comments on the Jira ticket and moves it to Done."""
    async with PagerDutyFake() as pagerduty, JiraFake(email="bot@example.com") as jira:
        env = _env(tmp_path, emulator)
        env.update(
            PAGERDUTY_ROUTING_KEY=ROUTING_KEY,
            PAGERDUTY_EVENTS_URL=pagerduty.events_url,
            JIRA_URL=jira.url,
            JIRA_EMAIL="bot@example.com",
            JIRA_API_TOKEN=jira.token,
            JIRA_PROJECT="OPS",
            JIRA_RESOLVE_TRANSITION="Done",
        )
        bot = BotProcess(env, tmp_path / "bot.db")
        await bot.start()
        try:
            answer = await bot.alert({**BRIEF_ALERT, "severity": "CRITICAL"})
            incident_id = answer["incidents"][0]
            await emulator.wait_for(lambda: pagerduty.events, timeout=15)
            root = await _root_with_analysis(emulator, CRITICAL_CHANNEL)
            await emulator.wait_for(
                lambda: [m for m in _replies(emulator, root) if "PagerDuty" in m.text]
            )
            await emulator.block_action(ActionId.CREATE_JIRA, message_ts=root.ts, user_id=USER)
            await emulator.wait_for(lambda: jira.created)
            await emulator.block_action(ActionId.ACKNOWLEDGE, message_ts=root.ts, user_id=USER)
            await emulator.wait_for(lambda: len(pagerduty.events) == 2)
            await emulator.block_action(ActionId.RESOLVE, message_ts=root.ts, user_id=USER)
            await emulator.wait_for(lambda: len(pagerduty.events) == 3)
            await emulator.wait_for(lambda: jira.status.get("OPS-1") == "Done")
            await emulator.wait_for(
                lambda: [m for m in _replies(emulator, root) if "OPS-1 → Done" in m.text]
            )
        finally:
            assert await bot.stop() == 0
    actions = [(e["event_action"], e["dedup_key"]) for e in pagerduty.events]
    assert actions == [("trigger", incident_id), ("acknowledge", incident_id),
                       ("resolve", incident_id)]  # fmt: skip
    assert pagerduty.events[0]["payload"]["severity"] == "critical"
    [comment] = jira.comments["OPS-1"]
    assert f"Incident {incident_id} was resolved by {USER}" in comment
