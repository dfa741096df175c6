"""Claude as the analyzer: one forced tool call whose input is validated as a Diagnosis.

Retries of transport and overload errors are the SDK's (`max_retries`, honouring
`retry-after`); this module adds only what the SDK cannot know: an answer that does not
validate is sent back once with the validation error, and anything still wrong is raised
for the engine to fall back on the offline analyzer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from analysis import prompting
from analysis.cost import Usage
from analysis.models import Diagnosis, InvestigationTrace

if TYPE_CHECKING:
    # At run time the SDK is imported only by the functions that hold a client: it adds
    # ~20 MB to the bot, which a bot without ANTHROPIC_API_KEY must not pay (issue 13).
    import anthropic
    from anthropic.types import (
        MessageParam,
        TextBlockParam,
        ToolChoiceParam,
        ToolChoiceToolParam,
        ToolParam,
        ToolUseBlockParam,
    )

logger = logging.getLogger(__name__)

MAX_TOKENS = 2048


class ClaudeError(Exception):
    """Claude gave no usable analysis; `usage` is what the attempt still cost."""

    def __init__(self, message: str, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = usage or Usage()


class ClaudeUnavailableError(ClaudeError):
    """Transport, timeout, overload or server error after the SDK's retries: an outage."""


class ClaudeAnswerError(ClaudeError):
    """Claude answered, but not with a valid analysis (refusal, no tool call, bad input)."""


@dataclass(frozen=True)
class ClaudeResult:
    diagnosis: Diagnosis
    model: str
    usage: Usage
    trace: InvestigationTrace | None = None


class ClaudeAnalyzer:
    def __init__(self, client: anthropic.AsyncAnthropic, max_tokens: int = MAX_TOKENS) -> None:
        self.client = client
        self.max_tokens = max_tokens

    async def close(self) -> None:
        await self.client.close()

    async def answer(self, model: str, data: str) -> tuple[str, Usage]:
        """A plain-text answer to a follow-up question; `data` is redacted and fenced."""
        import anthropic

        try:
            response = await self.client.messages.create(
                model=model,
                max_tokens=self.max_tokens,
                system=[
                    {
                        "type": "text",
                        "text": prompting.followup_prompt(),
                        "cache_control": {"type": "ephemeral"},
                    }
                ],
                messages=[{"role": "user", "content": prompting.render_followup(data)}],
            )
        except (anthropic.APIConnectionError, anthropic.APIStatusError) as exc:
            raise ClaudeUnavailableError(f"Claude unavailable: {exc}") from exc
        usage = usage_of(response)
        if response.stop_reason == "refusal":
            raise ClaudeAnswerError("Claude declined to answer", usage)
        text = "".join(
            block.text for block in response.content if isinstance(block, anthropic.types.TextBlock)
        ).strip()
        if not text:
            raise ClaudeAnswerError("Claude gave an empty answer", usage)
        return text, usage

    async def diagnose(self, model: str, data: str) -> ClaudeResult:
        """`data` is the already redacted evidence; it is fenced, never interpreted."""
        messages: list[MessageParam] = [{"role": "user", "content": prompting.render_user(data)}]
        usage = Usage()
        response = await self._create(model, messages, usage)
        usage = usage + usage_of(response)
        tool_use = _tool_use(response, usage)
        try:
            return ClaudeResult(Diagnosis.model_validate(tool_use.input), model, usage)
        except ValidationError as exc:
            logger.info("Claude's analysis did not validate, asking once more: %s", exc)
            problem = validation_problems(exc)
        echoed: ToolUseBlockParam = {
            "type": "tool_use",
            "id": tool_use.id,
            "name": tool_use.name,
            "input": tool_use.input,
        }
        messages += [
            {"role": "assistant", "content": [echoed]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": tool_use.id,
                        "is_error": True,
                        "content": "The analysis did not match the tool's schema: "
                        f"{problem}. Call {prompting.TOOL_NAME} again with every field valid.",
                    }
                ],
            },
        ]
        retry = await self._create(model, messages, usage)
        usage = usage + usage_of(retry)
        second = _tool_use(retry, usage)
        try:
            return ClaudeResult(Diagnosis.model_validate(second.input), model, usage)
        except ValidationError as exc:
            raise ClaudeAnswerError(
                f"analysis still invalid after one correction: {validation_problems(exc)}", usage
            ) from exc

    async def _create(
        self, model: str, messages: list[MessageParam], usage: Usage
    ) -> anthropic.types.Message:
        return await forced_tool_call(
            self.client,
            model=model,
            max_tokens=self.max_tokens,
            system=prompting.system_prompt(),
            tool=(prompting.TOOL_NAME, prompting.TOOL_DESCRIPTION, prompting.tool_schema()),
            messages=messages,
            usage=usage,
        )


async def forced_tool_call(
    client: anthropic.AsyncAnthropic,
    *,
    model: str,
    max_tokens: int,
    system: str,
    tool: tuple[str, str, dict[str, Any]],
    messages: list[MessageParam],
    usage: Usage | None = None,
    timeout: float | None = None,
) -> anthropic.types.Message:
    """One Messages API request that must answer by calling `tool` (name, description, input
    schema), with the system prompt and the tool cached, within `timeout` seconds (None: the
    client's). The SDK's own errors become ours: `ClaudeUnavailableError` when trying later
    can help (connection, 429, 5xx), else `ClaudeAnswerError`; both carry the `usage` spent
    so far."""
    name, description, schema = tool
    tools: list[ToolParam] = [
        {
            "name": name,
            "description": description,
            "input_schema": schema,
            "cache_control": {"type": "ephemeral"},
        }
    ]
    tool_choice: ToolChoiceToolParam = {"type": "tool", "name": name}
    return await tool_request(
        client,
        model=model,
        max_tokens=max_tokens,
        system=system,
        tools=tools,
        tool_choice=tool_choice,
        messages=messages,
        usage=usage,
        timeout=timeout,
    )


async def tool_request(
    client: anthropic.AsyncAnthropic,
    *,
    model: str,
    max_tokens: int,
    system: str,
    tools: list[ToolParam],
    tool_choice: ToolChoiceParam,
    messages: list[MessageParam],
    usage: Usage | None = None,
    timeout: float | None = None,
) -> anthropic.types.Message:
    """One Messages API request offering `tools`, with the system prompt cached; shared by the
    single forced call and the investigation loop so that both map the SDK's errors alike
    (see `forced_tool_call`)."""
    import anthropic

    system_blocks: list[TextBlockParam] = [
        {"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}
    ]
    try:
        return await client.messages.create(
            model=model,
            max_tokens=max_tokens,
            system=system_blocks,
            tools=tools,
            tool_choice=tool_choice,
            messages=messages,
            timeout=anthropic.NOT_GIVEN if timeout is None else timeout,
        )
    except (anthropic.APIConnectionError, anthropic.InternalServerError) as exc:
        raise ClaudeUnavailableError(f"Claude unavailable: {exc}", usage) from exc
    except anthropic.RateLimitError as exc:
        raise ClaudeUnavailableError(f"Claude rate limit: {exc.message}", usage) from exc
    except anthropic.APIStatusError as exc:
        if exc.status_code >= 500:
            raise ClaudeUnavailableError(
                f"Claude unavailable ({exc.status_code}): {exc.message}", usage
            ) from exc
        raise ClaudeAnswerError(
            f"Claude refused the request ({exc.status_code}): {exc.message}", usage
        ) from exc


def _tool_use(response: anthropic.types.Message, usage: Usage) -> anthropic.types.ToolUseBlock:
    return tool_use_block(
        response, prompting.TOOL_NAME, usage, declined="Claude declined to analyze this alert"
    )


def tool_use_block(
    response: anthropic.types.Message, tool_name: str, usage: Usage, *, declined: str
) -> anthropic.types.ToolUseBlock:
    """The call of `tool_name` in the answer; `ClaudeAnswerError` (`declined` for a refusal)
    when there is none."""
    import anthropic

    if response.stop_reason == "refusal":
        raise ClaudeAnswerError(declined, usage)
    for block in response.content:
        if isinstance(block, anthropic.types.ToolUseBlock) and block.name == tool_name:
            return block
    raise ClaudeAnswerError(
        f"Claude answered without calling {tool_name} (stop reason {response.stop_reason})",
        usage,
    )


def usage_of(response: anthropic.types.Message) -> Usage:
    reported = response.usage
    return Usage(
        input_tokens=reported.input_tokens,
        output_tokens=reported.output_tokens,
        cache_write_tokens=reported.cache_creation_input_tokens or 0,
        cache_read_tokens=reported.cache_read_input_tokens or 0,
    )


def validation_problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'input'}: {error['msg']}"
        for error in exc.errors()[:8]
    )
