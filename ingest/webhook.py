"""The HTTP receiver: `POST /alerts` in any supported format, `GET /healthz`, `GET /readyz`.

An alert is acknowledged (202) only after it is recorded, so a sender that gets no 202 still
holds its payload and retries. Payloads go through the group committer: requests that arrive
together are written in one store transaction, and each is answered when its batch is durable.
A full backlog is answered 429 with Retry-After, at once and without reading the store, so a
storm slows its senders down instead of growing the process.

`/healthz` is liveness: it answers from the event loop alone, never behind the store or a
backlog, so an orchestrator does not restart a process that is busy rather than dead.
`/readyz` says whether the process can do its work: the store's answer, Slack's connection and
the backlog.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from incidents.store import StoreError
from ingest.content_coding import SUPPORTED, InflatedTooLargeError, unsupported
from ingest.group_commit import BackloggedError, GroupCommitter, StoppingError
from ingest.metrics import ReceiverMetrics
from ingest.normalize import MAX_PAYLOAD_BYTES
from ingest.pipeline import IngestReport, UnreadablePayloadError
from ingest.threads import in_daemon_thread

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"
READINESS_TIMEOUT = 2.0
MAX_IDEMPOTENCY_KEY = 200
# Whether a dependency can serve: None when it can, else what is wrong.
Check = Callable[[], Awaitable[str | None]]


class Receiver:
    def __init__(
        self,
        committer: GroupCommitter,
        api_key: str | None = None,
        checks: dict[str, Check] | None = None,
    ) -> None:
        self.committer = committer
        self._api_key = api_key.encode() if api_key else None
        self.metrics = ReceiverMetrics()
        self._checks = {"store": self._store_ready, **(checks or {})}

    def app(self) -> web.Application:
        # The body is read as it came and inflated in the parse thread, bounded
        # (ingest/content_coding.py): aiohttp's own inflation has no bound, and a body that
        # does not inflate escapes the handler as a 500 that breaks the connection.
        app = web.Application(
            client_max_size=MAX_PAYLOAD_BYTES, handler_args={"auto_decompress": False}
        )
        app.router.add_post("/alerts", self.post_alerts)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics_text)
        return app

    async def post_alerts(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            self.metrics.payload("unauthorized")
            return _error(401, "missing or wrong x-api-key header")
        if request.content_length is not None and request.content_length > MAX_PAYLOAD_BYTES:
            self.metrics.payload("too_large")
            return _too_large(request.content_length)
        if request.content_length is not None and not self.committer.has_room(
            request.content_length
        ):
            self.metrics.payload("backlogged")
            return _retry_later(429, "ingest backlog is full; retry later", "1")
        idempotency_key = request.headers.get("Idempotency-Key")
        if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            self.metrics.payload("unreadable")
            return _error(400, f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
        content_encoding = request.headers.get("Content-Encoding")
        if unknown := unsupported(content_encoding):
            self.metrics.payload("unsupported_encoding")
            return _error(
                415,
                f"Content-Encoding {', '.join(unknown)} is not supported; "
                f"send one of {', '.join(SUPPORTED)}",
            )
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.metrics.payload("too_large")
            return _too_large(None)
        except RequestPayloadError as exc:
            # The body never arrived whole (a cut chunked stream): nothing to keep.
            self.metrics.payload("unreadable")
            return _error(400, f"body could not be read: {exc}")
        origin = f"webhook:{request.remote or 'unknown'}"
        message_id = f"http:{idempotency_key}" if idempotency_key else None
        try:
            report = await self.committer.submit(
                body, origin, message_id, content_encoding=content_encoding
            )
        except InflatedTooLargeError as exc:
            self.metrics.payload("too_large")
            logger.warning("refused: %s", exc)
            return _error(413, str(exc))
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
        except BackloggedError as exc:
            self.metrics.payload("backlogged")
            return _retry_later(429, str(exc), str(exc.retry_after))
        except StoppingError as exc:
            self.metrics.payload("stopping")
            return _retry_later(503, str(exc), RETRY_AFTER_SECONDS)
        except StoreError as exc:
            self.metrics.payload("store_unavailable")
            logger.error("store unavailable, alert refused for retry: %s", exc)
            return _retry_later(503, "incident store unavailable; retry later", RETRY_AFTER_SECONDS)
        self.metrics.payload("accepted")
        for outcome in report.outcomes:
            self.metrics.alert(outcome.kind.value)
        return web.json_response(_accepted(report), status=202)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        names = list(self._checks)
        problems = await asyncio.gather(*(self._run_check(self._checks[n]) for n in names))
        checks = {name: problem or "ok" for name, problem in zip(names, problems, strict=True)}
        ready = not any(problems)
        return web.json_response(
            {
                "status": "ready" if ready else "not ready",
                "checks": checks,
                "backlog": self.committer.backlog,
            },
            status=200 if ready else 503,
        )

    async def metrics_text(self, request: web.Request) -> web.Response:
        return web.Response(text=self.metrics.render(), content_type="text/plain")

    async def _run_check(self, check: Check) -> str | None:
        try:
            return await asyncio.wait_for(check(), READINESS_TIMEOUT)
        except TimeoutError:
            return f"no answer within {READINESS_TIMEOUT:.0f}s"

    async def _store_ready(self) -> str | None:
        """On a thread of its own: a probe must not queue behind a storm's writes, nor hold
        the process open at exit when the store does not answer."""
        try:
            await in_daemon_thread(self.committer.ingestor.store.ping)
        except StoreError as exc:
            return str(exc)
        return None

    def _authorised(self, request: web.Request) -> bool:
        if self._api_key is None:
            return True
        given = request.headers.get("x-api-key", "").encode()
        return hmac.compare_digest(given, self._api_key)


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


def _retry_later(status: int, reason: str, seconds: str) -> web.Response:
    response = _error(status, reason)
    response.headers["Retry-After"] = seconds
    return response


def _too_large(length: int | None) -> web.Response:
    size = f"{length} bytes" if length is not None else "the body"
    logger.warning("refused %s over the %d byte limit", size, MAX_PAYLOAD_BYTES)
    return _error(413, f"{size} is over the {MAX_PAYLOAD_BYTES} byte limit; split the batch")
