"""The link to an incident's message, on the Slack emulator: given when Slack gives it; when
Slack refuses, None and a log line saying why, since the link is a convenience (a ticket, a
mail, an MCP answer goes on without it)."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_posts import permalink_of
from incidents.models import MessageRef
from tests.fakes.slack_emulator import SlackEmulator

pytestmark = pytest.mark.integration

CHANNEL = "C1"


@pytest.fixture
async def emulator() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(channels=(CHANNEL,)) as started:
        yield started


async def test_a_permalink_or_none_with_the_reason_logged(
    emulator: SlackEmulator, caplog: pytest.LogCaptureFixture
):
    client = AsyncWebClient(token="xoxb-test", base_url=emulator.api_url)
    posted = await client.chat_postMessage(channel=CHANNEL, text="INC-1 opened")
    ref = MessageRef(incident_id="INC-1", channel=CHANNEL, ts=str(posted["ts"]), synced_version=1)

    link = await permalink_of(client, ref)
    assert link is not None and link.startswith("https://") and CHANNEL in link

    emulator.fail_next("chat.getPermalink", error="channel_not_found")
    with caplog.at_level(logging.WARNING, logger="bot.slack_posts"):
        assert await permalink_of(client, ref) is None
    assert "no permalink for INC-1: channel_not_found: the channel does not exist" in caplog.text

    closed = socket.socket()  # a port nothing listens on: the network fails, not Slack
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    offline = AsyncWebClient(token="xoxb-test", base_url=f"http://127.0.0.1:{port}/api/")
    with caplog.at_level(logging.WARNING, logger="bot.slack_posts"):
        assert await permalink_of(offline, ref) is None
    assert "no permalink for INC-1: ClientConnectorError" in caplog.text
