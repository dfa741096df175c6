"""One team MCP server's long-lived session, through the official SDK's `Client`.

The SDK's transports are anyio task groups, which must be left by the task that entered them,
while tool calls come from whichever task runs an investigation. So each session has an owner
task that enters the transport and the client, publishes the client, and holds them until it
is told to let go; calls only send requests on the published client. A call that finds the
connection lost (the process died, the HTTP server went away or restarted) asks for one new
session and tries once more; if that fails too, the call raises, which the loop answers as an
error. The new session is made by a task of the session's own, which a call waits for only
within its own time. Once closed, a session never connects again.
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
from mcp.client.streamable_http import MCP_SESSION_ID, streamable_http_client
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


class McpClosedError(McpUnavailableError):
    """The session was closed (the bot is stopping): a call still in flight must not start
    the server again, which would leave it running after the bot."""


class McpSession:
    """The session with one server; see the module docstring."""

    def __init__(self, server: McpServer, connect_timeout: float) -> None:
        self.server = server
        self.connect_timeout = connect_timeout
        self._client: Client | None = None
        self._owner: asyncio.Task[None] | None = None
        self._release: asyncio.Event | None = None
        self._lock = asyncio.Lock()
        self._reconnecting: asyncio.Task[Client] | None = None
        self._closed = False
        self._refused: int | None = None
        """The last HTTP error status: the SDK reports a 401 as only "an error response"."""
        self._session_gone = False
        """The server answered 404 to our session id: it forgot the session (it restarted)."""

    async def open(self) -> list[mcp_types.Tool]:
        """Connects and lists the server's tools. Raises `McpUnavailableError` when it does
        not start or answer within `connect_timeout`."""
        async with self._lock:
            self._refuse_if_closed()
            return await self._connect()

    async def call(self, tool: str, arguments: dict[str, Any]) -> mcp_types.CallToolResult:
        """The server's result for one call; a lost connection gets one new session."""
        self._refuse_if_closed()
        client = self._client
        if client is not None:
            try:
                return await client.call_tool(tool, arguments)
            except Exception as exc:
                self._refuse_if_closed()  # closed under the call: not a connection to restore
                if not _connection_lost(exc, self._session_gone):
                    raise
                logger.warning(
                    "MCP server %s: connection lost (%s); reconnecting",
                    self.server.name,
                    describe(exc),
                )
        client = await self._reconnected(client)
        return await client.call_tool(tool, arguments)

    async def close(self) -> None:
        """Ends the session for good: a reconnect under way is stopped, and a later call
        raises `McpClosedError` rather than start the server again."""
        self._closed = True
        reconnecting = self._reconnecting
        if reconnecting is not None:
            reconnecting.cancel()
            await asyncio.wait({reconnecting})
        async with self._lock:
            await self._disconnect()

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise McpClosedError(f"MCP server {self.server.name}: closed, the bot is stopping")

    async def _reconnected(self, lost: Client | None) -> Client:
        """A new session in place of `lost`, made by a task of this session's own: the caller
        waits for it only within its own time, and a caller whose time runs out leaves it to
        finish, so a server slow to start is not killed half-started (nor the call held up
        while the old session closes). Calls that lost the same session share one attempt;
        a call after a failed attempt starts another."""
        self._refuse_if_closed()
        task = self._reconnecting
        if task is None or task.done():
            if self._client is not None and self._client is not lost:
                return self._client
            task = asyncio.create_task(
                self._reconnect(lost), name=f"mcp-reconnect-{self.server.name}"
            )
            task.add_done_callback(_retrieved)
            self._reconnecting = task
        return await asyncio.shield(task)

    async def _reconnect(self, lost: Client | None) -> Client:
        async with self._lock:
            self._refuse_if_closed()
            if self._client is None or self._client is lost:
                await self._connect()
            client = self._client
        assert client is not None
        return client

    async def _connect(self) -> list[mcp_types.Tool]:
        await self._disconnect()
        self._refused = None
        self._session_gone = False
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
        if response.status_code == 404 and MCP_SESSION_ID in response.request.headers:
            self._session_gone = True

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


def _connection_lost(exc: Exception, session_gone: bool) -> bool:
    """Whether a failed call says the session is gone (worth a new one) rather than that the
    server refused the request (which a new session would only repeat). A restarted HTTP
    server answers our session id with 404, which the SDK reports as an invalid request
    ("Session terminated", or the server's "Session not found"); the MCP specification asks
    the client to start a new session then."""
    if isinstance(exc, MCPError):
        return exc.code == mcp_types.CONNECTION_CLOSED or (
            exc.code == mcp_types.INVALID_REQUEST and session_gone
        )
    return not isinstance(exc, ValidationError)


def _retrieved(task: asyncio.Task[Client]) -> None:
    """Takes a reconnect's outcome, so that asyncio does not warn of a failure never
    retrieved when every caller stopped waiting for it."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        logger.info("MCP reconnect failed: %s", describe(exc))


def describe(exc: BaseException) -> str:
    """The innermost reason: the SDK's task groups wrap a refused connection or a command
    that does not exist in exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
