"""The modals: email (opened by the Email button, prefilled so one click sends it) and the
confirmed cause and fix (offered by Resolve, and by the note of an incident the alert
resolved).

The incident id travels in `private_metadata` (typed, size-checked), so the submission knows
what it is about without trusting anything the person typed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from blocks.ids import ActionId, BlockId, CallbackId, ModalMetadata
from blocks.incident import SEVERITY_MARKER
from blocks.kit import plain, section
from blocks.limits import (
    INPUT_HINT_MAX,
    INPUT_LABEL_MAX,
    INPUT_PLACEHOLDER_MAX,
    INPUT_VALUE_MAX,
    MODAL_BUTTON_MAX,
    MODAL_TITLE_MAX,
)
from blocks.text import escape, truncate
from incidents.models import CONFIRMED_TEXT_MAX, Incident

MODAL_TITLE_SHOWN = 120


def email_modal(incident: Incident, *, recipients: Sequence[str]) -> dict[str, Any]:
    """The `view` for `views.open`: recipients prefilled (comma-separated, as typed back), and
    an optional note. Recipients that would not fit Slack's input are left out whole rather
    than cut mid-address."""
    summary = (
        f"{SEVERITY_MARKER[incident.severity]} *{escape(incident.id)}* "
        f"{truncate(escape(incident.title), MODAL_TITLE_SHOWN)}"
    )
    recipients_input: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": ActionId.EMAIL_RECIPIENTS.value,
        "max_length": INPUT_VALUE_MAX,
        "placeholder": plain("ops@example.com, lead@example.com", INPUT_PLACEHOLDER_MAX),
    }
    prefilled = _joined_within(recipients, INPUT_VALUE_MAX)
    if prefilled:
        recipients_input["initial_value"] = prefilled
    return {
        "type": "modal",
        "callback_id": CallbackId.EMAIL.value,
        "private_metadata": ModalMetadata(incident_id=incident.id).dump(),
        "title": plain("Email incident", MODAL_TITLE_MAX),
        "submit": plain("Send", MODAL_BUTTON_MAX),
        "close": plain("Cancel", MODAL_BUTTON_MAX),
        "blocks": [
            section(summary),
            {
                "type": "input",
                "block_id": BlockId.EMAIL_RECIPIENTS.value,
                "label": plain("Recipients", INPUT_LABEL_MAX),
                "hint": plain("Email addresses, separated by commas.", INPUT_HINT_MAX),
                "element": recipients_input,
            },
            {
                "type": "input",
                "block_id": BlockId.EMAIL_NOTE.value,
                "optional": True,
                "label": plain("Note", INPUT_LABEL_MAX),
                "element": {
                    "type": "plain_text_input",
                    "action_id": ActionId.EMAIL_NOTE.value,
                    "multiline": True,
                    "max_length": INPUT_VALUE_MAX,
                    "placeholder": plain("Shown above the incident summary", INPUT_PLACEHOLDER_MAX),
                },
            },
        ],
    }


CONFIRM_HINT = (
    "Optional. The next analysis of this problem, or of a similar one, gets it as a "
    "hypothesis to check."
)


def confirm_modal(incident: Incident) -> dict[str, Any]:
    """The `view` asking what caused the incident and what fixed it: both optional (closing
    it skips them), prefilled with what was confirmed before."""
    summary = (
        f"{SEVERITY_MARKER[incident.severity]} *{escape(incident.id)}* "
        f"{truncate(escape(incident.title), MODAL_TITLE_SHOWN)}"
    )
    earlier = incident.confirmed
    return {
        "type": "modal",
        "callback_id": CallbackId.CONFIRM.value,
        "private_metadata": ModalMetadata(incident_id=incident.id).dump(),
        "title": plain("What fixed it?", MODAL_TITLE_MAX),
        "submit": plain("Save", MODAL_BUTTON_MAX),
        "close": plain("Skip", MODAL_BUTTON_MAX),
        "blocks": [
            section(summary),
            _confirm_input(
                BlockId.CONFIRM_CAUSE,
                ActionId.CONFIRM_CAUSE,
                "Confirmed cause",
                "The pool was sized for 10 connections after Tuesday's config change",
                earlier.cause if earlier else None,
            ),
            _confirm_input(
                BlockId.CONFIRM_FIX,
                ActionId.CONFIRM_FIX,
                "Fix",
                "Raised max_connections to 200 and restarted the API tasks",
                earlier.fix if earlier else None,
            ),
        ],
    }


def _confirm_input(
    block: BlockId, action: ActionId, label: str, placeholder: str, initial: str | None
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": action.value,
        "multiline": True,
        "max_length": CONFIRMED_TEXT_MAX,
        "placeholder": plain(placeholder, INPUT_PLACEHOLDER_MAX),
    }
    if initial:
        element["initial_value"] = initial
    return {
        "type": "input",
        "block_id": block.value,
        "optional": True,
        "label": plain(label, INPUT_LABEL_MAX),
        "hint": plain(CONFIRM_HINT, INPUT_HINT_MAX),
        "element": element,
    }


def _joined_within(recipients: Sequence[str], limit: int) -> str:
    """`a, b, c` with as many whole recipients as fit in `limit` characters."""
    joined = ""
    for recipient in (r.strip() for r in recipients):
        candidate = f"{joined}, {recipient}" if joined else recipient
        if not recipient or len(candidate) > limit:
            continue
        joined = candidate
    return joined
