"""What a tool of the investigation is, and the set of them one investigation may call.

A tool is deliberately small (a name, a description, an input JSON schema and an async
callable) so that built-in AWS tools and the team's MCP servers can be added later without
touching the loop: the loop bounds, redacts and records every call the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from anthropic.types import ToolParam

    from incidents.models import Alert, Incident

ToolRun = Callable[[dict[str, Any]], Awaitable[Any]]
"""Called with the model's input; returns text or a JSON value, raises when it fails."""


@dataclass(frozen=True)
class Tool:
    """One read-only capability offered to Claude during an investigation."""

    name: str
    description: str
    input_schema: dict[str, Any]
    run: ToolRun

    def param(self) -> ToolParam:
        """The tool as the Messages API declares it."""
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
        }


class ToolRegistry:
    """The tools of one investigation, by name; a name registered twice is a programming error,
    since Claude could not tell the two apart."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is registered twice")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)


class ToolSource(Protocol):
    """Builds the tools for one incident. Tools are per incident because most of them are
    scoped by it (its region, its alarm, its own past)."""

    def tools_for(self, incident: Incident, alert: Alert) -> ToolRegistry:
        """The tools this incident's investigation may call."""


class CombinedTools:
    """Several `ToolSource`s as one (our store's, AWS's, the team's MCP servers'), so that the
    engine is given a single source and each kind of tool stays in its own module."""

    def __init__(self, *sources: ToolSource) -> None:
        self.sources = sources

    def tools_for(self, incident: Incident, alert: Alert) -> ToolRegistry:
        combined = ToolRegistry()
        for source in self.sources:
            for tool in source.tools_for(incident, alert):
                combined.add(tool)
        return combined
