"""The Slack emulator, driven by the real slack_sdk Web API client and a real bolt app.

These pin what the end-to-end tests rely on: Slack's answer shapes and error codes as the
SDK parses them, the SDK's retry handlers against injected 429/503s, and the Socket Mode
protocol (hello, envelopes, acks within 3 s, reconnects) with bolt's own socket handler.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_emulator import (
    ACK_DEADLINE_SECONDS,
    BOT_ID,
    BOT_USER_ID,
    RATE_LIMITS,
    RateLimit,
    SlackEmulator,
    scaled_limits,
)

pytestmark = pytest.mark.integration

BUTTON = {
    "type": "actions",
    "block_id": "incident-actions",
    "elements": [
        {
            "type": "button",
            "action_id": "acknowledge",
            "text": {"type": "plain_text", "text": "Acknowledge"},
            "value": "INC-1",
        }
    ],
}
MODAL = {
    "type": "modal",
    "callback_id": "resolve",
    "title": {"type": "plain_text", "text": "Resolve"},
    "submit": {"type": "plain_text", "text": "Resolve"},
    "private_metadata": '{"incident": "INC-1"}',
    "blocks": [
        {
            "type": "input",
            "block_id": "cause",
            "label": {"type": "plain_text", "text": "Cause"},
            "element": {"type": "plain_text_input", "action_id": "text"},
        }
    ],
}


@pytest.fixture
async def emulator() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(not_member=["C9"]) as emu:
        yield emu


def make_client(emulator: SlackEmulator, token: str = "xoxb-test") -> AsyncWebClient:
    """The client exactly as the composition root builds it, pointed at the emulator."""
    return AsyncWebClient(
        token=token,
        base_url=emulator.api_url,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
            AsyncConnectionErrorRetryHandler(),
        ],
    )


@pytest.fixture
def client(emulator: SlackEmulator) -> AsyncWebClient:
    return make_client(emulator)


@contextlib.asynccontextmanager
async def connected(app: AsyncApp, client: AsyncWebClient) -> AsyncIterator[None]:
    """Bolt's real Socket Mode handler, connected for the block and closed after it.

    The emulator's apps.connections.open is reached through `web_client`, whose base_url
    points at the emulator; bolt leaves connect_async/close_async unannotated.
    """
    handler = AsyncSocketModeHandler(app, "xapp-test", web_client=client)
    await handler.connect_async()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]


async def test_auth_test_reports_the_bot_identity(client: AsyncWebClient) -> None:
    response = await client.auth_test()

    assert (response["user_id"], response["bot_id"], response["team_id"]) == (
        BOT_USER_ID,
        BOT_ID,
        "T1",
    )


async def test_post_update_and_read_back_a_thread(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    root = await client.chat_postMessage(channel="C1", text="Incident opened", blocks=[BUTTON])
    reply = await client.chat_postMessage(channel="C1", thread_ts=root["ts"], text="Analysis")
    emulator.add_message("C1", "I'm on it", user="U7", thread_ts=root["ts"])
    await client.chat_update(channel="C1", ts=root["ts"], text="Incident acknowledged")
    updated = await client.chat_update(channel="C1", ts=root["ts"], text="Incident resolved")

    assert root["channel"] == "C1" and root["ts"] < reply["ts"]
    assert root["message"]["bot_id"] == BOT_ID and root["message"]["user"] == BOT_USER_ID
    assert updated["message"]["edited"]["user"] == BOT_ID
    replies = await client.conversations_replies(channel="C1", ts=root["ts"])
    texts = [message["text"] for message in replies["messages"]]
    assert texts == ["Incident resolved", "Analysis", "I'm on it"]
    assert replies["messages"][0]["reply_count"] == 2
    assert replies["messages"][2]["parent_user_id"] == BOT_USER_ID
    stored = emulator.messages("C1")
    assert [m.ts for m in stored if m.thread_ts is None] == [root["ts"]]
    assert stored[0].updates == 2 and stored[0].blocks == [BUTTON]
    assert [v.text for v in stored[0].versions] == [
        "Incident opened",
        "Incident acknowledged",
        "Incident resolved",
    ]


async def test_replies_page_with_a_cursor(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    root = await client.chat_postMessage(channel="C1", text="root")
    for n in range(4):
        emulator.add_message("C1", f"reply {n}", user="U7", thread_ts=root["ts"])

    first = await client.conversations_replies(channel="C1", ts=root["ts"], limit=3)
    cursor = first["response_metadata"]["next_cursor"]
    second = await client.conversations_replies(channel="C1", ts=root["ts"], cursor=cursor)

    assert first["has_more"] and not second["has_more"]
    texts = [m["text"] for m in [*first["messages"], *second["messages"]]]
    assert texts == ["root", "reply 0", "reply 1", "reply 2", "reply 3"]


async def test_ephemeral_permalink_and_modal(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    root = await client.chat_postMessage(channel="C1", text="root")
    reply = await client.chat_postMessage(channel="C1", thread_ts=root["ts"], text="reply")
    ephemeral = await client.chat_postEphemeral(channel="C1", user="U7", text="only you")
    root_link = await client.chat_getPermalink(channel="C1", message_ts=root["ts"])
    reply_link = await client.chat_getPermalink(channel="C1", message_ts=reply["ts"])
    trigger_id = emulator.new_trigger_id()
    opened = await client.views_open(trigger_id=trigger_id, view=MODAL)

    assert emulator.ephemerals[0].message_ts == ephemeral["message_ts"]
    assert emulator.ephemerals[0].user == "U7"
    assert root_link["permalink"].endswith(f"/archives/C1/p{root['ts'].replace('.', '')}")
    assert f"?thread_ts={root['ts']}&cid=C1" in reply_link["permalink"]
    assert opened["view"]["id"].startswith("V") and opened["view"]["callback_id"] == "resolve"
    assert emulator.views == [opened["view"]]
    with pytest.raises(SlackApiError) as reused:
        await client.views_open(trigger_id=trigger_id, view=MODAL)
    assert reused.value.response["error"] == "exchanged_trigger_id"
    with pytest.raises(SlackApiError) as unknown:
        await client.views_open(trigger_id="1.2.3", view=MODAL)
    assert unknown.value.response["error"] == "invalid_trigger_id"


async def test_files_upload_v2_round_trip(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    root = await client.chat_postMessage(channel="C1", text="root")

    response = await client.files_upload_v2(
        channel="C1", thread_ts=root["ts"], content="log line", filename="log.txt", title="Log"
    )

    assert response["file"]["title"] == "Log"
    [uploaded] = emulator.files
    assert (uploaded.content, uploaded.channel, uploaded.thread_ts) == (
        b"log line",
        "C1",
        root["ts"],
    )


@pytest.mark.parametrize(
    ("channel", "error"), [("C404", "channel_not_found"), ("C9", "not_in_channel")]
)
async def test_channel_errors_have_slacks_shape(
    emulator: SlackEmulator, client: AsyncWebClient, channel: str, error: str
) -> None:
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel=channel, text="hello")

    assert raised.value.response.status_code == 200
    assert raised.value.response.data == {"ok": False, "error": error}
    assert emulator.messages(channel) == []


async def test_refusals_slack_would_give(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    async def error_of(call: Any) -> str:
        with pytest.raises(SlackApiError) as raised:
            await call
        return str(raised.value.response["error"])

    root = await client.chat_postMessage(channel="C1", text="root")
    too_long_header = {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}

    assert await error_of(client.chat_update(channel="C1", ts="1.2", text="x")) == (
        "message_not_found"
    )
    assert await error_of(client.chat_postMessage(channel="C1", thread_ts="1.2", text="x")) == (
        "thread_not_found"
    )
    # api_call: the SDK's chat_postMessage warns before sending a message without text.
    assert await error_of(client.api_call("chat.postMessage", json={"channel": "C1"})) == (
        "no_text"
    )
    assert (
        await error_of(client.chat_postMessage(channel="C1", text="x", blocks=[too_long_header]))
        == "invalid_blocks"
    )
    assert await error_of(client.conversations_kick(channel="C1", user="U1")) == "unknown_method"
    assert await error_of(make_client(emulator, "xoxb-wrong").auth_test()) == "invalid_auth"
    assert await error_of(make_client(emulator, "xapp-test").auth_test()) == (
        "not_allowed_token_type"
    )
    assert emulator.message(root["ts"]).updates == 0


async def test_rate_limit_is_retried_after_retry_after(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    emulator.fail_next("chat.postMessage", status=429, retry_after=1)
    started = time.monotonic()

    response = await client.chat_postMessage(channel="C1", text="hello")

    attempts = emulator.calls_to("chat.postMessage")
    assert [call.status for call in attempts] == [429, 200]
    assert attempts[0].response == {"ok": False, "error": "ratelimited"}
    assert attempts[1].time - attempts[0].time >= 1.0
    assert time.monotonic() - started >= 1.0
    assert response["ok"] and len(emulator.messages("C1")) == 1
    assert emulator.rate_limited == {"chat.postMessage": 1}


def test_slacks_published_limits_are_enforced_by_default() -> None:
    assert SlackEmulator().rate_limits == RATE_LIMITS
    post, update = RATE_LIMITS["chat.postMessage"], RATE_LIMITS["chat.update"]
    assert (post.per_second, post.per_channel) == (1.0, True)
    assert update.per_second * 60 == pytest.approx(50)
    assert not update.per_channel
    assert scaled_limits(10)["chat.update"].per_second == pytest.approx(10 * 50 / 60)


async def test_calls_over_a_limit_answer_429_with_retry_after_and_are_not_served() -> None:
    """Refills are so slow here (one call per 100 s) that only the bursts go through."""
    limits = {
        "chat.postMessage": RateLimit(per_second=0.01, burst=2, per_channel=True),
        "chat.update": RateLimit(per_second=0.01, burst=3),
    }
    async with SlackEmulator(rate_limits=limits) as emulator:
        client = AsyncWebClient(token="xoxb-test", base_url=emulator.api_url, retry_handlers=[])
        first = await client.chat_postMessage(channel="C1", text="one")
        await client.chat_postMessage(channel="C1", text="two")
        with pytest.raises(SlackApiError) as refused:
            await client.chat_postMessage(channel="C1", text="three")
        other = await client.chat_postMessage(channel="C2", text="a channel of its own")
        for n in range(2):
            await client.chat_update(channel="C1", ts=first["ts"], text=f"edit {n}")
        await client.chat_update(channel="C2", ts=other["ts"], text="same workspace budget")
        with pytest.raises(SlackApiError) as over:
            await client.chat_update(channel="C2", ts=other["ts"], text="one too many")

        assert refused.value.response.status_code == 429
        assert refused.value.response.data == {"ok": False, "error": "ratelimited"}
        assert int(refused.value.response.headers["Retry-After"]) >= 1
        assert over.value.response["error"] == "ratelimited"
        assert [m.versions[0].text for m in emulator.messages("C1")] == ["one", "two"]
        assert emulator.message(other["ts"]).text == "same workspace budget"
        assert emulator.rate_limited == {"chat.postMessage": 1, "chat.update": 1}


async def test_limits_can_be_lifted() -> None:
    async with SlackEmulator(rate_limits={}) as emulator:
        client = AsyncWebClient(token="xoxb-test", base_url=emulator.api_url, retry_handlers=[])
        for n in range(20):
            await client.chat_postMessage(channel="C1", text=str(n))

        assert len(emulator.messages("C1")) == 20
        assert not emulator.rate_limited


async def test_server_errors_are_retried_then_surface(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    emulator.fail_next("chat.update", error="channel_not_found")
    emulator.fail_next("chat.postMessage", status=503)
    posted = await client.chat_postMessage(channel="C1", text="hello")
    with pytest.raises(SlackApiError) as injected:
        await client.chat_update(channel="C1", ts=posted["ts"], text="x")
    emulator.set_down()
    no_retries = AsyncWebClient(token="xoxb-test", base_url=emulator.api_url, retry_handlers=[])
    with pytest.raises(SlackApiError) as down:
        await no_retries.auth_test()

    assert [call.status for call in emulator.calls_to("chat.postMessage")] == [503, 200]
    assert injected.value.response["error"] == "channel_not_found"
    assert down.value.response.status_code == 503


async def test_bolt_app_over_socket_mode(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    """The real bolt app: each interaction reaches its listener and is acked within 3 s."""
    app = AsyncApp(client=client)
    seen_messages: list[dict[str, Any]] = []

    @app.command("/incident")
    async def incident_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        await ack(f"Listing incidents for <@{command['user_id']}>")
        await client.chat_postMessage(
            channel=command["channel_id"], text="Open incidents", blocks=[BUTTON]
        )

    @app.action("acknowledge")
    async def acknowledge(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await client.chat_update(
            channel=body["channel"]["id"], ts=body["message"]["ts"], text="Acknowledged"
        )
        await client.views_open(trigger_id=body["trigger_id"], view=MODAL)
        await respond(text=f"Thanks, {body['actions'][0]['value']} is yours")

    @app.view("resolve")
    async def resolve(ack: AsyncAck, view: dict[str, Any]) -> None:
        cause = view["state"]["values"]["cause"]["text"]["value"]
        if not cause:
            await ack(response_action="errors", errors={"cause": "Say what happened"})
            return
        await ack()

    @app.event("message")
    async def on_message(event: dict[str, Any]) -> None:
        seen_messages.append(event)
        if event.get("thread_ts"):
            await client.chat_postMessage(
                channel=event["channel"], thread_ts=event["thread_ts"], text="Noted"
            )

    async with connected(app, client):
        command = await emulator.slash_command("/incident", "list", user_id="U7")
        [root] = await emulator.wait_for(lambda: emulator.messages("C1"))
        click = await emulator.block_action("acknowledge", user_id="U7", message_ts=root.ts)
        await emulator.wait_for(lambda: emulator.ephemerals and emulator.views)
        refused = await emulator.view_submission(
            "resolve", values={"cause": {"text": {"type": "plain_text_input", "value": ""}}}
        )
        question = await emulator.message_event("C1", "why?", user="U7", thread_ts=root.ts)
        await emulator.wait_for(lambda: len(emulator.thread("C1", root.ts)) == 3)
        await emulator.wait_for(lambda: not emulator.pending_acks)

        await emulator.send_disconnect()
        await emulator.wait_for(lambda: emulator.connections_opened == 2)
        after_reconnect = await emulator.slash_command("/incident", "list")

    deliveries = [command, click, refused, question, after_reconnect]
    assert all(d.ack is not None and d.ack.latency < ACK_DEADLINE_SECONDS for d in deliveries)
    assert command.ack is not None
    assert command.ack.payload == {"text": "Listing incidents for <@U7>"}
    assert click.payload["message"]["ts"] == root.ts
    assert click.payload["actions"][0]["block_id"] == "incident-actions"
    assert refused.ack is not None and refused.ack.payload == {
        "response_action": "errors",
        "errors": {"cause": "Say what happened"},
    }
    assert root.text == "Acknowledged" and root.updates == 1
    assert emulator.ephemerals[-1].text == "Thanks, INC-1 is yours"
    assert emulator.ephemerals[-1].via == "response_url"
    assert emulator.views[0]["private_metadata"] == MODAL["private_metadata"]
    # The bot's three posts came back as events, were acked by bolt and never reached the
    # listener: it saw the user's question only, so it answered once rather than looping.
    echoes = [e for e in emulator.envelopes if e["payload"].get("event", {}).get("bot_id")]
    assert len(echoes) == 3
    assert {e["envelope_id"] for e in echoes} <= {a.envelope_id for a in emulator.acks}
    assert [(e["user"], e["text"]) for e in seen_messages] == [("U7", "why?")]
    assert emulator.calls_to("apps.connections.open")[0].headers["authorization"] == (
        "Bearer xapp-test"
    )
    assert emulator.protocol_errors == []


async def test_an_unhandled_interaction_is_never_acked(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    async with connected(AsyncApp(client=client), client):
        await emulator.wait_connected()
        sent = await emulator.block_action(
            "nobody-listens", value="x", channel_id="C1", expect_ack=False
        )
        with pytest.raises(TimeoutError, match="not acked"):
            await emulator.wait_ack(sent.envelope_id, timeout=0.5)

    assert emulator.pending_acks == [sent.envelope_id]


async def test_history_lists_top_level_messages_newest_first_with_metadata_on_request():
    async with SlackEmulator(channels=("C1",)) as emulator:
        client = AsyncWebClient(token="xoxb-test", base_url=emulator.api_url)
        metadata = {"event_type": "incident_posted", "event_payload": {"incident_id": "INC-1"}}
        first = await client.chat_postMessage(channel="C1", text="one", metadata=metadata)
        await client.chat_postMessage(channel="C1", text="reply", thread_ts=first["ts"])
        await client.chat_postMessage(channel="C1", text="two")

        plain = await client.conversations_history(channel="C1")
        full = await client.conversations_history(channel="C1", include_all_metadata=True)

        assert [m["text"] for m in plain["messages"]] == ["two", "one"]
        assert all("metadata" not in m for m in plain["messages"])
        assert full["messages"][1]["metadata"] == metadata
        paged = await client.conversations_history(channel="C1", limit=1)
        assert paged["has_more"] is True and [m["text"] for m in paged["messages"]] == ["two"]
