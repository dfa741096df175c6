"""Claude investigates: a bounded tool-calling loop for CRITICAL and HIGH incidents (issue 18).

`registry` says what a tool is, `loop` runs the conversation within its bounds, and
`past_incidents` is the first built-in tool; the team's MCP servers' tools come from
`mcp_servers` (the file), `mcp_session` (one server's session) and `mcp_tools` (the
`ToolSource`), and later tools register alike.
"""
