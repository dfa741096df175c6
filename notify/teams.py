"""Microsoft Teams: an Adaptive Card posted to a Workflows incoming webhook, for teams that
watch Teams rather than Slack. Webhooks cannot be updated, so an incident gets one card with
its analysis and, when it resolves, one short card saying so.

Alert and model text is untrusted, and a TextBlock renders a Markdown subset: every Markdown
character that could make a link, emphasis, a heading or a list is escaped with a backslash,
and `://` is broken with a zero-width space so that a bare URL in an alert never becomes a
link. The webhook URL carries its signature in the query: errors name only its host.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from analysis.models import Analysis
from incidents.lifecycle import short_duration
from incidents.models import Incident
from notify.http import JsonPoster, excerpt
from notify.outbox import DeliveryError

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
# Teams refuses a message over about 28 KB; the card's text is held well under it.
TEXT_LIMIT = 3000
CARD_TEXT_BUDGET = 20_000
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!<>|~])")
_COLOR = {"CRITICAL": "Attention", "HIGH": "Warning", "MEDIUM": "Accent", "LOW": "Default"}


def escape_markdown(text: str) -> str:
    """Text shown as typed: no link, emphasis or list can come out of it."""
    return _MARKDOWN.sub(r"\\\1", text).replace("://", ":/\u200b/")


def adaptive_card(
    incident: Incident, analysis: Analysis | None, permalink: str | None
) -> dict[str, Any]:
    """The webhook body: severity and title, the facts, and the analysis."""
    body: list[dict[str, Any]] = [_header(incident), _facts(incident)]
    budget = CARD_TEXT_BUDGET
    if analysis is None:
        body.append(_text("No analysis is available yet.", italic=True))
    else:
        sections = [("Root cause", analysis.root_cause), ("Impact", analysis.impact)]
        for title, text in sections:
            block = _cut(text, min(TEXT_LIMIT, budget))
            budget -= len(block)
            body += [_text(title, bold=True), _text(block)]
        body.append(_text("First steps", bold=True))
        for number, step in enumerate(analysis.remediation_steps, start=1):
            if budget <= 0:
                body.append(_text("More steps are in Slack.", italic=True))
                break
            action = _cut(step.action, min(TEXT_LIMIT, budget))
            budget -= len(action)
            body.append(_text(f"{number}\\. {escape_markdown(action)}", escaped=True))
            if step.command:
                command = _cut(step.command, min(TEXT_LIMIT, max(budget, 0)))
                budget -= len(command)
                body.append(
                    {"type": "TextBlock", "text": escape_markdown(command), "wrap": True,
                     "fontType": "Monospace"}
                )  # fmt: skip
    return _message(body, permalink)


def resolved_card(incident: Incident) -> dict[str, Any]:
    """Resolved: by whom (or by the alert clearing) and after how long."""
    lasted = short_duration((incident.resolved_at or incident.last_seen_at) - incident.opened_at)
    by = incident.resolved_by or "the alert clearing"
    line = f"Resolved by {by} after {lasted}, {incident.occurrences} occurrence(s)."
    return _message([_header(incident, prefix="Resolved: "), _text(line)], None)


class TeamsWebhook:
    def __init__(self, *, timeout: float = 10.0, retries: int = 1, backoff: float = 0.5) -> None:
        self._http = JsonPoster(timeout=timeout, retries=retries, backoff=backoff, name="Teams")

    async def post(self, url: str, card: dict[str, Any]) -> str | None:
        """Post one card. Workflows answers 202, the older connectors 200: both are sent."""
        where = _host(url)
        answer = await self._http.post(url, card, where=where)
        if answer.status in (200, 202):
            return None
        if answer.status in (401, 403):
            raise DeliveryError(
                f"Teams refused the webhook at {where} ({answer.status}): is it still enabled?",
                retryable=False,
            )
        raise DeliveryError(
            f"Teams rejected the card at {where} ({answer.status}): {excerpt(answer.body)}",
            retryable=False,
        )

    async def close(self) -> None:
        await self._http.close()


def _message(body: list[dict[str, Any]], permalink: str | None) -> dict[str, Any]:
    content: dict[str, Any] = {
        "$schema": SCHEMA,
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if permalink and permalink.startswith("https://"):
        content["actions"] = [
            {"type": "Action.OpenUrl", "title": "Open in Slack", "url": permalink}
        ]
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_TYPE, "contentUrl": None, "content": content}],
    }


def _header(incident: Incident, prefix: str = "") -> dict[str, Any]:
    return {
        "type": "TextBlock",
        "text": escape_markdown(f"{prefix}[{incident.severity}] {incident.id}: {incident.title}"),
        "weight": "Bolder",
        "size": "Medium",
        "color": _COLOR[incident.severity.value],
        "wrap": True,
    }


def _facts(incident: Incident) -> dict[str, Any]:
    facts = [
        ("Status", incident.status.value),
        ("Source", incident.source),
        ("Resource", incident.resource or "-"),
        ("First seen", incident.opened_at.strftime("%Y-%m-%d %H:%M UTC")),
        ("Last seen", incident.last_seen_at.strftime("%Y-%m-%d %H:%M UTC")),
        ("Occurrences", str(incident.occurrences)),
    ]
    return {
        "type": "FactSet",
        "facts": [{"title": t, "value": escape_markdown(_cut(v, 200))} for t, v in facts],
    }


def _text(
    text: str, *, bold: bool = False, italic: bool = False, escaped: bool = False
) -> dict[str, Any]:
    shown = text if escaped else escape_markdown(text)
    block: dict[str, Any] = {"type": "TextBlock", "text": shown, "wrap": True}
    if bold:
        block["weight"] = "Bolder"
    if italic:
        block["isSubtle"] = True
    return block


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _cut(text: str, limit: int) -> str:
    if limit <= 1:
        return "…"
    return text if len(text) <= limit else text[: limit - 1] + "…"
