"""A local fake of PagerDuty's Events API v2, `POST /v2/enqueue`, for `notify.pagerduty`.

It validates what PagerDuty documents and answers in PagerDuty's shapes:

- 202 `{"status": "success", "message": "Event processed", "dedup_key": ...}` for an accepted
  event, which is recorded in `events` (with a generated `dedup_key` for a trigger that had
  none, as PagerDuty generates one);
- 400 `{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}`
  listing every problem at once, as PagerDuty does: the routing key present, 32 characters
  and alphanumeric (PagerDuty's own wording), and one of `routing_keys` ("Invalid routing
  key", as PagerDuty answers a well-formed key that names no integration); `event_action`
  one of trigger, acknowledge, resolve; `dedup_key` a string of at most 255 characters, and
  present for acknowledge and resolve; for a trigger, a `payload` with a `summary` of at most
  1024 characters, a `source`, a `severity` of critical, error, warning or info, and an
  ISO 8601 `timestamp` when there is one; `links` and `images` with their `href` and `src`.
  Messages other than the routing key's are worded plausibly, not verbatim.
- 413 for a body over PagerDuty's 512 KB limit.

Unknown top-level and payload keys are accepted and ignored: PagerDuty documents no
rejection of them, and real senders add their own (Grafana sends `contexts`). The payload of
an acknowledge or resolve is ignored for the same reason. `fail_next` and `stall_next` inject
faults into the next requests before any validation. Deliberately absent: the change events
endpoint, the v1 API, rate limiting by itself (inject 429 with `fail_next`).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from tests.fakes.local_server import SHUTDOWN_GRACE_SECONDS, LocalServer

ROUTING_KEY = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY12"
ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
SIZE_LIMIT = 512 * 1024


@dataclass
class _Fault:
    status: int
    remaining: int
    body: Any


def invalid_event(errors: list[str]) -> web.Response:
    return web.json_response(
        {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
        status=400,
    )


class PagerDutyFake(LocalServer):
    """`async with PagerDutyFake() as pd:` then `PagerDutyEvents(pd.routing_key, pd.events_url)`."""

    def __init__(self, routing_key: str = ROUTING_KEY, *, others: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.routing_key = routing_key
        self.routing_keys = {routing_key, *others}
        self.events: list[dict[str, Any]] = []
        self.received = 0
        self._faults: list[_Fault] = []
        self._stall = 0.0

    @property
    def events_url(self) -> str:
        return f"{self.url}/v2/enqueue"

    def fail_next(self, status: int = 500, count: int = 1, body: Any = None) -> None:
        """Answer the next `count` requests with `status` and `body` as JSON (when None, a 429
        in PagerDuty's words, or plain text for any other status)."""
        self._faults.append(_Fault(status, count, body))

    def stall_next(self, seconds: float) -> None:
        """Hold the next request this long before answering, to drive client timeouts."""
        self._stall = seconds

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v2/enqueue", self._enqueue)
        return app

    def make_runner(self, app: web.Application) -> web.AppRunner:
        """Cancel a stalled handler when the client gives up, so that stopping never waits."""
        return web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=SHUTDOWN_GRACE_SECONDS, access_log=None
        )

    async def _enqueue(self, request: web.Request) -> web.Response:
        self.received += 1
        if self._stall:
            seconds, self._stall = self._stall, 0.0
            await asyncio.sleep(seconds)
        if self._faults:
            fault = self._faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.pop(0)
            if fault.body is not None:
                return web.json_response(fault.body, status=fault.status)
            return _fault_response(fault.status)
        raw = await request.read()
        if len(raw) > SIZE_LIMIT:
            return web.Response(status=413, text="Request Entity Too Large")
        try:
            event = json.loads(raw)
        except ValueError:
            return invalid_event(["Could not parse the request body as JSON"])
        if not isinstance(event, dict):
            return invalid_event(["Event object must be a JSON object"])
        errors = self._validate(event)
        if errors:
            return invalid_event(errors)
        key = event.get("dedup_key") or uuid.uuid4().hex
        self.events.append({**event, "dedup_key": key})
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": key}, status=202
        )

    def _validate(self, event: dict[str, Any]) -> list[str]:
        errors = _routing_key_errors(event.get("routing_key"))
        if not errors and event["routing_key"] not in self.routing_keys:
            errors.append("Invalid routing key")
        action = event.get("event_action")
        if not isinstance(action, str) or not action:
            errors.append("'event_action' is missing or blank")
        elif action not in ACTIONS:
            errors.append(f"'event_action' must be one of {', '.join(ACTIONS)}")
        dedup_key = event.get("dedup_key")
        if dedup_key is not None and not isinstance(dedup_key, str):
            errors.append("'dedup_key' must be a string")
        elif isinstance(dedup_key, str) and len(dedup_key) > 255:
            errors.append("'dedup_key' is too long (maximum is 255 characters)")
        elif action in ("acknowledge", "resolve") and not dedup_key:
            errors.append(f"'dedup_key' is required for an {action} event")
        if action == "trigger":
            errors += _payload_errors(event.get("payload"))
        errors += _context_errors(event, "links", "href") + _context_errors(event, "images", "src")
        return errors


def _routing_key_errors(key: Any) -> list[str]:
    if not isinstance(key, str) or not key.strip():
        return ["'routing_key' is missing or blank"]
    errors = []
    if len(key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    if not key.isascii() or not key.isalnum():
        errors.append("'routing_key' cannot contain non-alphanumeric characters.")
    return errors


def _payload_errors(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or is not an object"]
    errors = []
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors.append("'payload.summary' is missing or blank")
    elif len(summary) > 1024:
        errors.append("'payload.summary' is too long (maximum is 1024 characters)")
    source = payload.get("source")
    if not isinstance(source, str) or not source.strip():
        errors.append("'payload.source' is missing or blank")
    if payload.get("severity") not in SEVERITIES:
        errors.append(f"'payload.severity' must be one of {', '.join(SEVERITIES)}")
    timestamp = payload.get("timestamp")
    if timestamp is not None and not _is_iso8601(timestamp):
        errors.append("'payload.timestamp' is not a valid ISO 8601 timestamp")
    details = payload.get("custom_details")
    if details is not None and not isinstance(details, dict | str):
        errors.append("'payload.custom_details' must be an object")
    return errors


def _context_errors(event: dict[str, Any], field: str, required: str) -> list[str]:
    items = event.get(field)
    if items is None:
        return []
    if not isinstance(items, list) or not all(
        isinstance(item, dict) and isinstance(item.get(required), str) for item in items
    ):
        return [f"'{field}' must be a list of objects, each with a '{required}'"]
    return []


def _is_iso8601(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _fault_response(status: int) -> web.Response:
    if status == 429:
        return web.json_response(
            {"status": "throttle event", "message": "Requests for this service are arriving "
             "too quickly.  Please retry later."},
            status=429,
        )  # fmt: skip
    return web.Response(status=status, text=f"Injected failure ({status})")
