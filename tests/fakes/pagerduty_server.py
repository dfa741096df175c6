"""A local fake of PagerDuty's Events API v2 (`POST /v2/enqueue`), validating what PagerDuty
validates: a known 32-character routing key, the event action, the dedup key's length, and a
trigger's payload (summary up to 1,024 characters, source, one of four severities). Accepted
events are kept in `events`; a bad one gets PagerDuty's 400 shape. `fail_next` injects 429s
and 5xx answers."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.fakes.local_server import LocalServer

ROUTING_KEY = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY12"
_ACTIONS = ("trigger", "acknowledge", "resolve")
_SEVERITIES = ("critical", "error", "warning", "info")


class PagerDutyFake(LocalServer):
    def __init__(self, routing_key: str = ROUTING_KEY) -> None:
        super().__init__()
        self.routing_key = routing_key
        self.events: list[dict[str, Any]] = []
        self.received = 0
        self._faults: list[int] = []

    @property
    def events_url(self) -> str:
        return f"{self.url}/v2/enqueue"

    def fail_next(self, status: int = 500, count: int = 1) -> None:
        self._faults += [status] * count

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v2/enqueue", self._enqueue)
        return app

    async def _enqueue(self, request: web.Request) -> web.Response:
        self.received += 1
        if self._faults:
            status = self._faults.pop(0)
            return web.json_response({"status": "error", "message": "injected"}, status=status)
        try:
            event = json.loads(await request.read())
        except ValueError:
            return _invalid(["Request body is not valid JSON"])
        errors = _validate(event)
        if errors:
            return _invalid(errors)
        if event["routing_key"] != self.routing_key:
            return _invalid(["Invalid routing key"])
        self.events.append(event)
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": event["dedup_key"]},
            status=202,
        )


def _validate(event: Any) -> list[str]:
    if not isinstance(event, dict):
        return ["Event object is not an object"]
    errors = []
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        errors.append("'routing_key' is missing or not 32 characters long")
    if event.get("event_action") not in _ACTIONS:
        errors.append("'event_action' is invalid (must be trigger, acknowledge or resolve)")
    dedup = event.get("dedup_key")
    if event.get("event_action") != "trigger" and not dedup:
        errors.append("'dedup_key' is required for acknowledge and resolve")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if event.get("event_action") == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return [*errors, "'payload' is missing"]
        summary = payload.get("summary")
        if not isinstance(summary, str) or not summary or len(summary) > 1024:
            errors.append("'payload.summary' is missing or longer than 1024 characters")
        if not payload.get("source"):
            errors.append("'payload.source' is missing")
        if payload.get("severity") not in _SEVERITIES:
            errors.append("'payload.severity' is invalid")
    return errors


def _invalid(errors: list[str]) -> web.Response:
    body = {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
    return web.json_response(body, status=400)
