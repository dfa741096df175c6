"""The team's MCP servers (`MCP_SERVERS_FILE`) as tools of the investigation.

`McpTools` is a `ToolSource`, and `tools_for` is synchronous, so the tools must be known
before an incident arrives: `start` connects to every server in the background, lists each
one's tools once and keeps its session open (`mcp_session`). A server that does not start or
answer within `connect_timeout` is logged and skipped, never the bot's failure, and tried
again every `retry_interval` until it answers; its tools are offered from then on.

What is offered, per server: the tools its allow-list names, and with `read_only` (the
default) only those the server annotates read-only. Each is offered as `<server>__<tool>`,
and a call is checked against the same list again before it goes out, so a tool that was not
offered cannot be called whatever name Claude sends. A result is returned as its text, parsed
when it is JSON so that the loop's redaction sees the keys; a result the server flags
`isError` raises `McpToolError`. The loop redacts and caps every result, as for any tool.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mcp_types

from analysis.investigation.mcp_servers import McpServer
from analysis.investigation.mcp_session import McpClosedError, McpSession, McpUnavailableError
from analysis.investigation.registry import Tool, ToolRegistry

if TYPE_CHECKING:
    from incidents.models import Alert, Incident

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
RETRY_INTERVAL = 300.0
DESCRIPTION_CHARS = 1000
SEPARATOR = "__"
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


class McpToolError(Exception):
    """The server ran the tool and reported that it failed."""


@dataclass(frozen=True)
class Offer:
    """What one server's listing comes to: the tools offered, and the allow-listed tools
    withheld, each with why (for the log and `doctor`)."""

    tools: list[tuple[str, mcp_types.Tool]]
    withheld: dict[str, str]


def offer(server: McpServer, listed: Sequence[mcp_types.Tool]) -> Offer:
    """The allow-listed tools of `server` that may be offered, under their namespaced names.
    Each name once, even from a list the file's check did not see: a tool offered twice makes
    the investigation's tool list, and so every investigated analysis, fail."""
    by_name = {tool.name: tool for tool in listed}
    tools: list[tuple[str, mcp_types.Tool]] = []
    withheld: dict[str, str] = {}
    for name in dict.fromkeys(server.tools):
        tool = by_name.get(name)
        offered = f"{server.name}{SEPARATOR}{name}"
        if tool is None:
            withheld[name] = "not listed by the server"
        elif server.read_only and not (tool.annotations and tool.annotations.read_only_hint):
            withheld[name] = "not annotated read-only (read_only: false would offer it)"
        elif not _TOOL_NAME.match(offered):
            withheld[name] = f"{offered!r} is not a valid tool name for Claude"
        elif (odd := _schema_problem(tool.input_schema)) is not None:
            withheld[name] = odd
        else:
            tools.append((offered, tool))
    return Offer(tools, withheld)


def _schema_problem(schema: dict[str, Any]) -> str | None:
    """Why the Messages API would refuse this input schema, if it would. It refuses the whole
    request, not the one tool, so one odd tool would fail every investigated analysis."""
    if not schema:
        return None
    if schema.get("type") != "object":
        return f"its input schema is not an object schema (type: {schema.get('type')!r})"
    composed = [key for key in ("oneOf", "anyOf", "allOf") if key in schema]
    if composed:
        return f"its input schema has {', '.join(composed)} at the top level"
    return None


class McpTools:
    """The team's MCP servers' tools; see the module docstring."""

    def __init__(
        self,
        servers: Sequence[McpServer],
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        retry_interval: float = RETRY_INTERVAL,
    ) -> None:
        self.sessions = {server.name: McpSession(server, connect_timeout) for server in servers}
        self.retry_interval = retry_interval
        self._tools: dict[str, list[Tool]] = {}
        self._callable: dict[str, set[str]] = {}
        self._connecting: asyncio.Task[None] | None = None
        self._tried = asyncio.Event()
        self._closed = False

    def start(self) -> None:
        """Connects in the background: an unreachable server never holds up the caller."""
        if self._connecting is None and not self._closed:
            self._connecting = asyncio.create_task(self._keep_connecting(), name="mcp-servers")

    async def ready(self) -> None:
        """Waits for the first attempt at every server (each bounded by `connect_timeout`):
        a one-shot command wants the tools before its one analysis. Returns at once after
        `close`."""
        self.start()
        if self._connecting is not None:
            await self._tried.wait()

    async def close(self) -> None:
        """Closes every session for good: a call still in flight, or made later, raises
        `McpClosedError` instead of starting its server again after the bot stopped."""
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
            await asyncio.gather(self._connecting, return_exceptions=True)
        self._tried.set()
        await asyncio.gather(*(session.close() for session in self.sessions.values()))

    def tools_for(self, incident: Incident, alert: Alert) -> ToolRegistry:
        """Every offered tool of the servers connected so far (none is scoped by incident)."""
        return ToolRegistry(tool for tools in self._tools.values() for tool in tools)

    async def call(self, server: str, tool: str, arguments: dict[str, Any]) -> Any:
        """The value of one call; refused unless `tool` is offered for `server`."""
        if self._closed:
            raise McpClosedError(f"MCP server {server}: closed, the bot is stopping")
        session = self.sessions.get(server)
        if session is None or tool not in self._callable.get(server, set()):
            raise PermissionError(
                f"{server}{SEPARATOR}{tool} is not a tool the MCP servers file allows"
            )
        return result_value(await session.call(tool, arguments))

    async def _keep_connecting(self) -> None:
        """`_tried` is set however this ends, so that `ready` never waits forever."""
        try:
            while True:
                waiting = [s for name, s in self.sessions.items() if name not in self._tools]
                await asyncio.gather(*(self._open(session) for session in waiting))
                self._tried.set()
                if len(self._tools) == len(self.sessions):
                    return
                await asyncio.sleep(self.retry_interval)
        finally:
            self._tried.set()

    async def _open(self, session: McpSession) -> None:
        """One server's attempt. Whatever goes wrong is that server's failure only: it is
        logged and tried again with the others, never the end of the retrying."""
        server = session.server
        try:
            self._offer(server, await session.open())
        except McpUnavailableError as exc:
            logger.warning(
                "MCP server %s skipped: %s; trying again in %gs", server.name, exc,
                self.retry_interval,
            )  # fmt: skip
        except Exception:
            logger.exception(
                "MCP server %s skipped: unexpected error; trying again in %gs", server.name,
                self.retry_interval,
            )  # fmt: skip

    def _offer(self, server: McpServer, listed: list[mcp_types.Tool]) -> None:
        offered = offer(server, listed)
        for name, why in offered.withheld.items():
            logger.warning("MCP server %s: tool %s not offered: %s", server.name, name, why)
        self._callable[server.name] = {tool.name for _, tool in offered.tools}
        self._tools[server.name] = [self._tool(server, name, tool) for name, tool in offered.tools]
        logger.info(
            "MCP server %s (%s): offering %s",
            server.name,
            server.transport,
            ", ".join(name for name, _ in offered.tools) or "no tools",
        )

    def _tool(self, server: McpServer, offered: str, tool: mcp_types.Tool) -> Tool:
        async def run(arguments: dict[str, Any]) -> Any:
            return await self.call(server.name, tool.name, arguments)

        about = tool.description or tool.title or tool.name
        description = f"[{server.name} MCP server, the team's own] {about}"
        schema = dict(tool.input_schema) if tool.input_schema else _EMPTY_SCHEMA
        return Tool(offered, description[:DESCRIPTION_CHARS], schema, run)


def result_value(result: mcp_types.CallToolResult) -> Any:
    """A call's result as the loop renders it: its text, parsed when it is JSON so that
    redaction sees the keys (a server sends structured content as JSON text too), else the
    structured content when there is no text at all."""
    text = "\n".join(_block_text(block) for block in result.content)
    if result.is_error:
        raise McpToolError(text or "the tool reported an error without a message")
    if not result.content and result.structured_content is not None:
        return result.structured_content
    if text.lstrip()[:1] in ("{", "["):
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            return text
        return parsed
    return text


def _block_text(block: Any) -> str:
    if isinstance(block, mcp_types.TextContent):
        return block.text
    if isinstance(block, mcp_types.EmbeddedResource):
        resource = block.resource
        if isinstance(resource, mcp_types.TextResourceContents):
            return resource.text
        return f"[binary resource {resource.uri} omitted]"
    if isinstance(block, mcp_types.ResourceLink):
        return f"[resource {block.uri}]"
    kind = getattr(block, "type", "content")
    return f"[{kind} omitted]"


async def check(server: McpServer, connect_timeout: float = CONNECT_TIMEOUT) -> str:
    """`doctor`'s line for one server: it starts, answers, and offers every tool its
    allow-list names; raises naming what is wrong otherwise."""
    session = McpSession(server, connect_timeout)
    try:
        offered = offer(server, await session.open())
    finally:
        await session.close()
    if offered.withheld:
        raise McpUnavailableError(
            "; ".join(f"{name}: {why}" for name, why in offered.withheld.items())
        )
    names = ", ".join(name for name, _ in offered.tools)
    return f"{server.transport} {server.where}: offers {names}"
