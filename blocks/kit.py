"""The few Block Kit shapes the bot uses, each cut to its Slack limit.

Callers pass text that is already safe (escaped alert and model text inside our own markup)
and already sized to read well; the cut here is the last guard, because a message cut short
is still posted, while one a character too long is refused whole and the incident goes unseen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from blocks.ids import ActionId, ActionValue
from blocks.limits import (
    ACTIONS_ELEMENTS_MAX,
    BUTTON_TEXT_MAX,
    CONFIRM_BUTTON_MAX,
    CONFIRM_TEXT_MAX,
    CONFIRM_TITLE_MAX,
    CONTEXT_ELEMENTS_MAX,
    CONTEXT_TEXT_MAX,
    FIELD_TEXT_MAX,
    FIELDS_MAX,
    HEADER_TEXT_MAX,
    SECTION_TEXT_MAX,
)
from blocks.text import truncate

Block = dict[str, Any]
# Slack refuses empty text; a dash reads as "nothing here".
EMPTY = "—"


@dataclass(frozen=True)
class Message:
    """What `chat.postMessage` needs besides the channel: blocks, and the plain `text` that
    notifications, screen readers and old clients show instead of them."""

    text: str
    blocks: list[Block]


def plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": _fit(text, limit), "emoji": True}


def mrkdwn(text: str, limit: int = SECTION_TEXT_MAX) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _fit(text, limit)}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, HEADER_TEXT_MAX)}


def section(text: str) -> Block:
    return {"type": "section", "text": mrkdwn(text)}


def fields(texts: Sequence[str]) -> Block:
    return {"type": "section", "fields": [mrkdwn(t, FIELD_TEXT_MAX) for t in texts[:FIELDS_MAX]]}


def context(texts: Sequence[str]) -> Block:
    return {
        "type": "context",
        "elements": [mrkdwn(t, CONTEXT_TEXT_MAX) for t in texts[:CONTEXT_ELEMENTS_MAX]],
    }


def divider() -> Block:
    return {"type": "divider"}


def button(
    label: str,
    action_id: ActionId,
    value: ActionValue,
    *,
    style: Literal["primary", "danger"] | None = None,
    confirm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "action_id": action_id.value,
        "text": plain(label, BUTTON_TEXT_MAX),
        "value": value.dump(),
    }
    if style is not None:
        element["style"] = style
    if confirm is not None:
        element["confirm"] = confirm
    return element


def confirmation(title: str, text: str, confirm: str, deny: str) -> dict[str, Any]:
    """The "are you sure?" dialog Slack shows before sending a button's action."""
    return {
        "title": plain(title, CONFIRM_TITLE_MAX),
        "text": plain(text, CONFIRM_TEXT_MAX),
        "confirm": plain(confirm, CONFIRM_BUTTON_MAX),
        "deny": plain(deny, CONFIRM_BUTTON_MAX),
    }


def actions(block_id: str, elements: Sequence[dict[str, Any]]) -> Block:
    return {
        "type": "actions",
        "block_id": block_id,
        "elements": list(elements[:ACTIONS_ELEMENTS_MAX]),
    }


def _fit(text: str, limit: int) -> str:
    return truncate(text, limit) if text.strip() else EMPTY
