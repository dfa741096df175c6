"""The daily digest: the last day's figures in the channel, once a day across replicas.

Each day's digest is a delivery keyed by its local date (`digest:digest:daily:<date>`), so
the outbox makes it once however many replicas fire the job, and retries it while Slack is
down; the period is fixed when it is requested (from `DIGEST_AT` yesterday to `DIGEST_AT`
today, local time), so a retry an hour late still reports the same day. The analysis figures
(cache hit rate, Claude calls and cost) come from per-day cost totals that run to the time
it is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from blocks.commands import digest_message
from blocks.kit import Message
from bot.stats import compute_stats
from incidents.models import Delivery
from incidents.offload import Offload
from incidents.store import ReportStore
from notify.outbox import Outbox, utcnow

logger = logging.getLogger(__name__)

DIGEST = "digest"
# The time of day without DIGEST_AT: no digest is requested then, and one requested before
# (its period is stored with it) is still sent; this time is only never used.
DEFAULT_DIGEST_AT = time(9, 0)

# Posts a message to the channel; returns its ts, raises DeliveryError when it cannot.
ChannelPoster = Callable[[Message], Awaitable[str]]


class Digest:
    def __init__(
        self,
        store: ReportStore,
        post: ChannelPoster,
        timezone: ZoneInfo,
        at: time,
        *,
        executor: Executor | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.post = post
        self.timezone = timezone
        self.at = at
        self._offload = Offload(executor)
        self._clock = clock

    def delivery(self, outbox: Outbox) -> Delivery:
        """The digest last due (today's at `at` local time, or yesterday's before then): the
        day between that time yesterday and today, in local time, so that consecutive
        digests neither overlap nor leave a gap, on daylight-saving days (23 or 25 hours)
        too, and a run that fires late still reports the day that was due."""
        local_now = self._clock().astimezone(self.timezone)
        due_day = local_now.date()
        if datetime.combine(due_day, self.at, self.timezone) > local_now:
            due_day -= timedelta(days=1)
        until = datetime.combine(due_day, self.at, self.timezone)
        since = datetime.combine(due_day - timedelta(days=1), self.at, self.timezone)
        day = due_day.isoformat()
        request = {"since": since.isoformat(), "until": until.isoformat(), "day": day}
        return outbox.new(DIGEST, DIGEST, "daily", "scheduler", request, nonce=day)

    async def request(self, outbox: Outbox) -> bool:
        """The scheduled job: True when this call requested today's digest, False when it
        was requested already (by another replica, or before a restart)."""
        return await outbox.request(self.delivery(outbox)) is not None

    async def send(self, delivery: Delivery) -> str | None:
        """The outbox's sender for digest deliveries."""
        since = datetime.fromisoformat(str(delivery.request["since"]))
        until = datetime.fromisoformat(str(delivery.request["until"]))
        hours = round((until - since).total_seconds() / 3600)
        stats = await self._offload(
            lambda: compute_stats(self.store, since, f"last {hours}h", until=until)
        )
        return await self.post(digest_message(stats, self.timezone))
