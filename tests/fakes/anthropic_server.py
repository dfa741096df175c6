"""A local fake of the Anthropic Messages API (`POST /v1/messages`) for integration tests.

The real `anthropic.AsyncAnthropic` client is pointed at it with `base_url=fake.url` (or
`ANTHROPIC_BASE_URL`), so our Claude client is exercised through the SDK's real request
building, header handling, retry loop, timeouts and response parsing. Nothing here is a mock
of our code: the test scripts what "the model" answers, and asserts on what was sent.

Wire format follows the public API and the SDK 0.125 types (`anthropic.types.Message`,
`Usage`, the error envelope `{"type": "error", "error": {...}, "request_id": ...}`).
Deliberate simplifications: no streaming (rejected with a 400 so it cannot pass silently),
tokens are estimated as ~4 characters of JSON each, and cache entries never expire.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import secrets
import string
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

from aiohttp import web

from tests.fakes.local_server import LocalServer

# The real API allows at most this many `cache_control` breakpoints in one request.
MAX_CACHE_BREAKPOINTS = 4
# From a breakpoint, the real API also looks for cache hits this many blocks back, which is
# what lets a growing conversation with one moving breakpoint read the previous turn's entry.
CACHE_LOOKBACK_BLOCKS = 20
# How long stop() lets an in-flight request finish before cancelling it; short, because a
# test that stops the fake mid-request (e.g. a pending Delay) should not hang its teardown.
_SHUTDOWN_GRACE_SECONDS = 0.5
_ID_ALPHABET = string.ascii_letters + string.digits
_CACHE_TTLS = ("5m", "1h")


@dataclass(frozen=True)
class ToolUse:
    """The model calls a tool: `stop_reason: "tool_use"` and one `tool_use` block.

    `name` defaults to the tool the request forces with `tool_choice: {"type": "tool"}`, else
    the first declared tool, so a test scripts only the input it cares about. `input` is sent
    as given, unvalidated, so tests can also script a model that violates the schema.
    """

    input: dict[str, Any]
    name: str | None = None


@dataclass(frozen=True)
class Turn:
    """A whole recorded answer: its content blocks as the model gave them (text, and any
    number of `{"type": "tool_use", "name": ..., "input": ...}`, ids filled in here), and
    optionally the usage the real API reported for it, so a replayed recording costs what the
    recorded run cost; without it the usage is estimated as for any other answer.

    A `tool_use` naming a tool the request does not declare is refused with a 400, because a
    real model cannot call it: a replay out of step with its recording fails loudly."""

    blocks: tuple[dict[str, Any], ...]
    usage: dict[str, Any] | None = None


@dataclass(frozen=True)
class Text:
    """The model answers in prose without calling a tool (`stop_reason: "end_turn"`)."""

    text: str


@dataclass(frozen=True)
class Refusal:
    """The safety classifiers stop the model: HTTP 200 with `stop_reason: "refusal"`.

    The real API sends whatever text was produced before the stop (often nothing) and no
    refusal message of its own; `category` fills `stop_details.category` (SDK 0.125 field).
    """

    partial_text: str = ""
    category: str | None = None


@dataclass(frozen=True)
class Error:
    """An HTTP error in the API's envelope, to drive the SDK's retry and exception mapping.

    `retry_after` (seconds) sets the `retry-after` header, which the SDK honours when it is
    in (0, 60]; `should_retry` sets `x-should-retry`, which overrides the SDK's status rules.
    """

    status: int
    error_type: str
    message: str
    retry_after: float | None = None
    should_retry: bool | None = None

    @classmethod
    def rate_limit(cls, retry_after: float | None = None) -> Error:
        """429 `rate_limit_error`: our organisation is over its per-minute limit."""
        return cls(
            429,
            "rate_limit_error",
            "This request would exceed the rate limit for your organization.",
            retry_after,
        )

    @classmethod
    def overloaded(cls, retry_after: float | None = None) -> Error:
        """529 `overloaded_error`: the API is busy for everyone (the SDK's OverloadedError)."""
        return cls(529, "overloaded_error", "Overloaded", retry_after)

    @classmethod
    def api_error(cls, retry_after: float | None = None) -> Error:
        """500 `api_error`: an unexpected failure inside the API."""
        return cls(500, "api_error", "Internal server error", retry_after)

    @classmethod
    def invalid_request(cls, message: str) -> Error:
        """400 `invalid_request_error`: the request itself is wrong, so retrying cannot help."""
        return cls(400, "invalid_request_error", message)


@dataclass(frozen=True)
class Delay:
    """Wait `seconds` before answering with `then` (None: the default responder).

    Used to provoke client timeouts. The request is recorded on arrival; if the client gives
    up, its connection closes and the handler is cancelled, so `then` is never sent and has
    no effect (no cache write). The SDK retries timeouts, so script one Delay per attempt.
    """

    seconds: float
    then: Response | None = None


Response: TypeAlias = ToolUse | Turn | Text | Refusal | Error | Delay
Responder: TypeAlias = Callable[[dict[str, Any]], Response]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it arrived, so tests assert on what our client really sent."""

    headers: dict[str, str]
    """Header names lower-cased (HTTP names are case-insensitive; the SDK mixes cases)."""
    raw: bytes
    """The body exactly as received."""
    body: dict[str, Any] | None
    """The body parsed as JSON, or None when it was not a JSON object."""

    @property
    def prompt_text(self) -> str:
        """Every string in `system` and `messages`, newline-joined, for redaction asserts.

        Decoded from JSON, so escaping in `raw` cannot hide or fake a match.
        """
        if self.body is None:
            return ""
        return "\n".join(_strings([self.body.get("system"), self.body.get("messages")]))


def _strings(value: object) -> list[str]:
    """All string leaves of a JSON value, in document order."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def _new_id(prefix: str) -> str:
    """An id shaped like the API's (`msg_01…`, `toolu_01…`, `req_01…`)."""
    return prefix + "01" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(22))


def _tokens(value: object) -> int:
    """Estimate tokens as ~4 characters of compact JSON: stable, monotonic, and good enough."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return max(1, math.ceil(len(text) / 4))


@dataclass(frozen=True)
class _Segment:
    """One unit of the prompt in the order the API renders it: tools, system, messages."""

    tokens: int
    key: bytes
    """What prefix caching matches on: the content without its `cache_control` marker."""
    ttl: str | None
    """Set when this segment carries a `cache_control` breakpoint."""


def _breakpoint_ttl(control: object) -> str | None:
    """The TTL a `cache_control` value asks for, or None when it is not a breakpoint."""
    if isinstance(control, dict) and control.get("type") == "ephemeral":
        return str(control.get("ttl", "5m"))
    return None


def _segment(item: object, tokens: int | None = None) -> _Segment:
    """Key and size a prompt item; `tokens` overrides the estimate for marker segments."""
    ttl = None
    content = item
    if isinstance(item, dict):
        ttl = _breakpoint_ttl(item.get("cache_control"))
        content = {name: value for name, value in item.items() if name != "cache_control"}
    key = json.dumps(content, sort_keys=True).encode()
    return _Segment(_tokens(content) if tokens is None else tokens, key, ttl)


def _segments(body: dict[str, Any]) -> list[_Segment]:
    """Split the prompt into segments; cached prefixes end at segments with a breakpoint."""
    segments = [_segment(tool) for tool in body.get("tools") or []]
    system = body.get("system")
    if isinstance(system, str):
        segments.append(_segment({"type": "text", "text": system}))
    elif isinstance(system, list):
        segments.extend(_segment(block) for block in system)
    # The docs: changing tool_choice invalidates cached message blocks but not tools/system.
    segments.append(_segment({"tool_choice": body.get("tool_choice")}, tokens=0))
    for message in body["messages"]:
        role = message.get("role") if isinstance(message, dict) else None
        content = message.get("content") if isinstance(message, dict) else message
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
        for block in blocks:
            if isinstance(block, dict):
                segments.append(_segment({"role": role, **block}))
            else:
                segments.append(_segment({"role": role, "block": block}))
    # Top-level cache_control ("automatic caching") marks the last block of the request.
    automatic = _breakpoint_ttl(body.get("cache_control"))
    if automatic is not None and segments[-1].ttl is None:
        segments[-1] = replace(segments[-1], ttl=automatic)
    return segments


def _error_response(error: Error) -> web.Response:
    """The API's error envelope; the SDK reads `error.type` and the retry headers from it."""
    request_id = _new_id("req_")
    headers = {"request-id": request_id}
    if error.retry_after is not None:
        headers["retry-after"] = f"{error.retry_after:g}"
    if error.should_retry is not None:
        headers["x-should-retry"] = "true" if error.should_retry else "false"
    payload = {
        "type": "error",
        "error": {"type": error.error_type, "message": error.message},
        "request_id": request_id,
    }
    return web.json_response(payload, status=error.status, headers=headers)


class FakeAnthropic(LocalServer):
    """`POST /v1/messages` on 127.0.0.1 with scripted answers and recorded requests.

    Each request is validated like the real API (auth and version headers, required fields),
    then answered by the next scripted response, or by `default` when the script is empty.
    Requests the fake itself rejects do not consume the script, as the real API rejects them
    before the model runs.
    """

    def __init__(
        self,
        default_tool_input: dict[str, Any] | None = None,
        *,
        api_key: str | None = None,
        min_cache_tokens: int = 0,
    ) -> None:
        """Configure the fake; it listens only after start() or `async with`.

        Args:
            default_tool_input: what the default responder's ToolUse carries, so a test
                that scripts nothing still gets a tool call its code accepts.
            api_key: when set, any other `x-api-key` gets 401 "invalid x-api-key"; when
                None, any non-empty key passes (only its presence is checked).
            min_cache_tokens: prefixes shorter than this are not cached, as the real API
                skips short prefixes (1024 tokens on most models); 0 lets small prompts cache.
        """
        super().__init__()
        self._default_tool_input = dict(default_tool_input or {})
        self._api_key = api_key
        self._min_cache_tokens = min_cache_tokens
        self._script: deque[Response] = deque()
        self._cache: set[bytes] = set()
        self.requests: list[RecordedRequest] = []
        self.default: Responder = self._default_tool_use

    def enqueue(self, *responses: Response) -> None:
        """Append answers for the next requests, in arrival order (retries included)."""
        self._script.extend(responses)

    @property
    def pending(self) -> int:
        """Scripted answers not yet used: lets a test check its script was consumed."""
        return len(self._script)

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self._handle_messages)
        # handler_cancellation: a client that timed out closes its connection, and the
        # pending Delay must then die rather than answer later and touch the cache.
        return app

    def make_runner(self, app: web.Application) -> web.AppRunner:
        # handler_cancellation: a client that timed out closes its connection, and the
        # pending Delay must then die rather than answer later and touch the cache.
        return web.AppRunner(
            app,
            handler_cancellation=True,
            shutdown_timeout=_SHUTDOWN_GRACE_SECONDS,
            access_log=None,
        )

    def _default_tool_use(self, body: dict[str, Any]) -> Response:
        return ToolUse(dict(self._default_tool_input))

    async def _handle_messages(self, request: web.Request) -> web.Response:
        raw = await request.read()
        headers = {name.lower(): value for name, value in request.headers.items()}
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        body = parsed if isinstance(parsed, dict) else None
        self.requests.append(RecordedRequest(headers=headers, raw=raw, body=body))

        checked = self._validate(headers, body)
        if isinstance(checked, Error):
            return _error_response(checked)
        response = self._script.popleft() if self._script else self.default(checked)
        while isinstance(response, Delay):
            await asyncio.sleep(response.seconds)
            response = response.then if response.then is not None else self.default(checked)
        if isinstance(response, Error):
            return _error_response(response)
        return self._message(checked, response)

    def _validate(
        self, headers: dict[str, str], body: dict[str, Any] | None
    ) -> dict[str, Any] | Error:
        """Reject what the real API rejects, with its status, type and (where known) wording."""
        key = headers.get("x-api-key")
        if not key:
            return Error(401, "authentication_error", "x-api-key header is required")
        if self._api_key is not None and key != self._api_key:
            return Error(401, "authentication_error", "invalid x-api-key")
        if not headers.get("anthropic-version"):
            return Error.invalid_request("anthropic-version: header is required")
        if body is None:
            return Error.invalid_request("The request body is not valid JSON.")
        for field in ("model", "max_tokens", "messages"):
            if field not in body:
                return Error.invalid_request(f"{field}: Field required")
        if not isinstance(body["messages"], list) or not body["messages"]:
            return Error.invalid_request("messages: at least one message is required")
        if body.get("stream"):
            return Error.invalid_request("FakeAnthropic does not implement streaming")
        breakpoints = [segment.ttl for segment in _segments(body) if segment.ttl is not None]
        if len(breakpoints) > MAX_CACHE_BREAKPOINTS:
            return Error.invalid_request(
                f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be"
                f" provided. Found {len(breakpoints)}."
            )
        if any(ttl not in _CACHE_TTLS for ttl in breakpoints):
            return Error.invalid_request("cache_control.ttl: Input should be '5m' or '1h'")
        if breakpoints != sorted(breakpoints, key=lambda ttl: ttl != "1h"):
            return Error.invalid_request(
                "cache_control: breakpoints with ttl '1h' must come before those with ttl '5m'"
            )
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") == "tool":
            declared = {tool.get("name") for tool in body.get("tools") or []}
            if choice.get("name") not in declared:
                return Error.invalid_request(
                    f"tool_choice names tool {choice.get('name')!r}, which is not in tools"
                )
        return body

    def _message(
        self, body: dict[str, Any], response: ToolUse | Turn | Text | Refusal
    ) -> web.Response:
        """Build a 200 response that parses as `anthropic.types.Message`."""
        extra: dict[str, Any] = {}
        if isinstance(response, Turn):
            return self._turn(body, response)
        if isinstance(response, ToolUse):
            name = response.name or _tool_to_call(body)
            if name is None:
                return _error_response(
                    Error.invalid_request("FakeAnthropic: ToolUse scripted, but no tools sent")
                )
            content: list[dict[str, Any]] = [
                {"type": "tool_use", "id": _new_id("toolu_"), "name": name, "input": response.input}
            ]
            stop_reason = "tool_use"
        elif isinstance(response, Text):
            content = [{"type": "text", "text": response.text}]
            stop_reason = "end_turn"
        else:
            content = (
                [{"type": "text", "text": response.partial_text}] if response.partial_text else []
            )
            stop_reason = "refusal"
            extra["stop_details"] = {
                "type": "refusal",
                "category": response.category,
                "explanation": None,
            }
        request_id = _new_id("req_")
        payload = {
            "id": _new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            **extra,
            "usage": self._usage(body, content),
        }
        return web.json_response(payload, headers={"request-id": request_id})

    def _turn(self, body: dict[str, Any], turn: Turn) -> web.Response:
        """A recorded answer, block for block."""
        declared = {tool.get("name") for tool in body.get("tools") or []}
        content: list[dict[str, Any]] = []
        for block in turn.blocks:
            if block.get("type") == "tool_use":
                if block.get("name") not in declared:
                    return _error_response(
                        Error.invalid_request(
                            f"FakeAnthropic: the recorded tool_use names {block.get('name')!r},"
                            " which is not in tools"
                        )
                    )
                block = {"id": _new_id("toolu_"), **block}
            content.append(block)
        uses = any(block.get("type") == "tool_use" for block in content)
        payload = {
            "id": _new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": "tool_use" if uses else "end_turn",
            "stop_sequence": None,
            "usage": turn.usage if turn.usage is not None else self._usage(body, content),
        }
        return web.json_response(payload, headers={"request-id": _new_id("req_")})

    def _usage(self, body: dict[str, Any], content: list[dict[str, Any]]) -> dict[str, Any]:
        """Token usage with prompt caching emulated the way the API reports it.

        The prompt is tools, system, then messages; a `cache_control` block ends a cacheable
        prefix. From each breakpoint the API looks up to CACHE_LOOKBACK_BLOCKS block
        boundaries back for a prefix already cached (same model, same content): the longest
        hit is read. Each breakpoint prefix beyond it is written and charged to its TTL.
        `input_tokens` is what remains: total = input + cache_creation + cache_read.
        """
        segments = _segments(body)
        digest = hashlib.sha256(str(body["model"]).encode())
        boundaries: list[tuple[int, bytes]] = []  # (prefix tokens, prefix key) per segment end
        total = 0
        for segment in segments:
            digest.update(segment.key)
            total += segment.tokens
            boundaries.append((total, digest.digest()))
        breakpoints = [
            (index, segment.ttl)
            for index, segment in enumerate(segments)
            if segment.ttl is not None and boundaries[index][0] >= self._min_cache_tokens
        ]
        read = 0
        for index, _ in breakpoints:
            window = boundaries[max(0, index - CACHE_LOOKBACK_BLOCKS) : index + 1]
            hits = [tokens for tokens, key in window if key in self._cache]
            read = max([read, *hits])
        created = dict.fromkeys(_CACHE_TTLS, 0)
        covered = read
        for index, ttl in breakpoints:
            tokens, key = boundaries[index]
            if tokens > covered:
                created[ttl] += tokens - covered
                covered = tokens
                self._cache.add(key)
        creation = sum(created.values())
        return {
            "input_tokens": total - read - creation,
            "cache_creation_input_tokens": creation,
            "cache_read_input_tokens": read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": created["5m"],
                "ephemeral_1h_input_tokens": created["1h"],
            },
            "output_tokens": _tokens(content),
            "service_tier": "standard",
        }


def _tool_to_call(body: dict[str, Any]) -> str | None:
    """The tool a forced `tool_choice` names, else the first declared tool."""
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool":
        return str(choice["name"])
    tools = body.get("tools") or []
    return str(tools[0]["name"]) if tools else None
