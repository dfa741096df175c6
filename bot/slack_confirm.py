"""The cause and the fix, as the team confirms them from Slack: the modal that Resolve offers
(and the resolved note's button, for an incident its alert resolved), and thread replies that
start with `cause:` or `fix:`.

What is confirmed is stored on the incident, the problem's cached analysis is forgotten (it
was made without knowing this, and the next incident of the problem must not reuse it), the
message shows it, and the thread says who confirmed what. The next analysis of the problem,
or of a similar one, is given it as a hypothesis (analysis/lessons.py).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from analysis.lessons import record_confirmation
from blocks.ids import ActionId, BlockId, ModalMetadata
from blocks.modals import confirm_modal
from blocks.text import from_slack
from bot.followers import Followers
from bot.slack_errors import SLACK_FAILURES, explain_slack_error
from bot.slack_publisher import SlackPublisher
from incidents.lifecycle import IncidentService
from incidents.models import Incident
from incidents.offload import Offload
from incidents.store import AnalysisStore

logger = logging.getLogger(__name__)

_LABEL = re.compile(r"^[\s*_>]*(cause|fix)[*_]*\s*:[*_]*\s*", re.IGNORECASE)
"""`cause:` or `fix:` opening a line, also as Slack bold (`*cause:*`) or a quote (`> fix:`)."""


def parse_confirmation(text: str) -> tuple[str | None, str | None] | None:
    """The cause and the fix a thread reply (Slack's `text`) states, or None when it does not
    open with `cause:` or `fix:`, or asks (ends with `?`): then it is a question for Claude.
    Either may come first; each runs until the other's label, so one reply can state both
    over several lines."""
    text = from_slack(text).strip()
    if text.endswith("?"):
        return None
    lines = text.splitlines()
    if not lines or not _LABEL.match(lines[0]):
        return None
    said: dict[str, list[str]] = {"cause": [], "fix": []}
    current = "cause"
    for line in lines:
        label = _LABEL.match(line)
        if label:
            current = label[1].lower()
            line = line[label.end() :]
        said[current].append(line)
    cause, fix = (" ".join(" ".join(said[key]).split()) or None for key in ("cause", "fix"))
    return (cause, fix) if cause or fix else None


class Confirmations:
    """Records confirmations from the modal and from thread replies; see the module
    docstring."""

    def __init__(
        self,
        service: IncidentService,
        store: AnalysisStore,
        publisher: SlackPublisher,
        offload: Offload,
    ) -> None:
        self.service = service
        self.store = store
        self.followers = Followers(slack=publisher)
        self.offload = offload

    async def offer(self, incident: Incident, trigger_id: str, client: AsyncWebClient) -> bool:
        """Open the modal in answer to a click (its trigger lasts 3 s, so this comes first);
        False, logged, when Slack would not: the modal is optional, and never the reason a
        resolution does not happen."""
        try:
            await client.views_open(trigger_id=trigger_id, view=confirm_modal(incident))
        except SLACK_FAILURES as exc:
            logger.warning(
                "%s: the cause-and-fix modal did not open: %s",
                incident.id,
                explain_slack_error(exc),
            )
            return False
        return True

    async def submitted(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """The modal's Save: both fields blank keeps the modal open with a hint."""
        values = view["state"]["values"]
        cause = _typed(values, BlockId.CONFIRM_CAUSE, ActionId.CONFIRM_CAUSE)
        fix = _typed(values, BlockId.CONFIRM_FIX, ActionId.CONFIRM_FIX)
        if cause is None and fix is None:
            problem = "Write the cause, the fix, or both; or close this to skip."
            await ack(response_action="errors", errors={BlockId.CONFIRM_CAUSE.value: problem})
            return
        await ack()
        incident_id = ModalMetadata.parse(view["private_metadata"]).incident_id
        # The modal showed both, prefilled: a field left blank was erased, not kept.
        await self.record(incident_id, body["user"]["id"], cause, fix, replace=True)

    async def from_reply(self, incident_id: str, user: str, text: str) -> bool:
        """Record what a thread reply confirms; False when it confirms nothing, so that the
        reply goes to Claude as a question instead."""
        said = parse_confirmation(text)
        if said is None:
            return False
        await self.record(incident_id, user, *said)
        return True

    async def record(
        self,
        incident_id: str,
        user: str,
        cause: str | None,
        fix: str | None,
        *,
        replace: bool = False,
    ) -> Incident:
        incident = await self.offload(
            record_confirmation,
            self.service,
            self.store,
            incident_id,
            user,
            cause,
            fix,
            replace=replace,
        )
        logger.info("%s: cause and fix confirmed by %s", incident_id, user)
        await self.followers.confirmed(incident)
        return incident


def _typed(values: dict[str, Any], block: BlockId, action: ActionId) -> str | None:
    field = values.get(block.value, {}).get(action.value, {})
    return " ".join(str(field.get("value") or "").split()) or None
