"""Prompts as files, rendered with the alert fenced as data, and a version that names them.

The prompt version is a hash of everything that shapes the answer (the analysis prompt files,
the investigation's addendum, and the tool's schema), so that a change of any of them
invalidates cached analyses by itself.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel

from analysis.models import Diagnosis

TOOL_NAME = "record_analysis"
TOOL_DESCRIPTION = (
    "Record the incident analysis: root cause, alternatives, severity with justification, "
    "impact, ordered remediation steps, what to check first, and confidence."
)


@cache
def read_prompt(name: str) -> str:
    return resources.files("analysis").joinpath("prompts", name).read_text(encoding="utf-8")


def system_prompt() -> str:
    return read_prompt("system.md").strip()


def followup_prompt() -> str:
    return read_prompt("followup.md").strip()


@cache
def tool_schema() -> dict[str, Any]:
    """The Diagnosis schema, self-contained."""
    return inline_schema(Diagnosis)


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema with `$ref`s inlined and pydantic's generated `title`s dropped:
    one self-contained object, as tool input schemas are most reliably followed when nothing
    has to be looked up. A field that is itself named `title` is kept."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any, names: bool = False) -> Any:
        """`names` marks a `properties` mapping, whose keys are field names, not keywords."""
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {
                key: inline(value, names=key == "properties" and not names)
                for key, value in node.items()
                if names or key != "title"
            }
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined


def fence(kind: str, nonce: str | None = None) -> str:
    """A marker carrying a fresh random token: data placed between two of them cannot close
    the fence early, because it cannot know the token."""
    return f"<<<{kind}_{nonce or secrets.token_hex(8)}>>>"


@cache
def prompt_version() -> str:
    material = json.dumps(
        [
            read_prompt("system.md"),
            read_prompt("user.md"),
            read_prompt("investigation.md"),
            tool_schema(),
        ],
        sort_keys=True,
    ).encode()
    return "p1-" + hashlib.sha256(material).hexdigest()[:10]


def render_user(data: str, nonce: str | None = None) -> str:
    """The user turn with `data` between two markers that carry a fresh random token.

    The data cannot close the fence early, because it cannot know the token; any marker-like
    text inside it is left as it is and is only more data."""
    return read_prompt("user.md").strip().format(fence=fence("ALERT_DATA", nonce), data=data)


def render_followup(data: str, nonce: str | None = None) -> str:
    marker = fence("INCIDENT_DATA", nonce)
    return (
        f"The incident, its analysis, its timeline and the thread so far are between the two "
        f"`{marker}` markers; the question to answer is the last message of the thread.\n\n"
        f"{marker}\n{data}\n{marker}"
    )
