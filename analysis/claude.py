"""Claude as the analyzer: one forced tool call whose input is validated as a Diagnosis.

Retries of transport and overload errors are the SDK's (`max_retries`, honouring
`retry-after`); this module adds only what the SDK cannot know: an answer that does not
validate is sent back once with the validation error, and anything still wrong is raised
for the engine to fall back on the offline analyzer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anthropic
from anthropic.types import (
    MessageParam,
    TextBlockParam,
    ToolChoiceToolParam,
    ToolParam,
    ToolUseBlockParam,
)
from pydantic import ValidationError

from analysis import prompting
from analysis.cost import Usage
from analysis.models import Diagnosis

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


class ClaudeAnalyzer:
    def __init__(self, client: anthropic.AsyncAnthropic, max_tokens: int = MAX_TOKENS) -> None:
        self.client = client
        self.max_tokens = max_tokens

    async def close(self) -> None:
        await self.client.close()

    async def answer(self, model: str, data: str) -> tuple[str, Usage]:
        """A plain-text answer to a follow-up question; `data` is redacted and fenced."""
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
        usage = _usage(response)
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
        usage = usage + _usage(response)
        tool_use = _tool_use(response, usage)
        try:
            return ClaudeResult(Diagnosis.model_validate(tool_use.input), model, usage)
        except ValidationError as exc:
            logger.info("Claude's analysis did not validate, asking once more: %s", exc)
            problem = _short_errors(exc)
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
        usage = usage + _usage(retry)
        second = _tool_use(retry, usage)
        try:
            return ClaudeResult(Diagnosis.model_validate(second.input), model, usage)
        except ValidationError as exc:
            raise ClaudeAnswerError(
                f"analysis still invalid after one correction: {_short_errors(exc)}", usage
            ) from exc

    async def _create(
        self, model: str, messages: list[MessageParam], usage: Usage
    ) -> anthropic.types.Message:
        system: list[TextBlockParam] = [
            {
                "type": "text",
                "text": prompting.system_prompt(),
                "cache_control": {"type": "ephemeral"},
            }
        ]
        tools: list[ToolParam] = [
            {
                "name": prompting.TOOL_NAME,
                "description": prompting.TOOL_DESCRIPTION,
                "input_schema": prompting.tool_schema(),
                "cache_control": {"type": "ephemeral"},
            }
        ]
        tool_choice: ToolChoiceToolParam = {"type": "tool", "name": prompting.TOOL_NAME}
        try:
            return await self.client.messages.create(
                model=model,
                max_tokens=self.max_tokens,
                system=system,
                tools=tools,
                tool_choice=tool_choice,
                messages=messages,
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
    if response.stop_reason == "refusal":
        raise ClaudeAnswerError("Claude declined to analyze this alert", usage)
    for block in response.content:
        if isinstance(block, anthropic.types.ToolUseBlock) and block.name == prompting.TOOL_NAME:
            return block
    raise ClaudeAnswerError(
        f"Claude answered without calling {prompting.TOOL_NAME} "
        f"(stop reason {response.stop_reason})",
        usage,
    )


def _usage(response: anthropic.types.Message) -> Usage:
    reported = response.usage
    return Usage(
        input_tokens=reported.input_tokens,
        output_tokens=reported.output_tokens,
        cache_write_tokens=reported.cache_creation_input_tokens or 0,
        cache_read_tokens=reported.cache_read_input_tokens or 0,
    )


def _short_errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'input'}: {error['msg']}"
        for error in exc.errors()[:8]
    )
