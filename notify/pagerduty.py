"""PagerDuty Events API v2: page on-call for an incident, and mirror its acknowledge and
resolve.

The incident id is always the `dedup_key`, so every event of one incident lands on one
PagerDuty alert however often it is retried: that is what makes retrying a trigger safe, here
and in the outbox. A 400 is PagerDuty saying the event is malformed (or the routing key does
not exist): retrying cannot help, so it fails at once with PagerDuty's own words, logged at
ERROR because it means the bot or its configuration is wrong. 429, 5xx and network failures
get one quick retry inside the call, so a blip does not wait for the outbox's 30 s backoff;
anything longer is the outbox's job.

The routing key is a secret (whoever has it can page the team): it lives only in the request
body, never in a log line or a reason, and is scrubbed from anything PagerDuty answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Mapping
from typing import Any

import aiohttp

from analysis.models import Analysis
from incidents.models import Incident, Severity
from notify.outbox import DeliveryError
from notify.urls import is_https, origin

logger = logging.getLogger(__name__)

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
SEVERITIES: Mapping[Severity, str] = {
    Severity.CRITICAL: "critical",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "info",
}
SUMMARY_LIMIT = 1024
CLIENT = "incident-responder"
# PagerDuty documents no limit for these; a phone screen is the practical one.
_FIELD_LIMIT = 255
_DETAIL_LIMIT = 1000
_STEPS_SENT = 3
_BODY_READ_LIMIT = 4096
_EXCERPT_LIMIT = 200


def trigger_event(
    incident: Incident, analysis: Analysis | None, permalink: str | None
) -> dict[str, Any]:
    """The trigger event, without the routing key (the client adds it when sending, so that
    this dict can be shown and tested freely).

    Follows PD-CEF: `source` is the affected system (the resource, else the alert source),
    `group` the alert source the events come from, and `class` the kind of problem (the
    title, which unlike the summary stays the same when the severity rises), so PagerDuty's
    event rules can route on them. `component` is left out: nothing in an incident says
    which part of the system broke, and a guess would mislead those rules. The summary is
    what the phone shows: severity and title on one line.
    """
    details: dict[str, Any] = {
        "incident_id": incident.id,
        "status": incident.status.value,
        "occurrences": incident.occurrences,
        "first_seen": incident.opened_at.isoformat(),
        "last_seen": incident.last_seen_at.isoformat(),
    }
    if analysis is not None:
        details["root_cause"] = _cut(analysis.root_cause, _DETAIL_LIMIT)
        details["impact"] = _cut(analysis.impact, _DETAIL_LIMIT)
        details["first_steps"] = [
            _cut(f"{number}. {step.action}", _DETAIL_LIMIT)
            for number, step in enumerate(analysis.remediation_steps[:_STEPS_SENT], start=1)
        ]
        details["confidence"] = round(analysis.confidence, 2)
    event: dict[str, Any] = {
        "event_action": "trigger",
        "dedup_key": incident.id,
        "payload": {
            "summary": _cut(f"[{incident.severity}] {incident.title}", SUMMARY_LIMIT),
            "source": _cut(incident.resource or incident.source, _FIELD_LIMIT),
            "severity": SEVERITIES[incident.severity],
            "timestamp": incident.opened_at.isoformat(),
            "group": _cut(incident.source, _FIELD_LIMIT),
            "class": _cut(incident.title, _FIELD_LIMIT),
            "custom_details": details,
        },
        "client": CLIENT,
    }
    if is_https(permalink):
        event["client_url"] = permalink
        event["links"] = [{"href": permalink, "text": "Incident in Slack"}]
    return event


def follow_up_event(action: str, incident_id: str) -> dict[str, Any]:
    """An acknowledge or resolve: PagerDuty takes no payload for these, only the key."""
    return {"event_action": action, "dedup_key": incident_id}


class PagerDutyEvents:
    """Sends events for one PagerDuty service (one routing key). The session, when not given,
    is made on first use, so that constructing the client connects to nothing."""

    def __init__(
        self,
        routing_key: str,
        url: str = DEFAULT_URL,
        *,
        timeout: float = 10.0,
        session: aiohttp.ClientSession | None = None,
        retries: int = 1,
        backoff: float = 0.5,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._routing_key = routing_key
        self._session = session
        self._owns_session = session is None
        self._where = origin(url)

    async def trigger(
        self, incident: Incident, analysis: Analysis | None, permalink: str | None
    ) -> str:
        """Page (or add to the open alert of this incident); the dedup key PagerDuty echoed."""
        return await self._send(trigger_event(incident, analysis, permalink))

    async def acknowledge(self, incident_id: str) -> str:
        return await self._send(follow_up_event("acknowledge", incident_id))

    async def resolve(self, incident_id: str) -> str:
        return await self._send(follow_up_event("resolve", incident_id))

    async def check(self) -> str:
        """Prove the URL speaks Events v2 without paging anyone.

        It sends an event with no routing key: no service can receive it, and PagerDuty
        answers 400 "invalid event". That answer proves the endpoint; the routing key itself
        is not proven, because only a real event would prove it, and a real event pages.
        """
        status, body = await self._post({"event_action": "trigger"})
        if status == 400 and isinstance(body, dict) and body.get("status") == "invalid event":
            return (
                f"PagerDuty Events v2 at {self._where} "
                "(routing key not tested: only a real event would, and it would page)"
            )
        if status == 404:
            raise self._refusal(status, body, "test")
        raise DeliveryError(
            f"{self._where} does not answer as PagerDuty Events v2 ({status})", retryable=False
        )

    async def close(self) -> None:
        """Close the session if this client made it; a session passed in is its owner's."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _send(self, event: dict[str, Any]) -> str:
        status, body = await self._post({"routing_key": self._routing_key, **event})
        if 200 <= status < 300:
            echoed = body.get("dedup_key") if isinstance(body, dict) else None
            return str(echoed or event["dedup_key"])
        raise self._refusal(status, body, str(event["event_action"]))

    async def _post(self, event: dict[str, Any]) -> tuple[int, Any]:
        """POST one event; PagerDuty's status and body (JSON when it is) for any answer but
        429 and 5xx. Those, timeouts and network errors get `retries` quick retries with
        jitter, then raise a retryable DeliveryError."""
        attempt = 0
        while True:
            try:
                status, body = await self._post_once(event)
            except TimeoutError:
                failure = DeliveryError(
                    f"PagerDuty did not answer within {self.timeout:g} s", retryable=True
                )
            except aiohttp.ClientError:
                failure = DeliveryError(
                    f"PagerDuty is unreachable at {self._where}", retryable=True
                )
            else:
                if status == 429:
                    failure = DeliveryError("PagerDuty is rate limiting (429)", retryable=True)
                elif status >= 500:
                    failure = DeliveryError(f"PagerDuty is unavailable ({status})", retryable=True)
                else:
                    return status, body
            if attempt >= self.retries:
                raise failure
            attempt += 1
            await asyncio.sleep(self.backoff * (1 + random.random()))

    async def _post_once(self, event: dict[str, Any]) -> tuple[int, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with self._session.post(self.url, json=event, timeout=timeout) as response:
            text = (await response.read())[:_BODY_READ_LIMIT].decode("utf-8", errors="replace")
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

    def _refusal(self, status: int, body: Any, action: str) -> DeliveryError:
        """What a 4xx means, in words a person can act on; none of them is retryable."""
        if status in (401, 403):
            return DeliveryError(f"PagerDuty refused the routing key ({status})", retryable=False)
        if status == 404:
            return DeliveryError(
                f"PagerDuty Events v2 is not at {self._where} (404): check the events URL",
                retryable=False,
            )
        if isinstance(body, dict):
            errors = body.get("errors")
            parts = [str(body.get("message") or "")]
            parts += [str(error) for error in errors] if isinstance(errors, list) else []
            words = self._scrub("; ".join(part for part in parts if part))
        else:
            # Scrubbed before it is cut: a cut could split the key and so hide it from the scrub.
            words = _excerpt(self._scrub(str(body)))
        words = words or "no reason given"
        logger.error("PagerDuty rejected the %s event (%s): %s", action, status, words)
        return DeliveryError(
            f"PagerDuty rejected the {action} event ({status}): {words}", retryable=False
        )

    def _scrub(self, text: str) -> str:
        """PagerDuty's words without the routing key, should it ever echo it back."""
        return text.replace(self._routing_key, "<routing key>") if self._routing_key else text


def _excerpt(text: str) -> str:
    return _cut(text, _EXCERPT_LIMIT)


def _cut(text: str, limit: int) -> str:
    """One line within `limit` characters, marked with "…" when it had to be cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
