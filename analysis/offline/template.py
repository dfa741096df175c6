"""Command templating for the signature library: `{name}` in a signature's action or command
becomes the alert's value, shell-quoted in commands.

A value the alert does not carry becomes a shell variable (`"$TABLE"`) in a command and a
plain noun ("the table") in prose, and the step says which variable to set, so no text ever
shows a placeholder.
"""

from __future__ import annotations

import re

from analysis.models import RemediationStep
from analysis.offline.commands import iso, region_flag, sh
from analysis.offline.facts import Facts
from analysis.offline.signatures import TEMPLATE_FIELD, Step

_FRAGMENTS = frozenset({"region_flag"})
"""Values that are already pieces of a command, inserted as they are, and as nothing when
empty (the profile's default region), never quoted nor asked for."""


def values(facts: Facts, groups: tuple[tuple[str, str], ...]) -> dict[str, str | None]:
    """What a template may name: the alert's facts, then the signature's own match groups."""
    return {
        "alarm": facts.alarm_name,
        "function": facts.function_name,
        "instance": facts.instance_id,
        "db_instance": facts.db_instance,
        "db_cluster": facts.db_cluster,
        "queue": facts.queue_name,
        "table": facts.table_name,
        "load_balancer": facts.load_balancer,
        "api": facts.api_name,
        "cluster": facts.ecs_cluster,
        "service": facts.ecs_service,
        "log_group": facts.log_group,
        "host": facts.host,
        "pod": facts.pod,
        "namespace": facts.namespace,
        "region": facts.region,
        "region_flag": region_flag(facts),
        "t_start": iso(facts.start),
        "t_end": iso(facts.end),
        "since": facts.since,
        **dict(groups),
    }


def render_step(step: Step, known: dict[str, str | None]) -> RemediationStep:
    """One step with its values filled in; unknown values are named as variables to set."""
    unset: list[str] = []

    def in_command(match: re.Match[str]) -> str:
        name = match.group(1)
        value = known.get(name)
        if name in _FRAGMENTS:
            return value or ""
        if value:
            return sh(value)
        variable = name.upper()
        if variable not in unset:
            unset.append(variable)
        return f'"${variable}"'

    def in_prose(match: re.Match[str]) -> str:
        value = known.get(match.group(1))
        return f"`{value}`" if value else f"the {match.group(1).replace('_', ' ')}"

    command = TEMPLATE_FIELD.sub(in_command, step.command) if step.command else None
    action = TEMPLATE_FIELD.sub(in_prose, step.action).strip()
    if unset:
        action = f"{action.rstrip('.')} (set {', '.join(unset)} first)."
    return RemediationStep(action=action, command=command)
