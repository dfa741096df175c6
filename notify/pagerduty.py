"""PagerDuty Events API v2: page on-call for an incident, and mirror its acknowledge and
resolve, with the incident id as `dedup_key` so PagerDuty folds every event of one incident
into one PagerDuty incident, however often an event is retried.

A 400 is PagerDuty saying the event is malformed: retrying cannot help, so it fails at once
with PagerDuty's own words. 429 and 5xx are retried (one quick retry here, then the outbox's
backoff). The routing key is a secret: it is never logged nor put in a reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from analysis.models import Analysis
from incidents.models import Incident, Severity
from notify.http import Answer, JsonPoster, excerpt
from notify.outbox import DeliveryError

logger = logging.getLogger(__name__)

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
SEVERITIES: Mapping[Severity, str] = {
    Severity.CRITICAL: "critical",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "info",
}
SUMMARY_LIMIT = 1024
DEDUP_KEY_LIMIT = 255
_DETAIL_LIMIT = 2000
_STEPS_SENT = 5


def trigger_event(
    routing_key: str, incident: Incident, analysis: Analysis | None, permalink: str | None
) -> dict[str, Any]:
    """The trigger event: what the on-call engineer sees on the phone, so the summary leads
    with severity and title, and the details carry the analysis's gist."""
    details: dict[str, Any] = {
        "incident_id": incident.id,
        "occurrences": incident.occurrences,
        "first_seen": incident.opened_at.isoformat(),
        "last_seen": incident.last_seen_at.isoformat(),
    }
    if analysis is not None:
        details["root_cause"] = _cut(analysis.root_cause, _DETAIL_LIMIT)
        details["impact"] = _cut(analysis.impact, _DETAIL_LIMIT)
        details["first_steps"] = [
            _cut(step.action, _DETAIL_LIMIT) for step in analysis.remediation_steps[:_STEPS_SENT]
        ]
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": incident.id,
        "payload": {
            "summary": _cut(f"[{incident.severity}] {incident.title}", SUMMARY_LIMIT),
            "source": _cut(incident.resource or incident.source, SUMMARY_LIMIT),
            "severity": SEVERITIES[incident.severity],
            "timestamp": incident.opened_at.isoformat(),
            "component": _cut(incident.resource or incident.source, SUMMARY_LIMIT),
            "class": incident.source,
            "custom_details": details,
        },
        "client": "incident-responder",
    }
    if permalink and permalink.startswith("https://"):
        event["client_url"] = permalink
        event["links"] = [{"href": permalink, "text": "Incident in Slack"}]
    return event


class PagerDutyEvents:
    def __init__(
        self,
        routing_key: str,
        url: str = DEFAULT_URL,
        *,
        timeout: float = 10.0,
        retries: int = 1,
        backoff: float = 0.5,
    ) -> None:
        self.url = url
        self._routing_key = routing_key
        self._http = JsonPoster(timeout=timeout, retries=retries, backoff=backoff, name="PagerDuty")

    async def trigger(
        self, incident: Incident, analysis: Analysis | None, permalink: str | None
    ) -> str:
        """Page; the dedup key PagerDuty answered with."""
        return await self._send(trigger_event(self._routing_key, incident, analysis, permalink))

    async def acknowledge(self, incident_id: str) -> str:
        return await self._send(self._follow_up("acknowledge", incident_id))

    async def resolve(self, incident_id: str) -> str:
        return await self._send(self._follow_up("resolve", incident_id))

    async def check(self) -> str:
        """Reachability without paging anyone: an event with no routing key, which PagerDuty
        answers with a 400 "invalid event". That proves the URL speaks Events v2; the
        routing key itself can only be proven by a real event."""
        answer = await self._http.post(self.url, {"event_action": "trigger"}, where=self.url)
        body = answer.json()
        if answer.status == 400 and isinstance(body, dict) and "status" in body:
            return f"PagerDuty Events v2 at {self.url} (routing key not tested: it would page)"
        raise DeliveryError(
            f"{self.url} does not answer as PagerDuty Events v2 ({answer.status})",
            retryable=False,
        )

    async def close(self) -> None:
        await self._http.close()

    def _follow_up(self, action: str, incident_id: str) -> dict[str, Any]:
        return {"routing_key": self._routing_key, "event_action": action, "dedup_key": incident_id}

    async def _send(self, event: dict[str, Any]) -> str:
        answer = await self._http.post(self.url, event, where=self.url)
        if answer.status in (200, 201, 202):
            body = answer.json()
            key = body.get("dedup_key") if isinstance(body, dict) else None
            return str(key or event["dedup_key"])
        raise self._refusal(answer, str(event["event_action"]))

    def _refusal(self, answer: Answer, action: str) -> DeliveryError:
        body = answer.json()
        if answer.status in (401, 403):
            return DeliveryError(
                f"PagerDuty refused the routing key ({answer.status})", retryable=False
            )
        if isinstance(body, dict):
            errors = body.get("errors") or []
            words = "; ".join([str(body.get("message") or ""), *map(str, errors)]).strip("; ")
        else:
            words = excerpt(answer.body)
        words = words.replace(self._routing_key, "<routing key>")
        logger.error("PagerDuty rejected the %s event (%s): %s", action, answer.status, words)
        return DeliveryError(
            f"PagerDuty rejected the {action} event ({answer.status}): {words}", retryable=False
        )


def _cut(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
