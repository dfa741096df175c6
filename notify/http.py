"""The one HTTP call that PagerDuty and Teams share: a JSON POST with a short, bounded retry,
and every failure turned into a `DeliveryError` that says whether a later attempt can help.

The quick retry covers a blip (one 502, a dropped connection) without waiting for the
outbox's 30 s backoff; anything longer is the outbox's job, so it stays at one retry.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from typing import Any

import aiohttp

from notify.outbox import DeliveryError

_BODY_EXCERPT = 200


@dataclass(frozen=True)
class Answer:
    status: int
    body: str

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class JsonPoster:
    """Owns one aiohttp session, made on first use (nothing connects at construction)."""

    def __init__(
        self, *, timeout: float = 10.0, retries: int = 1, backoff: float = 0.5, name: str
    ) -> None:
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.name = name
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str, body: dict[str, Any], *, where: str) -> Answer:
        """POST `body`; the answer of any status below 500 other than 429, which are the
        caller's to read. `where` names the endpoint in errors without its secrets."""
        attempt = 0
        while True:
            try:
                answer = await self._post_once(url, body)
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = (
                    f"{self.name} did not answer within {self.timeout:g} s"
                    if isinstance(exc, TimeoutError)
                    else f"{self.name} is unreachable at {where}"
                )
                failure = DeliveryError(reason, retryable=True)
            else:
                if answer.status != 429 and answer.status < 500:
                    return answer
                label = "is rate limiting" if answer.status == 429 else "is unavailable"
                failure = DeliveryError(f"{self.name} {label} ({answer.status})", retryable=True)
            if attempt >= self.retries:
                raise failure
            attempt += 1
            await asyncio.sleep(self.backoff * (1 + random.random()))

    async def _post_once(self, url: str, body: dict[str, Any]) -> Answer:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        async with self._session.post(url, json=body) as response:
            return Answer(response.status, (await response.text())[:4096])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def excerpt(text: str) -> str:
    """A server's answer cut to one readable line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _BODY_EXCERPT else flat[: _BODY_EXCERPT - 1] + "…"
