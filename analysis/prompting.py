"""Prompts as files, rendered with the alert fenced as data, and a version that names them.

The prompt version is a hash of everything that shapes the answer (both prompt files and the
tool's schema), so that a change of any of them invalidates cached analyses by itself.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from functools import cache
from importlib import resources
from typing import Any

from analysis.models import Diagnosis

TOOL_NAME = "record_analysis"
TOOL_DESCRIPTION = (
    "Record the incident analysis: root cause, alternatives, severity with justification, "
    "impact, ordered remediation steps, what to check first, and confidence."
)


@cache
def _read(name: str) -> str:
    return resources.files("analysis").joinpath("prompts", name).read_text(encoding="utf-8")


def system_prompt() -> str:
    return _read("system.md").strip()


def followup_prompt() -> str:
    return _read("followup.md").strip()


@cache
def tool_schema() -> dict[str, Any]:
    """The Diagnosis schema with `$ref`s inlined: one self-contained object, as tool input
    schemas are most reliably followed when nothing has to be looked up."""
    schema = Diagnosis.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: inline(value) for key, value in node.items() if key != "title"}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined


@cache
def prompt_version() -> str:
    material = json.dumps(
        [_read("system.md"), _read("user.md"), tool_schema()], sort_keys=True
    ).encode()
    return "p1-" + hashlib.sha256(material).hexdigest()[:10]


def render_user(data: str, nonce: str | None = None) -> str:
    """The user turn with `data` between two markers that carry a fresh random token.

    The data cannot close the fence early, because it cannot know the token; any marker-like
    text inside it is left as it is and is only more data."""
    token = nonce or secrets.token_hex(8)
    fence = f"<<<ALERT_DATA_{token}>>>"
    return _read("user.md").strip().format(fence=fence, data=data)


def render_followup(data: str, nonce: str | None = None) -> str:
    token = nonce or secrets.token_hex(8)
    fence = f"<<<INCIDENT_DATA_{token}>>>"
    return (
        f"The incident, its analysis, its timeline and the thread so far are between the two "
        f"`{fence}` markers; the question to answer is the last message of the thread.\n\n"
        f"{fence}\n{data}\n{fence}"
    )
