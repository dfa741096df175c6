"""Claude investigates: a bounded tool-calling loop for CRITICAL and HIGH incidents (issue 18).

`registry` says what a tool is, `loop` runs the conversation within its bounds, and
`past_incidents` is the first built-in tool; later tools (AWS, MCP servers) register alike.
"""
