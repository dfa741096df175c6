"""The incident store as a Model Context Protocol server, on the official `mcp` SDK.

`incident-bot mcp` serves it over stdio; `incident-bot run` serves it over streamable HTTP at
`/mcp` when `MCP_TOKEN` is set. The same tools answer on both (`tools.py`), shaped by the
output models of `schemas.py`, with alert text redacted and sizes bounded on the way out
(`views.py`). docs/mcp.md says how to connect Claude Desktop and Claude Code.

Named `mcp_server` rather than `mcp`: a module called `mcp` anywhere on the path would shadow
the SDK it is built on.
"""
