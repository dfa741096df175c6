"""Every id the bot puts on a Slack surface, and the typed payloads it carries in them.

Ids are StrEnums in one place so that the builder that renders a button and the listener
that answers it cannot drift apart by a typo. Payloads are pydantic models dumped as JSON and
parsed back, with Slack's size limit checked on the way out, because Slack refuses the whole
message (or modal) when one value is too long.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field

from blocks.limits import ACTION_VALUE_MAX, PRIVATE_METADATA_MAX


class ActionId(StrEnum):
    """`action_id` of the incident message's buttons and of the email modal's inputs."""

    ACKNOWLEDGE = "incident.acknowledge"
    CREATE_JIRA = "incident.create_jira"
    EMAIL = "incident.email"
    POSTMORTEM = "incident.postmortem"
    REANALYZE = "incident.reanalyze"
    RESOLVE = "incident.resolve"
    SILENCE_1H = "incident.silence_1h"
    SILENCE_24H = "incident.silence_24h"
    CONFIRM = "incident.confirm"
    # The modals' inputs: keys of `view.state.values[block_id]`, not listeners.
    EMAIL_RECIPIENTS = "email.recipients_input"
    EMAIL_NOTE = "email.note_input"
    CONFIRM_CAUSE = "confirm.cause_input"
    CONFIRM_FIX = "confirm.fix_input"


class CallbackId(StrEnum):
    """`callback_id` of the modals, which routes their `view_submission`."""

    EMAIL = "incident.email_modal"
    CONFIRM = "incident.confirm_modal"


class BlockId(StrEnum):
    """`block_id` of the blocks a listener reads back: the buttons, and the modal's inputs."""

    INCIDENT_ACTIONS = "incident.actions"
    EMAIL_RECIPIENTS = "email.recipients"
    EMAIL_NOTE = "email.note"
    CONFIRM_CAUSE = "confirm.cause"
    CONFIRM_FIX = "confirm.fix"
    CONFIRM_ACTIONS = "confirm.actions"


class _SlackPayload(BaseModel):
    """A payload that travels through Slack and comes back in an interaction."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    max_chars: ClassVar[int]

    def dump(self) -> str:
        """The JSON to put in Slack; ValueError if Slack would refuse its length."""
        text = self.model_dump_json()
        if len(text) > self.max_chars:
            raise ValueError(
                f"{type(self).__name__} is {len(text)} characters, Slack allows {self.max_chars}"
            )
        return text

    @classmethod
    def parse(cls, text: str) -> Self:
        """Read a payload back from an interaction; ValueError when it is not one of ours.

        The length is checked before parsing, so an oversized forged value costs nothing.
        """
        if len(text) > cls.max_chars:
            raise ValueError(f"{cls.__name__} longer than {cls.max_chars} characters")
        return cls.model_validate_json(text)


class ActionValue(_SlackPayload):
    """The `value` of every incident button: which incident it acts on."""

    max_chars: ClassVar[int] = ACTION_VALUE_MAX
    incident_id: str = Field(min_length=1)


class ModalMetadata(_SlackPayload):
    """The `private_metadata` of the email modal: which incident it was opened for."""

    max_chars: ClassVar[int] = PRIVATE_METADATA_MAX
    incident_id: str = Field(min_length=1)
