"""One team MCP server's long-lived session, through the official SDK's `Client`.

The SDK's transports are anyio task groups, which must be left by the task that entered them,
while tool calls come from whichever task runs an investigation. So each session has an owner
task that enters the transport and the client, publishes the client, and holds them until it
is told to let go; calls only send requests on the published client. A call that finds the
connection lost (the process died, the HTTP server went away) asks for one new session and
tries once more; if that fails too, the call raises, which the loop answers as an error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx2
import mcp_types
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from pydantic import ValidationError

from analysis.investigation.mcp_servers import McpServer

logger = logging.getLogger(__name__)

CLOSE_SECONDS = 6.0
"""How long a session gets to close: the SDK gives a stdio server 2 s to exit after its stdin
closes, then 2 s after SIGTERM before it kills it."""
MAX_PAGES = 20
"""A tool listing longer than this many pages is cut rather than walked forever."""
HTTP_TIMEOUT = httpx2.Timeout(30.0, read=300.0)
"""The SDK's own defaults for its HTTP client: the read waits on a server's event stream."""


class McpUnavailableError(Exception):
    """The server did not start, or did not answer, within its time."""


class McpSession:
    """The session with one server; see the module docstring."""

    def __init__(self, server: McpServer, connect_timeout: float) -> None:
        self.server = server
        self.connect_timeout = connect_timeout
        self._client: Client | None = None
        self._owner: asyncio.Task[None] | None = None
        self._release: asyncio.Event | None = None
        self._lock = asyncio.Lock()
        self._refused: int | None = None
        """The last HTTP error status: the SDK reports a 401 as only "an error response"."""

    async def open(self) -> list[mcp_types.Tool]:
        """Connects and lists the server's tools. Raises `McpUnavailableError` when it does
        not start or answer within `connect_timeout`."""
        async with self._lock:
            return await self._connect()

    async def call(self, tool: str, arguments: dict[str, Any]) -> mcp_types.CallToolResult:
        """The server's result for one call; a lost connection gets one new session."""
        client = self._client
        if client is not None:
            try:
                return await client.call_tool(tool, arguments)
            except Exception as exc:
                if not _connection_lost(exc):
                    raise
                logger.warning(
                    "MCP server %s: connection lost (%s); reconnecting",
                    self.server.name,
                    describe(exc),
                )
        async with self._lock:
            if self._client is None or self._client is client:
                await self._connect()
            client = self._client
        assert client is not None
        return await client.call_tool(tool, arguments)

    async def close(self) -> None:
        async with self._lock:
            await self._disconnect()

    async def _connect(self) -> list[mcp_types.Tool]:
        await self._disconnect()
        self._refused = None
        ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        release = asyncio.Event()
        self._release = release
        self._owner = asyncio.create_task(
            self._own(ready, release), name=f"mcp-server-{self.server.name}"
        )
        try:
            async with asyncio.timeout(self.connect_timeout):
                client = await ready
                tools = await _list_tools(client)
        except BaseException as exc:
            await self._disconnect()
            if isinstance(exc, TimeoutError):
                raise McpUnavailableError(
                    f"no answer within {self.connect_timeout:g}s from {self.server.where}"
                ) from None
            if isinstance(exc, Exception):
                status = f" (HTTP {self._refused})" if self._refused else ""
                raise McpUnavailableError(f"{self.server.where}: {describe(exc)}{status}") from None
            raise
        self._client = client
        return tools

    async def _own(self, ready: asyncio.Future[Client], release: asyncio.Event) -> None:
        """Holds the transport and the client from entering to leaving, in this one task."""
        try:
            async with self._connected() as client:
                if not ready.done():
                    ready.set_result(client)
                await release.wait()
        except Exception as exc:
            if not ready.done():
                ready.set_exception(exc)
            else:
                logger.info("MCP server %s: session ended: %s", self.server.name, describe(exc))

    @asynccontextmanager
    async def _connected(self) -> AsyncIterator[Client]:
        server = self.server
        async with AsyncExitStack() as stack:
            if server.url is not None:
                headers = {k: v.get_secret_value() for k, v in server.headers.items()}
                hooks = {"response": [self._note_status]}
                http = await stack.enter_async_context(
                    httpx2.AsyncClient(headers=headers, timeout=HTTP_TIMEOUT, event_hooks=hooks)
                )
                client = Client(streamable_http_client(server.url, http_client=http))
            else:
                assert server.command is not None
                client = Client(
                    StdioServerParameters(
                        command=server.command,
                        args=server.args,
                        env={k: v.get_secret_value() for k, v in server.env.items()},
                        cwd=server.cwd,
                    )
                )
            yield await stack.enter_async_context(client)

    async def _note_status(self, response: httpx2.Response) -> None:
        if response.status_code >= 400:
            self._refused = response.status_code

    async def _disconnect(self) -> None:
        """Tells the owner to let go (or cancels it while it is still connecting) and waits
        for it, within `CLOSE_SECONDS`."""
        owner, release, connected = self._owner, self._release, self._client is not None
        self._owner = self._release = self._client = None
        if owner is None or release is None:
            return
        release.set()
        if not connected:
            owner.cancel()
        _, pending = await asyncio.wait({owner}, timeout=CLOSE_SECONDS)
        if pending:
            logger.warning("MCP server %s: did not close in time, cancelled", self.server.name)
            owner.cancel()
            await asyncio.wait({owner}, timeout=CLOSE_SECONDS)


async def _list_tools(client: Client) -> list[mcp_types.Tool]:
    tools: list[mcp_types.Tool] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


def _connection_lost(exc: Exception) -> bool:
    """Whether a failed call says the session is gone (worth a new one) rather than that the
    server refused the request (which a new session would only repeat)."""
    if isinstance(exc, MCPError):
        return exc.code == mcp_types.CONNECTION_CLOSED
    return not isinstance(exc, ValidationError)


def describe(exc: BaseException) -> str:
    """The innermost reason: the SDK's task groups wrap a refused connection or a command
    that does not exist in exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
