"""The HTTP receiver: `POST /alerts` in any supported format, `GET /healthz`.

An alert is acknowledged (202) only after it is recorded, so a sender that gets no 202 still
holds its payload and retries. Store calls run on one dedicated worker thread: SQLite writes
are then serialised without blocking the event loop that also serves Slack.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from typing import Any

from aiohttp import web

from incidents.store import StoreError
from ingest.metrics import ReceiverMetrics
from ingest.normalize import MAX_PAYLOAD_BYTES
from ingest.pipeline import Ingestor, IngestReport, UnreadablePayloadError

logger = logging.getLogger(__name__)

ReportHandler = Callable[[IngestReport], Coroutine[Any, Any, None]]
RETRY_AFTER_SECONDS = "5"


class Receiver:
    def __init__(
        self,
        ingestor: Ingestor,
        executor: Executor,
        on_report: ReportHandler,
        api_key: str | None = None,
    ) -> None:
        self.ingestor = ingestor
        self.executor = executor
        self.on_report = on_report
        self._api_key = api_key.encode() if api_key else None
        self._publishing: set[asyncio.Task[None]] = set()
        self.metrics = ReceiverMetrics()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_PAYLOAD_BYTES)
        app.router.add_post("/alerts", self.post_alerts)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics_text)
        app.on_shutdown.append(self._finish_publishing)
        return app

    async def post_alerts(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            self.metrics.payload("unauthorized")
            return _error(401, "missing or wrong x-api-key header")
        if request.content_length is not None and request.content_length > MAX_PAYLOAD_BYTES:
            self.metrics.payload("too_large")
            return _too_large(request.content_length)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.metrics.payload("too_large")
            return _too_large(None)
        origin = f"webhook:{request.remote or 'unknown'}"
        loop = asyncio.get_running_loop()
        try:
            report = await loop.run_in_executor(self.executor, self.ingestor.ingest, body, origin)
        except UnreadablePayloadError as exc:
            if exc.informational:
                self.metrics.payload("ignored")
                logger.info("not an alert, kept as %s: %s", exc.dead_letter_ids, exc.reason)
                return web.json_response(
                    {"incidents": [], "ignored": exc.reason, "dead_letters": exc.dead_letter_ids},
                    status=202,
                )
            self.metrics.payload("unreadable")
            logger.warning("unreadable payload kept as %s: %s", exc.dead_letter_ids, exc.reason)
            return _error(400, exc.reason, dead_letters=exc.dead_letter_ids)
        except StoreError as exc:
            self.metrics.payload("store_unavailable")
            logger.error("store unavailable, alert refused for retry: %s", exc)
            response = _error(503, "incident store unavailable; retry later")
            response.headers["Retry-After"] = RETRY_AFTER_SECONDS
            return response
        self.metrics.payload("accepted")
        for outcome in report.outcomes:
            self.metrics.alert(outcome.kind.value)
        task = asyncio.create_task(self.on_report(report))
        self._publishing.add(task)
        task.add_done_callback(self._publish_done)
        return web.json_response(_accepted(report), status=202)

    async def healthz(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.executor, self.ingestor.store.ping)
        except StoreError as exc:
            return _error(503, f"store: {exc}")
        return web.json_response({"status": "ok"})

    async def metrics_text(self, request: web.Request) -> web.Response:
        return web.Response(text=self.metrics.render(), content_type="text/plain")

    def _authorised(self, request: web.Request) -> bool:
        if self._api_key is None:
            return True
        given = request.headers.get("x-api-key", "").encode()
        return hmac.compare_digest(given, self._api_key)

    def _publish_done(self, task: asyncio.Task[None]) -> None:
        self._publishing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("publishing failed", exc_info=task.exception())

    async def _finish_publishing(self, _: web.Application) -> None:
        await self.drain()

    async def drain(self) -> None:
        """Wait for every publishing task, including those of requests that finished after
        shutdown began: their alerts got a 202 and must reach the publisher."""
        while self._publishing:
            await asyncio.gather(*list(self._publishing), return_exceptions=True)


def _accepted(report: IngestReport) -> dict[str, Any]:
    return {
        "incidents": report.incident_ids,
        "alerts": len(report.outcomes),
        "outcomes": [
            {
                "incident": o.incident.id if o.incident else None,
                "outcome": o.kind.value,
                "fingerprint": o.alert.fingerprint,
            }
            for o in report.outcomes
        ],
        "rejected": [r.reason for r in report.rejections],
        "dead_letters": report.dead_letter_ids,
    }


def _error(status: int, reason: str, **extra: Any) -> web.Response:
    return web.json_response({"error": reason, **extra}, status=status)


def _too_large(length: int | None) -> web.Response:
    size = f"{length} bytes" if length is not None else "the body"
    logger.warning("refused %s over the %d byte limit", size, MAX_PAYLOAD_BYTES)
    return _error(413, f"{size} is over the {MAX_PAYLOAD_BYTES} byte limit; split the batch")
