"""A team's own MCP server, as the investigation meets one: built with the SDK's `MCPServer`
and run as a real subprocess, over stdio or over Streamable HTTP on 127.0.0.1.

    python -m tests.fakes.team_mcp_server stdio
    python -m tests.fakes.team_mcp_server http [PORT]  # prints `listening on <url>` once bound

Its tools: `recent_deploys` answers structured data with secrets seeded in it,
`service_owner` answers text naming the on-call person from `TEAM_MCP_ONCALL` (so a test sees
the environment the configuration gave it), `broken_query` always fails, `server_pid` says
which process answered (a test kills it to see the client reconnect), `wait_seconds` answers
after a while (a call still in flight), `either_id` declares a top-level `anyOf` in its input
schema (which the Messages API refuses), and `restart_service` is the one tool not annotated
read-only.

`TEAM_MCP_JOURNAL` names a file each call appends its tool's name to, so that a test can tell
a call that never reached the server from one that did (and a stdio server appends `stopped`
when its client closes the session); `TEAM_MCP_STARTS` names a file each stdio process
appends its id to as it starts, and while the file `TEAM_MCP_SLOW_START` names exists, a stdio
process waits that many seconds before it answers (a server slow to start); `TEAM_MCP_TOKEN`,
over HTTP, is the Bearer token every request must carry, and `TEAM_MCP_HANDSHAKE_ONLY=1` makes
it answer as a server of the handshake era does (sessions with an `Mcp-Session-Id`, which a
restarted server no longer knows) rather than speak the sessionless 2026-07-28 protocol.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import INVALID_REQUEST, ErrorData, JSONRPCError, ToolAnnotations
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.types import ASGIApp, Receive, Scope, Send

SECRET_PASSWORD = "hunter2-Team-Secret"
SECRET_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_TOKEN = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"

_READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=True)


def _journal(tool: str) -> None:
    path = os.environ.get("TEAM_MCP_JOURNAL")
    if path:
        with open(path, "a", encoding="utf-8") as journal:
            journal.write(tool + "\n")


def recent_deploys(service: str) -> dict[str, Any]:
    """The latest deployments of a service, newest first. Read-only."""
    _journal("recent_deploys")
    return {
        "service": service,
        "deploys": [
            {"version": "v42", "at": "2026-12-07T21:40:00Z", "by": "ci"},
            {"version": "v41", "at": "2026-12-06T10:02:00Z", "by": "ci"},
        ],
        "password": SECRET_PASSWORD,
        "notes": [f"rolled out with AWS key {SECRET_KEY}", f"token {SECRET_TOKEN} rotated"],
    }


def service_owner(service: str) -> str:
    """Who owns a service and who is on call for it. Read-only."""
    _journal("service_owner")
    oncall = os.environ.get("TEAM_MCP_ONCALL", "nobody")
    return f"{service} is owned by team payments; on call: {oncall}"


def broken_query(query: str) -> str:
    """Runs a query against a backend that is down. Read-only."""
    _journal("broken_query")
    raise ToolError(f"backend unavailable for {query!r}")


def server_pid() -> str:
    """The id of the process answering. Read-only."""
    _journal("server_pid")
    return str(os.getpid())


async def wait_seconds(seconds: float) -> str:
    """Answers after `seconds`. Read-only."""
    _journal("wait_seconds")
    await anyio.sleep(seconds)
    return f"waited {seconds:g}s"


def either_id(order_id: str = "", invoice_id: str = "") -> str:
    """Looks an order up by either id. Read-only."""
    _journal("either_id")
    return order_id or invoice_id


def restart_service(service: str) -> str:
    """Restarts a service. Changes production."""
    _journal("restart_service")
    return f"{service} restarted"


def build() -> MCPServer:
    server: MCPServer = MCPServer("team-tools", log_level="WARNING")
    for read in (recent_deploys, service_owner, broken_query, server_pid, wait_seconds, either_id):
        server.add_tool(read, annotations=_READ)
    server.add_tool(restart_service, annotations=_WRITE)
    either = server._tool_manager.get_tool("either_id")
    assert either is not None
    either.parameters["anyOf"] = [{"required": ["order_id"]}, {"required": ["invoice_id"]}]
    return server


def _starting() -> None:
    """Records this process's start, then waits as long as the slow-start file says."""
    starts = os.environ.get("TEAM_MCP_STARTS")
    if starts:
        with open(starts, "a", encoding="utf-8") as record:
            record.write(f"{os.getpid()}\n")
    slow = os.environ.get("TEAM_MCP_SLOW_START")
    if slow and os.path.isfile(slow):
        time.sleep(float(Path(slow).read_text()))


class _Bearer:
    """Refuses a request without `Authorization: Bearer <token>` (401)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != (
            self.expected
        ):
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await self.app(scope, receive, send)


class _HandshakeOnly:
    """Answers a request of the sessionless protocol as a server of the handshake era does (400,
    no session id), so that the client falls back to `initialize` and a session."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        version = dict(scope.get("headers", [])).get(b"mcp-protocol-version", b"").decode()
        if scope["type"] == "http" and version in MODERN_PROTOCOL_VERSIONS:
            body = JSONRPCError(
                jsonrpc="2.0",
                id=None,
                error=ErrorData(code=INVALID_REQUEST, message="Bad Request: Missing session ID"),
            ).model_dump_json(by_alias=True, exclude_unset=True)
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 400, "headers": headers})
            await send({"type": "http.response.body", "body": body.encode()})
            return
        await self.app(scope, receive, send)


async def _serve_http(server: MCPServer, port: int) -> None:
    """Bound before the line is printed, so a client connecting at once waits in the backlog
    instead of being refused. Port 0: one the OS picks."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    app: ASGIApp = server.streamable_http_app()
    if os.environ.get("TEAM_MCP_HANDSHAKE_ONLY") == "1":
        app = _HandshakeOnly(app)
    token = os.environ.get("TEAM_MCP_TOKEN")
    if token:
        app = _Bearer(app, token)
    port = sock.getsockname()[1]
    sys.stdout.write(f"listening on http://127.0.0.1:{port}/mcp\n")
    sys.stdout.flush()
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve(sockets=[sock])


class HttpProcess:
    """The server over Streamable HTTP as a subprocess the test starts and stops; `url` is
    where it listens, read from the line it prints once bound."""

    def __init__(self, env: dict[str, str], port: int = 0) -> None:
        self.env = env
        self.port = port
        self.url = ""
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        root = str(Path(__file__).resolve().parents[2])
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.fakes.team_mcp_server", "http", str(self.port),
            env={**os.environ, "PYTHONPATH": root, **self.env},
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), 30)
        self.url = line.decode().removeprefix("listening on ").strip()
        if not self.url.startswith("http://"):
            raise RuntimeError(f"the team MCP server did not start: {line!r}")

    async def stop(self) -> None:
        """Kills it, as a crash would: the client must notice on its next request."""
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()

    async def __aenter__(self) -> HttpProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def main() -> None:
    server = build()
    if sys.argv[1:2] == ["http"]:
        anyio.run(_serve_http, server, int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    else:
        _starting()
        server.run("stdio")
        _journal("stopped")  # the client closed stdin: a clean end, not a kill


if __name__ == "__main__":
    main()
