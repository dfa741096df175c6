"""Slack's refusals, told so that an operator can act on them, and sorted into those worth
trying again and those that will not change (a missing channel, a message too long)."""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.slack_pacing import NoTurn

# SlackClientError covers SlackApiError (Slack said no) and SlackRequestError (a files
# upload's second step refused); the others are the network, and a stop that left no turn.
SLACK_FAILURES = (SlackClientError, aiohttp.ClientError, TimeoutError, NoTurn)

# Refusals that trying again will not change; anything else (an outage, a 429) may pass later.
PERMANENT_ERRORS = ("channel_not_found", "is_archived", "invalid_blocks", "msg_too_long")


_EXPLAINED = {
    "channel_not_found": "the channel does not exist or the bot cannot see it: check SLACK_CHANNEL",
    "not_in_channel": "the bot is not in the channel: invite it with /invite @incident-responder",
    "invalid_auth": "SLACK_BOT_TOKEN is not valid",
    "account_inactive": "the Slack app was uninstalled or its token revoked",
    "missing_scope": "the Slack app lacks a scope: reinstall it from slack-app-manifest.yaml",
}


def explain_slack_error(exc: BaseException) -> str:
    """Slack's error code with what to do about it, for a log line an operator can act on."""
    if isinstance(exc, SlackApiError):
        error = str(exc.response.get("error", "unknown_error"))
        return f"{error}: {_EXPLAINED.get(error, 'Slack refused the call')}"
    return f"{type(exc).__name__}: {exc}"
