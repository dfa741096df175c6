"""Streamable HTTP at `/mcp` on the bot's own aiohttp receiver, behind a Bearer token.

The SDK serves Streamable HTTP as an ASGI application; the bot's receiver is aiohttp. Rather
than run a second HTTP server (uvicorn) on a second port, the `/mcp` route hands each request
to the SDK's own `StreamableHTTPSessionManager.handle_request`, through the small ASGI bridge
below: the request's headers and streamed body in, the status, headers and body (a JSON answer
or an SSE stream) written back as they come. Everything MCP (versions, sessions, the body
limit, JSON-RPC) stays the SDK's; this module owns only the token and the bytes.

The token is checked first, in constant time (`hmac.compare_digest`); without it the request
is answered 401 and never reaches the SDK. The SDK's DNS-rebinding guard (a Host allowlist
meant for unauthenticated servers on localhost) is off: the token is what a rebound web page
cannot send, and the receiver may rightly be reached by a real hostname.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from aiohttp import web
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from multidict import CIMultiDict

logger = logging.getLogger(__name__)

PATH = "/mcp"

Message = MutableMapping[str, Any]
AsgiApp = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


class McpEndpoint:
    """`/mcp`: the Bearer check, then the SDK's session manager. `running()` must be entered
    for as long as the route serves (the process's exit stack does it)."""

    def __init__(self, server: MCPServer, token: str) -> None:
        # Called for the session manager it creates (`server.session_manager` exists only
        # after it); the Starlette app it returns is not served. Stateless: every request
        # stands alone, so replicas behind a balancer need no sticky sessions; the tools ask
        # the client nothing back, which is all statelessness costs.
        server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self._manager = server.session_manager
        self._token = token.encode()

    def running(self) -> AbstractAsyncContextManager[None]:
        return self._manager.run()

    def add_to(self, app: web.Application) -> None:
        app.router.add_route("*", PATH, self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return web.json_response(
                {"error": "missing or wrong Authorization: Bearer token"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="incident-bot"'},
            )
        return await serve_asgi(self._manager.handle_request, request)

    def _authorised(self, request: web.Request) -> bool:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            # Compared all the same, so that a missing header costs what a wrong one does.
            given = ""
        return hmac.compare_digest(given.strip().encode(), self._token)


def _scope(request: web.Request) -> Message:
    """The ASGI `http` scope of an aiohttp request."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    host = request.transport.get_extra_info("sockname") if request.transport else None
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.raw_path.partition("?")[0].encode(),
        "query_string": request.query_string.encode(),
        "root_path": "",
        "headers": [(name.lower(), value) for name, value in request.raw_headers],
        "client": tuple(peer[:2]) if isinstance(peer, tuple) else None,
        "server": tuple(host[:2]) if isinstance(host, tuple) else None,
        "state": {},
    }


async def serve_asgi(app: AsgiApp, request: web.Request) -> web.StreamResponse:
    """Run one request through an ASGI application, streaming both ways.

    `receive` hands over the body as it arrives, then, once the body is read, waits until
    the answer is finished before it reports the disconnect: an SSE answer listens for the
    disconnect to know when to stop, and must not hear it while it is still writing."""
    response: web.StreamResponse | None = None
    finished = asyncio.Event()
    body_read = False

    async def receive() -> Message:
        nonlocal body_read
        if not body_read:
            chunk = await request.content.readany()
            if chunk:
                return {"type": "http.request", "body": chunk, "more_body": True}
            body_read = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal response
        if message["type"] == "http.response.start":
            headers: CIMultiDict[str] = CIMultiDict(
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in message.get("headers", [])
            )
            response = web.StreamResponse(status=message["status"], headers=headers)
        elif message["type"] == "http.response.body" and response is not None:
            if not response.prepared:
                await response.prepare(request)
            body = message.get("body", b"")
            if body:
                await response.write(body)
            if not message.get("more_body", False):
                await response.write_eof()
                finished.set()

    try:
        await app(_scope(request), receive, send)
    finally:
        finished.set()
    if response is None:
        logger.error("the MCP transport gave no answer to %s %s", request.method, request.path)
        return web.json_response({"error": "no answer from the MCP transport"}, status=500)
    if not response.prepared:
        await response.prepare(request)
        await response.write_eof()
    return response
