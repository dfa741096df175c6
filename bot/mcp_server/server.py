"""The MCP server: the tools, the `incident://{id}` resource and the `postmortem` prompt,
registered on the SDK's `MCPServer`, which speaks the protocol on every transport.

One server object per process, built here from `IncidentTools`; the transport is chosen by the
caller (`stdio.py` for `incident-bot mcp`, `http.py` for `/mcp` on the bot's receiver). The
write tools are registered only with `MCP_ALLOW_WRITES=true`: a tool that is not listed cannot
be called, whatever a client asks.
"""

from __future__ import annotations

from typing import Literal

from mcp import MCPError
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.types import INVALID_PARAMS, ToolAnnotations

from bot.mcp_server.markdown import incident_markdown, postmortem_prompt
from bot.mcp_server.tools import IncidentTools, ToolInputError

NAME = "incident-responder"
INSTRUCTIONS = """\
The incidents of the incident-responder bot: what its alerts grouped into, their analyses,
timelines and notifications. Start with list_incidents or search_alerts, then get_incident.
Secrets in alert text are shown redacted as [REDACTED:<kind>]. Acknowledge, resolve and
silence (when this server allows writes) act exactly as the Slack buttons do, for the person
named in `by`."""

_READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_RECORD = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)
_CHANGE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
)

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def build_server(
    tools: IncidentTools, *, allow_writes: bool, log_level: LogLevel = "INFO"
) -> MCPServer:
    """The server with every read tool, `analyze_alert`, the resource and the prompt; the
    acknowledge, resolve and silence tools only when `allow_writes`."""
    server: MCPServer = MCPServer(NAME, instructions=INSTRUCTIONS, log_level=log_level)
    for read in (tools.list_incidents, tools.get_incident, tools.search_alerts):
        server.add_tool(read, annotations=_READ)
    server.add_tool(tools.incident_stats, annotations=_READ)
    server.add_tool(tools.analyze_alert, annotations=_RECORD)
    if allow_writes:
        server.add_tool(tools.acknowledge_incident, annotations=_CHANGE)
        server.add_tool(tools.resolve_incident, annotations=_CHANGE)
        server.add_tool(tools.silence_incident, annotations=_CHANGE)

    @server.resource("incident://{id}", mime_type="text/markdown")
    async def incident(id: str) -> str:
        """The incident as Markdown: facts, analysis, timeline and notifications."""
        try:
            return incident_markdown(await tools.get_incident(id))
        except ToolInputError as exc:
            raise ResourceNotFoundError(str(exc)) from None

    @server.prompt(title="Post-mortem draft")
    async def postmortem(id: str) -> str:
        """Draft a blameless post-mortem of an incident from its record."""
        try:
            return postmortem_prompt(await tools.get_incident(id))
        except ToolInputError as exc:
            # A prompt has no tool-error result: the reason goes back as the protocol error,
            # which the SDK passes on intact (any other exception would reach the person as
            # "Internal server error").
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None

    return server
