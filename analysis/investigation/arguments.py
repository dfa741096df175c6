"""Strict reading of a tool's arguments, for every built-in tool.

Claude's arguments are untrusted input (the alert it read may carry instructions), and the
loop does not check them against the schema, so each tool reads them here: an unknown
argument, a wrong type or a value out of bounds is a `ValueError` that says what is allowed,
which the loop hands back to Claude as an error result it can correct.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def known_arguments(arguments: dict[str, Any], schema: dict[str, Any]) -> None:
    """Refuses names the schema does not declare, and missing required ones."""
    declared = schema.get("properties", {})
    unknown = sorted(set(arguments) - set(declared))
    if unknown:
        raise ValueError(
            f"unknown argument(s) {', '.join(unknown)}; the arguments are: "
            f"{', '.join(declared) or 'none'}"
        )
    missing = [key for key in schema.get("required", []) if key not in arguments]
    if missing:
        raise ValueError(f"missing required argument(s): {', '.join(missing)}")


def integer(arguments: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = arguments.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}")
    return value


def string(arguments: dict[str, Any], name: str, max_length: int = 512) -> str | None:
    value = arguments.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise ValueError(f"{name} must be a non-empty string of at most {max_length} characters")
    return value.strip()


def choice(arguments: dict[str, Any], name: str, allowed: Sequence[str]) -> str | None:
    value = arguments.get(name)
    if value is not None and value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}")
    return value


def strings(arguments: dict[str, Any], name: str, most: int) -> list[str] | None:
    value = arguments.get(name)
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= most
        or not all(isinstance(item, str) and item.strip() for item in value)
    ):
        raise ValueError(f"{name} must be a list of 1 to {most} non-empty strings")
    return [item.strip() for item in value]
