"""The Anthropic fake, driven by the real `anthropic.AsyncAnthropic` over a real socket.

These pin the behaviour the Claude client's integration tests rely on: forced tool calls,
the SDK's retry rules against scripted errors, timeouts, refusals and cache accounting.
The client validates responses strictly, so any drift from the SDK's types fails here.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp
import anthropic
import pytest
from anthropic import AsyncAnthropic, Omit, omit
from anthropic.types import (
    CacheControlEphemeralParam,
    Message,
    MessageParam,
    TextBlockParam,
    ToolChoiceToolParam,
    ToolParam,
    ToolUseBlock,
)

from tests.fakes.anthropic_server import (
    Delay,
    Error,
    FakeAnthropic,
    Refusal,
    Text,
    ToolUse,
    Turn,
)

pytestmark = pytest.mark.integration

MODEL = "claude-sonnet-4-5"
TOOL: ToolParam = {
    "name": "record_analysis",
    "description": "Record the incident analysis.",
    "input_schema": {
        "type": "object",
        "properties": {"summary": {"type": "string"}, "confidence": {"type": "number"}},
        "required": ["summary", "confidence"],
    },
}
FORCED: ToolChoiceToolParam = {"type": "tool", "name": "record_analysis"}
DEFAULT_INPUT = {"summary": "default analysis", "confidence": 0.5}
# Long enough that a cached prefix is clearly distinguishable from the rest of the prompt.
RUNBOOK = "You analyse production incidents for the on-call engineer. " * 40


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(default_tool_input=DEFAULT_INPUT) as server:
        yield server


@pytest.fixture
async def client(fake: FakeAnthropic) -> AsyncIterator[AsyncAnthropic]:
    async with AsyncAnthropic(
        api_key="test",
        base_url=fake.url,
        max_retries=2,
        timeout=5.0,
        _strict_response_validation=True,
    ) as sdk:
        yield sdk


async def ask(
    client: AsyncAnthropic,
    text: str = "Disk full on db-1",
    *,
    system: list[TextBlockParam] | Omit = omit,
    history: list[MessageParam] | None = None,
    cache_control: CacheControlEphemeralParam | Omit = omit,
    extra_headers: dict[str, str | Omit] | None = None,
) -> Message:
    """One analysis request shaped like our Claude client's: one tool, forced."""
    return await client.messages.create(
        model=MODEL,
        max_tokens=1024,
        tools=[TOOL],
        tool_choice=FORCED,
        system=system,
        messages=[*(history or []), {"role": "user", "content": text}],
        cache_control=cache_control,
        extra_headers=extra_headers,
    )


def cached_system(text: str, ttl: Literal["5m", "1h"] = "5m") -> list[TextBlockParam]:
    """A system prompt ending in a cache breakpoint, as our client sends its runbook."""
    return [{"type": "text", "text": text, "cache_control": {"type": "ephemeral", "ttl": ttl}}]


async def test_forced_tool_call_round_trips(fake: FakeAnthropic, client: AsyncAnthropic) -> None:
    fake.enqueue(ToolUse({"summary": "db-1 disk full", "confidence": 0.9}))

    message = await ask(client, "Disk full on db-1, token=hunter2")

    assert message.id.startswith("msg_") and message.type == "message"
    assert message.role == "assistant" and message.model == MODEL
    assert message.stop_reason == "tool_use" and message.stop_sequence is None
    [block] = message.content
    assert isinstance(block, ToolUseBlock)
    assert block.id.startswith("toolu_") and block.name == "record_analysis"
    assert block.input == {"summary": "db-1 disk full", "confidence": 0.9}
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert message._request_id is not None and message._request_id.startswith("req_")

    [sent] = fake.requests
    assert sent.body is not None and json.loads(sent.raw) == sent.body
    assert sent.body["model"] == MODEL and sent.body["tool_choice"] == FORCED
    assert sent.body["tools"] == [TOOL]
    assert sent.headers["x-api-key"] == "test"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "token=hunter2" in sent.prompt_text
    assert fake.pending == 0


async def test_default_responder_answers_when_script_is_empty(
    fake: FakeAnthropic, client: AsyncAnthropic
) -> None:
    first = await ask(client)
    fake.default = lambda body: Text(f"no tool for {body['model']}")
    second = await ask(client)

    assert isinstance(first.content[0], ToolUseBlock)
    assert first.content[0].input == DEFAULT_INPUT
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text" and second.content[0].text == f"no tool for {MODEL}"


async def test_rate_limit_is_retried_after_retry_after(
    fake: FakeAnthropic, client: AsyncAnthropic
) -> None:
    fake.enqueue(Error.rate_limit(retry_after=0.01))

    started = time.monotonic()
    message = await ask(client)
    elapsed = time.monotonic() - started

    assert message.stop_reason == "tool_use"
    assert [r.headers["x-stainless-retry-count"] for r in fake.requests] == ["0", "1"]
    # Without retry-after the SDK backs off at least 0.375 s; 0.01 s was honoured instead.
    assert elapsed < 0.3


async def test_overloaded_beyond_max_retries_raises_overloaded_error(
    fake: FakeAnthropic, client: AsyncAnthropic
) -> None:
    fake.enqueue(*[Error.overloaded(retry_after=0.01)] * 3)

    with pytest.raises(anthropic.OverloadedError) as raised:
        await ask(client)

    # SDK 0.125 maps 529 to OverloadedError, a sibling of InternalServerError, not a subclass.
    assert not isinstance(raised.value, anthropic.InternalServerError)
    assert raised.value.status_code == 529 and raised.value.type == "overloaded_error"
    assert raised.value.request_id is not None and raised.value.request_id.startswith("req_")
    assert len(fake.requests) == 3 and fake.pending == 0


@pytest.mark.parametrize(
    ("error", "exception", "attempts"),
    [
        (Error.api_error(retry_after=0.01), anthropic.InternalServerError, 3),
        (Error.invalid_request("messages: roles must alternate"), anthropic.BadRequestError, 1),
        (
            Error(529, "overloaded_error", "Overloaded", should_retry=False),
            anthropic.OverloadedError,
            1,
        ),
        (
            Error(400, "invalid_request_error", "try again", 0.01, should_retry=True),
            anthropic.BadRequestError,
            3,
        ),
    ],
)
async def test_sdk_retry_rules(
    fake: FakeAnthropic,
    client: AsyncAnthropic,
    error: Error,
    exception: type[anthropic.APIStatusError],
    attempts: int,
) -> None:
    fake.enqueue(*[error] * 3)

    with pytest.raises(exception) as raised:
        await ask(client)

    assert raised.value.status_code == error.status
    assert raised.value.body == {
        "type": "error",
        "error": {"type": error.error_type, "message": error.message},
        "request_id": raised.value.request_id,
    }
    assert len(fake.requests) == attempts


async def test_delay_beyond_timeout_raises_timeout(
    fake: FakeAnthropic, client: AsyncAnthropic
) -> None:
    fake.enqueue(Delay(5.0))

    with pytest.raises(anthropic.APITimeoutError):
        await ask(client.with_options(timeout=0.2, max_retries=0))

    assert len(fake.requests) == 1


async def test_timeout_is_retried_by_the_sdk(fake: FakeAnthropic, client: AsyncAnthropic) -> None:
    fake.enqueue(Delay(5.0, then=Text("too late")))

    message = await ask(client.with_options(timeout=0.2, max_retries=1))

    # The abandoned attempt's `then` died with its connection; the retry got the default.
    assert message.stop_reason == "tool_use"
    assert len(fake.requests) == 2


async def test_refusal(fake: FakeAnthropic, client: AsyncAnthropic) -> None:
    fake.enqueue(Refusal(), Refusal(partial_text="The root cause", category="cyber"))

    silent = await ask(client)
    partial = await ask(client)

    assert silent.stop_reason == "refusal" and silent.content == []
    assert silent.stop_details is not None and silent.stop_details.type == "refusal"
    assert partial.stop_reason == "refusal"
    assert partial.content[0].type == "text" and partial.content[0].text == "The root cause"
    assert partial.stop_details is not None and partial.stop_details.category == "cyber"


async def test_a_recorded_turn_is_replayed_block_for_block_with_its_usage(
    fake: FakeAnthropic, client: AsyncAnthropic
) -> None:
    usage = {
        "input_tokens": 1234,
        "output_tokens": 56,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 4096,
    }
    analysis = {"summary": "db-1 disk full", "confidence": 0.8}
    fake.enqueue(
        Turn(
            (
                {"type": "text", "text": "Two things to record."},
                {"type": "tool_use", "name": "record_analysis", "input": analysis},
                {"type": "tool_use", "name": "record_analysis", "input": DEFAULT_INPUT},
            ),
            usage,
        ),
        Turn(({"type": "text", "text": "Nothing to call."},)),
    )

    recorded = await ask(client)
    estimated = await ask(client)

    text, first, second = recorded.content
    assert text.type == "text" and text.text == "Two things to record."
    assert isinstance(first, ToolUseBlock) and isinstance(second, ToolUseBlock)
    assert (first.input, second.input) == (analysis, DEFAULT_INPUT)
    assert first.id != second.id and first.id.startswith("toolu_")
    assert recorded.stop_reason == "tool_use"
    assert (recorded.usage.input_tokens, recorded.usage.cache_read_input_tokens) == (1234, 4096)
    assert estimated.stop_reason == "end_turn" and estimated.usage.output_tokens > 0


async def test_a_recorded_turn_calling_an_undeclared_tool_is_refused(
    fake: FakeAnthropic, client: AsyncAnthropic
) -> None:
    fake.enqueue(Turn(({"type": "tool_use", "name": "drop_table", "input": {}},)))

    with pytest.raises(anthropic.BadRequestError, match="'drop_table', which is not in tools"):
        await ask(client)


async def test_prompt_cache_creation_then_read(fake: FakeAnthropic, client: AsyncAnthropic) -> None:
    first = (await ask(client, "Disk full on db-1", system=cached_system(RUNBOOK))).usage
    second = (await ask(client, "CPU high on web-3, again", system=cached_system(RUNBOOK))).usage

    prefix = first.cache_creation_input_tokens
    assert prefix is not None and prefix > 0
    assert first.cache_read_input_tokens == 0
    assert first.cache_creation is not None
    assert first.cache_creation.ephemeral_5m_input_tokens == prefix
    assert second.cache_creation_input_tokens == 0
    assert second.cache_read_input_tokens == prefix
    # The cached prefix is billed once, in the cache fields, never again in input_tokens.
    assert 0 < second.input_tokens < prefix


async def test_prompt_cache_misses_when_prefix_changes(
    fake: FakeAnthropic, client: AsyncAnthropic
) -> None:
    await ask(client, system=cached_system(RUNBOOK))
    changed = (await ask(client, system=cached_system(RUNBOOK + "Be brief.", "1h"))).usage
    unmarked = (await ask(client, system=[{"type": "text", "text": RUNBOOK}])).usage

    assert changed.cache_read_input_tokens == 0
    assert changed.cache_creation is not None
    assert changed.cache_creation.ephemeral_1h_input_tokens == changed.cache_creation_input_tokens
    assert changed.cache_creation.ephemeral_5m_input_tokens == 0
    assert unmarked.cache_creation_input_tokens == 0 and unmarked.cache_read_input_tokens == 0


async def test_automatic_caching_reads_the_previous_turn(
    fake: FakeAnthropic, client: AsyncAnthropic
) -> None:
    automatic: CacheControlEphemeralParam = {"type": "ephemeral"}
    first = (await ask(client, "Disk full on db-1", cache_control=automatic)).usage
    history: list[MessageParam] = [
        {"role": "user", "content": "Disk full on db-1"},
        {"role": "assistant", "content": "Rotate the logs."},
    ]
    second = (await ask(client, "Still full", history=history, cache_control=automatic)).usage

    # The breakpoint moved to the new last block; the look-back still finds turn one's entry.
    assert first.cache_creation_input_tokens is not None and first.cache_creation_input_tokens > 0
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens is not None
    assert second.cache_creation_input_tokens > 0


async def test_prefix_below_minimum_is_not_cached() -> None:
    async with (
        FakeAnthropic(DEFAULT_INPUT, min_cache_tokens=1024) as fake,
        AsyncAnthropic(api_key="test", base_url=fake.url, max_retries=0) as client,
    ):
        usage = (await ask(client, system=cached_system("short"))).usage

    assert usage.cache_creation_input_tokens == 0 and usage.cache_read_input_tokens == 0


async def test_cache_breakpoint_rules_are_enforced(
    fake: FakeAnthropic, client: AsyncAnthropic
) -> None:
    five = [block for text in "abcde" for block in cached_system(text)]
    with pytest.raises(anthropic.BadRequestError, match="A maximum of 4 blocks"):
        await ask(client, system=five)
    with pytest.raises(anthropic.BadRequestError, match="ttl '1h' must come before"):
        await ask(client, system=[*cached_system("a", "5m"), *cached_system("b", "1h")])

    assert len(fake.requests) == 2


async def test_missing_api_key_is_rejected(fake: FakeAnthropic, client: AsyncAnthropic) -> None:
    # The SDK only drops its auth header when told to per request, with Omit().
    with pytest.raises(anthropic.AuthenticationError) as raised:
        await ask(client, extra_headers={"X-Api-Key": Omit()})

    assert raised.value.status_code == 401 and raised.value.type == "authentication_error"
    assert "x-api-key header is required" in raised.value.message
    assert len(fake.requests) == 1 and "x-api-key" not in fake.requests[0].headers


async def test_wrong_api_key_is_rejected_without_consuming_the_script() -> None:
    async with (
        FakeAnthropic(DEFAULT_INPUT, api_key="sk-right") as fake,
        AsyncAnthropic(api_key="sk-wrong", base_url=fake.url, max_retries=2) as client,
    ):
        fake.enqueue(Text("unused"))
        with pytest.raises(anthropic.AuthenticationError, match="invalid x-api-key"):
            await ask(client)

    assert len(fake.requests) == 1 and fake.pending == 1


@pytest.mark.parametrize(
    ("headers", "body", "status", "message"),
    [
        ({"x-api-key": "k"}, {"model": MODEL}, 400, "anthropic-version: header is required"),
        ({}, {"model": MODEL}, 401, "x-api-key header is required"),
        (
            {"x-api-key": "k", "anthropic-version": "2023-06-01"},
            {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
            400,
            "max_tokens: Field required",
        ),
        (
            {"x-api-key": "k", "anthropic-version": "2023-06-01"},
            {
                "model": MODEL,
                "max_tokens": 10,
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            },
            400,
            "FakeAnthropic does not implement streaming",
        ),
    ],
)
async def test_malformed_requests_get_the_api_error_envelope(
    fake: FakeAnthropic, headers: dict[str, str], body: dict[str, Any], status: int, message: str
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.url}/v1/messages", json=body, headers=headers) as response,
    ):
        payload = await response.json()

    assert response.status == status
    assert payload["type"] == "error" and payload["error"]["message"] == message
    assert payload["request_id"] == response.headers["request-id"]
