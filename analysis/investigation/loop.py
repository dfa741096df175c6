"""The investigation loop: Claude calls read-only tools, then records its analysis.

The fixed context is the opening evidence, as in the single call. Each step is one Messages
API request offering the registry's tools and `record_analysis` (a tool call is required);
the loop runs the tools Claude asked for and answers with their results, until Claude calls
`record_analysis` with a valid analysis. Bounds, so that an investigation is never the reason
an alert goes without analysis or a bill surprises anyone:

- at most `max_steps` requests; the last offers only `record_analysis`, forced, which makes
  Claude conclude with what it has (one more, forced too, when that analysis does not
  validate);
- once the token or cost budget is spent, the next request is that last one;
- each tool call is bounded by `tool_timeout`, and each result by `result_chars` after
  redaction, with a note asking for a narrower query when it was cut;
- an identical call (same tool, same arguments) is refused rather than run again.

Every tool result is redacted before Claude sees it (and before it enters the trace); a tool
that fails, times out or does not exist is answered with an `is_error` result naming what
failed, and the loop goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from analysis import prompting
from analysis.claude import (
    MAX_TOKENS,
    ClaudeAnswerError,
    ClaudeResult,
    tool_request,
    usage_of,
    validation_problems,
)
from analysis.cost import Price, Usage, cost_usd, price_for
from analysis.investigation.registry import ToolRegistry
from analysis.models import Diagnosis, InvestigationTrace, ToolCall
from analysis.redaction import redact
from analysis.redaction_json import redact_json

if TYPE_CHECKING:
    import anthropic
    from anthropic.types import (
        ContentBlockParam,
        MessageParam,
        ToolChoiceParam,
        ToolParam,
        ToolResultBlockParam,
    )

logger = logging.getLogger(__name__)

SUMMARY_CHARS = 160


@dataclass(frozen=True)
class InvestigationLimits:
    """The bounds of one investigation; each is a setting (docs/configuration.md)."""

    max_steps: int = 8
    tool_timeout: float = 10.0
    result_chars: int = 8000
    max_tokens: int = 200_000
    max_cost_usd: float = 0.10


@dataclass
class _Run:
    """The state of one investigation as it goes."""

    model: str
    tools: ToolRegistry
    messages: list[MessageParam]
    usage: Usage = field(default_factory=Usage)
    calls: list[ToolCall] = field(default_factory=list)
    numbered: int = 0
    seen: dict[str, int] = field(default_factory=dict)
    stopped: str = "concluded"


class Investigator:
    """Runs investigations through one Claude client; see the module docstring."""

    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        limits: InvestigationLimits | None = None,
        *,
        prices: dict[str, Price] | None = None,
        redact_ips: bool = False,
        max_tokens: int = MAX_TOKENS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from analysis.cost import DEFAULT_PRICES

        self.client = client
        self.limits = limits or InvestigationLimits()
        self.prices = prices or dict(DEFAULT_PRICES)
        self.redact_ips = redact_ips
        self.max_tokens = max_tokens
        self._clock = clock

    async def investigate(self, model: str, data: str, tools: ToolRegistry) -> ClaudeResult:
        """The analysis of the redacted, fenced evidence `data` after at most `max_steps`
        requests (one more to correct an invalid forced conclusion). Raises `ClaudeError`
        (with the usage spent) when none is recorded."""
        started = self._clock()
        run = _Run(model, tools, [{"role": "user", "content": prompting.render_user(data)}])
        forced = step = 0
        # A forced conclusion that does not validate gets one correction, as the single call
        # does: one request past `max_steps` at most.
        while forced < 2:
            step += 1
            final = step >= self.limits.max_steps or self._spent(run)
            if final:
                forced += 1
                if forced == 1:
                    run.stopped = "step limit" if step >= self.limits.max_steps else "budget"
            response = await self._request(run, final)
            run.usage = run.usage + usage_of(response)
            if final:
                # Only the recording tool was offered: nothing else may run now.
                run.tools = ToolRegistry()
            diagnosis = await self._step(run, step, response)
            if diagnosis is not None:
                if not final:
                    run.stopped = "concluded"
                trace = self._trace(run, step, self._clock() - started)
                return ClaudeResult(cited(diagnosis, trace), model, run.usage, trace)
        raise ClaudeAnswerError(
            f"no valid analysis within the investigation's bounds ({run.stopped})", run.usage
        )

    def _spent(self, run: _Run) -> bool:
        usage = run.usage
        tokens = (
            usage.input_tokens
            + usage.output_tokens
            + usage.cache_read_tokens
            + usage.cache_write_tokens
        )
        return tokens >= self.limits.max_tokens or self._cost(run) >= self.limits.max_cost_usd

    def _cost(self, run: _Run) -> float:
        return cost_usd(run.usage, price_for(run.model, self.prices))

    async def _request(self, run: _Run, final: bool) -> anthropic.types.Message:
        """One step's request: every tool with a tool call required, or on the final step
        only the recording tool, forced."""
        record: ToolParam = {
            "name": prompting.TOOL_NAME,
            "description": prompting.TOOL_DESCRIPTION,
            "input_schema": prompting.tool_schema(),
        }
        # The recording tool first: a client that defaults to the first tool concludes.
        offered: list[ToolParam] = [record] if final else [record, *(t.param() for t in run.tools)]
        offered[-1] = {**offered[-1], "cache_control": {"type": "ephemeral"}}
        choice: ToolChoiceParam = (
            {"type": "tool", "name": prompting.TOOL_NAME} if final else {"type": "any"}
        )
        system = prompting.system_prompt() + "\n\n" + investigation_prompt(self.limits.max_steps)
        return await tool_request(
            self.client,
            model=run.model,
            max_tokens=self.max_tokens,
            system=system,
            tools=offered,
            tool_choice=choice,
            messages=_with_breakpoint(run.messages),
            usage=run.usage,
        )

    async def _step(
        self, run: _Run, step: int, response: anthropic.types.Message
    ) -> Diagnosis | None:
        """Handles one answer: the valid analysis when it recorded one, else None after
        appending the answer and the tools' results to the conversation."""
        import anthropic

        if response.stop_reason == "refusal":
            raise ClaudeAnswerError("Claude declined to analyze this alert", run.usage)
        echoed: list[ContentBlockParam] = []
        uses: list[anthropic.types.ToolUseBlock] = []
        for block in response.content:
            if isinstance(block, anthropic.types.TextBlock) and block.text:
                echoed.append({"type": "text", "text": block.text})
            elif isinstance(block, anthropic.types.ToolUseBlock):
                echoed.append(
                    {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
                )
                uses.append(block)
        results: list[ToolResultBlockParam] = []
        for use in uses:
            if use.name != prompting.TOOL_NAME:
                continue
            try:
                return Diagnosis.model_validate(use.input)
            except ValidationError as exc:
                problem = validation_problems(exc)
                logger.info("investigation step %d: analysis did not validate: %s", step, problem)
                results.append(_record_error(use.id, problem))
        others = [use for use in uses if use.name != prompting.TOOL_NAME]
        # Numbered before they run concurrently, so numbers follow the order Claude asked in.
        first, run.numbered = run.numbered + 1, run.numbered + len(others)
        results += await asyncio.gather(
            *(self._call(run, step, number, use) for number, use in enumerate(others, first))
        )
        run.messages.append({"role": "assistant", "content": echoed or "(no answer)"})
        run.messages.append({"role": "user", "content": list(results) or _nudge()})
        return None

    async def _call(
        self, run: _Run, step: int, number: int, use: anthropic.types.ToolUseBlock
    ) -> ToolResultBlockParam:
        """Runs one tool call within its bounds; its result, redacted and capped, is both
        Claude's answer (headed by the number its evidence cites) and a line of the trace."""
        arguments = use.input if isinstance(use.input, dict) else {}
        key = json.dumps([use.name, arguments], sort_keys=True, default=str)
        started = self._clock()
        text, failed = await self._outcome(run, step, use.name, arguments, key)
        text = self._cap(text)
        run.calls.append(
            ToolCall(
                number=number,
                step=step,
                tool=use.name,
                arguments=redact_json(arguments, redact_ips=self.redact_ips),
                result=" ".join(text.split())[:SUMMARY_CHARS],
                is_error=failed,
                seconds=round(self._clock() - started, 3),
            )
        )
        return {
            "type": "tool_result",
            "tool_use_id": use.id,
            "content": f"[call #{number}]\n{text}",
            "is_error": failed,
        }

    async def _outcome(
        self, run: _Run, step: int, name: str, arguments: dict[str, Any], key: str
    ) -> tuple[str, bool]:
        """The redacted text of a call's result and whether it failed."""
        if key in run.seen:
            where = "above" if run.seen[key] < step else "beside this one"
            return (
                f"Refused: this identical call to {name} was already made at step "
                f"{run.seen[key]}; its result is {where}. Change the arguments or conclude "
                f"with {prompting.TOOL_NAME}.",
                True,
            )
        run.seen[key] = step
        tool = run.tools.get(name)
        if tool is None:
            known = ", ".join(t.name for t in run.tools) or "none"
            return f"There is no tool named {name!r}; the tools are: {known}.", True
        try:
            value = await asyncio.wait_for(tool.run(arguments), self.limits.tool_timeout)
        except TimeoutError:
            return f"{name} timed out after {self.limits.tool_timeout:g}s.", True
        except Exception as exc:  # a failing tool is an answer, never the end of the loop
            logger.info("investigation tool %s failed", name, exc_info=exc)
            return redact(
                f"{name} failed: {type(exc).__name__}: {exc}", redact_ips=self.redact_ips
            ), True
        return self._render(value), False

    def _render(self, value: Any) -> str:
        """A tool's value as redacted text: strings as they are, anything else as JSON whose
        structure the redaction uses (a value under a secret-named key goes whole)."""
        if isinstance(value, str):
            return redact(value, redact_ips=self.redact_ips)
        plain = json.loads(json.dumps(value, default=str))
        return json.dumps(
            redact_json(plain, redact_ips=self.redact_ips), ensure_ascii=False, indent=1
        )

    def _cap(self, text: str) -> str:
        """Cut after redaction, so that a secret cut in half cannot escape its pattern."""
        cap = self.limits.result_chars
        if len(text) <= cap:
            return text
        return (
            text[:cap] + f"\n[cut: this result was {len(text)} characters, only the first "
            f"{cap} are shown. Narrow the query (a shorter time range, a filter, a lower "
            "limit) to see the rest.]"
        )

    def _trace(self, run: _Run, steps: int, seconds: float) -> InvestigationTrace:
        return InvestigationTrace(
            steps=steps,
            calls=sorted(run.calls, key=lambda call: call.number),
            stopped=run.stopped,
            input_tokens=run.usage.input_tokens,
            output_tokens=run.usage.output_tokens,
            cache_read_tokens=run.usage.cache_read_tokens,
            cache_write_tokens=run.usage.cache_write_tokens,
            cost_usd=self._cost(run),
            seconds=round(seconds, 3),
        )


def cited(diagnosis: Diagnosis, trace: InvestigationTrace) -> Diagnosis:
    """The diagnosis with its evidence citing only calls that answered: a number Claude
    invented, or a call that failed or was refused, must not read as support. A claim left
    citing nothing is kept, visibly bare."""
    made = {call.number for call in trace.calls if not call.is_error}
    evidence = [
        item.model_copy(update={"calls": sorted({n for n in item.calls if n in made})})
        for item in diagnosis.evidence
    ]
    return diagnosis.model_copy(update={"evidence": evidence})


def investigation_prompt(max_steps: int) -> str:
    """What the system prompt adds for an investigation."""
    return prompting.read_prompt("investigation.md").strip().format(max_steps=max_steps)


def _record_error(tool_use_id: str, problem: str) -> ToolResultBlockParam:
    return {
        "type": "tool_result",
        "tool_use_id": tool_use_id,
        "is_error": True,
        "content": "The analysis did not match the tool's schema: "
        f"{problem}. Call {prompting.TOOL_NAME} again with every field valid.",
    }


def _nudge() -> str:
    return f"Call a tool, or conclude with {prompting.TOOL_NAME}."


def _with_breakpoint(messages: list[MessageParam]) -> list[MessageParam]:
    """The conversation with a cache breakpoint on its last block, so that each step reads
    the previous steps from the prompt cache instead of paying for them again."""
    *head, last = messages
    content = last["content"]
    blocks: list[Any] = (
        [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    )
    blocks[-1] = {**blocks[-1], "cache_control": {"type": "ephemeral"}}
    return [*head, {"role": last["role"], "content": blocks}]
