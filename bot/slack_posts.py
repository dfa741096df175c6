"""Recognising the bot's own posts in a channel, for the case Slack cannot make safe by itself;
and the link to a post.

Slack has no idempotent post: a replica killed between posting an incident's message and
recording it leaves a message the store does not know. Every post carries the incident id in
its metadata, so whoever takes the incident over looks in the channel's recent history before
posting again.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_errors import SLACK_FAILURES, explain_slack_error
from incidents.models import MessageRef

logger = logging.getLogger(__name__)

METADATA_EVENT = "incident_posted"
HISTORY_SEARCHED = 200
"""Recent top-level messages searched for a post a dead replica made."""


def post_metadata(incident_id: str) -> dict[str, Any]:
    """Slack message metadata naming the incident: what `find_post` recognises a post by."""
    return {"event_type": METADATA_EVENT, "event_payload": {"incident_id": incident_id}}


async def find_post(client: AsyncWebClient, incident_id: str, channel: str) -> MessageRef | None:
    """The incident's message, if a replica that died before recording it had posted it."""
    history = await client.conversations_history(
        channel=channel, limit=HISTORY_SEARCHED, include_all_metadata=True
    )
    for found in history.get("messages") or []:
        metadata = found.get("metadata") or {}
        payload = metadata.get("event_payload") or {}
        if (
            metadata.get("event_type") == METADATA_EVENT
            and payload.get("incident_id") == incident_id
        ):
            logger.warning("%s was already posted by a replica that stopped", incident_id)
            return MessageRef(
                incident_id=incident_id, channel=channel, ts=str(found["ts"]), synced_version=0
            )
    return None


async def permalink_of(client: AsyncWebClient, ref: MessageRef) -> str | None:
    """The link to an incident's message; None when Slack will not say: a link is a
    convenience (in a ticket, a mail, an MCP answer), and its failure must not fail those."""
    try:
        answer = await client.chat_getPermalink(channel=ref.channel, message_ts=ref.ts)
    except SLACK_FAILURES as exc:
        logger.warning("no permalink for %s: %s", ref.incident_id, explain_slack_error(exc))
        return None
    return str(answer.get("permalink") or "") or None
