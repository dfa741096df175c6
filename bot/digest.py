"""The daily digest: yesterday's figures in the channel, once a day across replicas.

Each day's digest is a delivery keyed by its local date (`digest:digest:daily:<date>`), so
the outbox makes it once however many replicas fire the job, and retries it while Slack is
down; the figures are computed when it is sent, over the 24 hours before it was due, so a
retry an hour late still reports the same day.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from datetime import datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from blocks.commands import digest_message
from blocks.kit import Message
from bot.stats import compute_stats
from incidents.models import Delivery
from incidents.store import Store
from notify.outbox import Outbox, utcnow

logger = logging.getLogger(__name__)

T = TypeVar("T")
DIGEST = "digest"
PERIOD = timedelta(hours=24)

# Posts a message to the channel; returns its ts, raises DeliveryError when it cannot.
ChannelPoster = Callable[[Message], Awaitable[str]]


class Digest:
    def __init__(
        self,
        store: Store,
        post: ChannelPoster,
        timezone: ZoneInfo,
        *,
        executor: Executor | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.post = post
        self.timezone = timezone
        self._executor = executor
        self._clock = clock

    def delivery(self, outbox: Outbox) -> Delivery:
        """Today's digest (today in the digest's timezone), covering the 24 hours to now."""
        now = self._clock()
        day = now.astimezone(self.timezone).date().isoformat()
        request = {"since": (now - PERIOD).isoformat(), "until": now.isoformat(), "day": day}
        return outbox.new(DIGEST, DIGEST, "daily", "scheduler", request, nonce=day)

    async def request(self, outbox: Outbox) -> bool:
        """The scheduled job: True when this call requested today's digest, False when it
        was requested already (by another replica, or before a restart)."""
        return await outbox.request(self.delivery(outbox)) is not None

    async def send(self, delivery: Delivery) -> str | None:
        """The outbox's sender for digest deliveries."""
        since = datetime.fromisoformat(str(delivery.request["since"]))
        until = datetime.fromisoformat(str(delivery.request["until"]))
        stats = await self._store(lambda: compute_stats(self.store, since, "last 24h", until=until))
        return await self.post(digest_message(stats, self.timezone))

    async def _store(self, call: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)
