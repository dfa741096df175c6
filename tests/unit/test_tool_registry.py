"""The tool registry and the combination of tool sources the engine is given."""

from __future__ import annotations

from typing import Any

import pytest

from analysis.investigation.registry import CombinedTools, Tool, ToolRegistry
from incidents.models import Alert, Incident
from tests.conftest import make_alert


def _tool(name: str) -> Tool:
    async def run(arguments: dict[str, Any]) -> str:
        return name

    return Tool(name, f"the {name} tool", {"type": "object"}, run)


class Fixed:
    def __init__(self, *names: str) -> None:
        self.names = names

    def tools_for(self, incident: Incident, alert: Alert) -> ToolRegistry:
        return ToolRegistry(_tool(name) for name in self.names)


def _incident() -> tuple[Incident, Alert]:
    alert = make_alert()
    incident = Incident(
        id="INC-1",
        fingerprint=alert.fingerprint,
        title=alert.title,
        source=alert.source,
        severity=alert.severity,
        opened_at=alert.received_at,
        last_seen_at=alert.received_at,
    )
    return incident, alert


def test_combined_sources_offer_every_tool_in_order() -> None:
    incident, alert = _incident()
    tools = CombinedTools(Fixed("a", "b"), Fixed(), Fixed("c")).tools_for(incident, alert)
    assert [tool.name for tool in tools] == ["a", "b", "c"]
    assert tools.get("c") is not None and tools.get("d") is None


def test_a_name_offered_by_two_sources_is_refused() -> None:
    incident, alert = _incident()
    with pytest.raises(ValueError, match="'a' is registered twice"):
        CombinedTools(Fixed("a"), Fixed("a")).tools_for(incident, alert)
