"""The "past incidents" tool: our own store's similar incidents, with how each one ended.

The opening evidence already carries the three most similar; the tool lets Claude look
further (more of them, or incidents like another title it suspects) when the first ones
suggest a recurring problem.
"""

from __future__ import annotations

import asyncio
from typing import Any

from analysis.investigation.arguments import integer, known_arguments, string
from analysis.investigation.registry import Tool, ToolRegistry
from analysis.related import outcome, rank_related
from incidents.models import Alert, Incident
from incidents.store import IncidentStore
from incidents.times import as_utc

NAME = "past_incidents"
MAX_RESULTS = 10
SCAN = 200
MAX_TITLE = 300

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {
            "type": "string",
            "description": "Find incidents similar to this title instead of the current "
            "incident's own title.",
            "maxLength": MAX_TITLE,
        },
        "limit": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_RESULTS,
            "description": f"How many incidents to return (default 5, at most {MAX_RESULTS}).",
        },
    },
    "additionalProperties": False,
}

DESCRIPTION = (
    "Search this team's earlier incidents: those of the same alert, then those of the same "
    "source with a similar title, newest and most similar first, each with how it ended "
    "(who resolved it and after how long, reopens, flapping) and the cause and fix the team "
    "confirmed, when it did. Read-only."
)


def past_incidents_tool(store: IncidentStore, incident: Incident) -> Tool:
    """The tool scoped to `incident`: only incidents opened before it are candidates."""

    async def run(arguments: dict[str, Any]) -> list[dict[str, str]]:
        return await asyncio.to_thread(_search, store, incident, arguments)

    return Tool(NAME, DESCRIPTION, SCHEMA, run)


def _search(
    store: IncidentStore, incident: Incident, arguments: dict[str, Any]
) -> list[dict[str, str]]:
    """Synchronous (the store is), hence run in a worker thread."""
    known_arguments(arguments, SCHEMA)
    limit = integer(arguments, "limit", 5, 1, MAX_RESULTS)
    title = string(arguments, "title", MAX_TITLE)
    probe = incident.model_copy(update={"title": title}) if title else incident
    ranked = rank_related(probe, store.list_incidents(limit=SCAN))[:limit]
    return [
        {
            "incident_id": past.id,
            "title": past.title,
            "opened_at": f"{as_utc(past.opened_at):%Y-%m-%d %H:%M} UTC",
            "why": why,
            "outcome": outcome(past, store.timeline(past.id)),
            **_confirmed(past),
        }
        for past, why in ranked
    ]


def _confirmed(past: Incident) -> dict[str, str]:
    """What the team confirmed, when it did: a hypothesis for this incident, as the prompt
    says of `confirmed_causes`."""
    if past.confirmed is None:
        return {}
    said = {"confirmed_cause": past.confirmed.cause, "confirmed_fix": past.confirmed.fix}
    return {key: value for key, value in said.items() if value} | {
        "confirmed_by": past.confirmed.by
    }


class StoreTools:
    """The built-in tools that need only our store; the engine's default `ToolSource`."""

    def __init__(self, store: IncidentStore) -> None:
        self.store = store

    def tools_for(self, incident: Incident, alert: Alert) -> ToolRegistry:
        return ToolRegistry([past_incidents_tool(self.store, incident)])
