"""What a listener reads from Slack's envelope before it acts: a click on an incident's
button (`Click`), a `/incident` command (`SlashCommand`), and the error the person who clicked
or typed is shown (`UserFacingError`). Kept apart from the listeners (bot/slack_app.py) so a
handler's signature names what it acts on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from blocks.ids import ActionValue


class UserFacingError(Exception):
    """Something the person who clicked or typed can understand and act on."""


@dataclass(frozen=True, slots=True)
class Click:
    """A click on one of an incident message's buttons."""

    incident_id: str
    user: str
    channel: str
    trigger_id: str
    """Opens a modal in answer to this click (Slack honours it for 3 s)."""

    @classmethod
    def read(cls, body: dict[str, Any]) -> Click:
        try:
            incident_id = ActionValue.parse(body["actions"][0]["value"]).incident_id
        except (ValueError, KeyError, IndexError) as exc:
            raise UserFacingError("That button does not belong to an incident.") from exc
        return cls(
            incident_id=incident_id,
            user=body["user"]["id"],
            channel=(body.get("channel") or {}).get("id", ""),
            trigger_id=body.get("trigger_id", ""),
        )


@dataclass(frozen=True, slots=True)
class SlashCommand:
    """`/incident <verb> <argument>`: the verb lower-cased, `help` when none."""

    verb: str
    argument: str
    user: str
    trigger_id: str = ""

    @classmethod
    def read(cls, command: dict[str, Any]) -> SlashCommand:
        words = (command.get("text") or "").strip().split(maxsplit=1)
        return cls(
            verb=words[0].lower() if words else "help",
            argument=words[1].strip() if len(words) > 1 else "",
            user=command["user_id"],
            trigger_id=command.get("trigger_id", ""),
        )

    @property
    def incident_id(self) -> str:
        return self.argument.split()[0].upper() if self.argument else ""


NEEDS_AN_ARGUMENT = frozenset(
    {"show", "ack", "resolve", "silence", "jira", "postmortem", "analyze"}
)
"""Verbs that act on something: without it, `/incident` answers with its help."""

ClickHandler = Callable[[Click, AsyncWebClient], Awaitable[None]]
VerbHandler = Callable[[SlashCommand, AsyncRespond, AsyncWebClient], Awaitable[None]]
"""A `/incident` verb: the client opens a modal on the command's trigger, as a click does."""
