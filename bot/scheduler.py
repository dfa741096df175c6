"""The bot's timed jobs, on its own event loop: apscheduler's AsyncIOScheduler.

The scheduler only says *when*; each job reads the time from its own clock and its state
from the store, and is made once across replicas by the store (a job lease for the
escalation pass, a delivery key per day for the digest). So tests drive the jobs with a
manual clock and no real waiting, and a restart loses nothing: there is no job list to
persist, since every job is recomputed from the store when it runs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, time, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from incidents.leases import Leases

logger = logging.getLogger(__name__)

# A digest due while the process was busy or restarting is still posted up to this late.
DIGEST_GRACE = timedelta(hours=2)


def digest_trigger(at: time, timezone: ZoneInfo) -> CronTrigger:
    """Every day at `at` in `timezone`, daylight-saving changes included."""
    return CronTrigger(hour=at.hour, minute=at.minute, timezone=timezone)


Job = Callable[[], Awaitable[object]]


def guarded(name: str, job: Job) -> Callable[[], Awaitable[None]]:
    """`job`, never raising: a failed run is logged, and the next run tries again."""

    async def run() -> None:
        try:
            await job()
        except Exception:  # the schedule is the retry: one failed run must not end it
            logger.exception("%s failed; the next run tries again", name)

    return run


def exclusive(leases: Leases, name: str, interval: timedelta, job: Job) -> Job:
    """`job`, run by one replica per interval: the lease ends just before the next run."""

    async def run() -> None:
        if (await leases.acquire(name, interval * 0.9)).granted:
            await job()

    return run


def build_scheduler(
    leases: Leases,
    *,
    escalate: Job | None,
    escalation_interval: timedelta,
    digest: Job | None,
    digest_at: time | None,
    digest_tz: ZoneInfo,
) -> AsyncIOScheduler:
    """The jobs the settings turn on; started by the caller inside the running loop."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    if escalate is not None:
        scheduler.add_job(
            guarded(
                "escalation", exclusive(leases, "job:escalation", escalation_interval, escalate)
            ),
            IntervalTrigger(seconds=escalation_interval.total_seconds(), timezone=UTC),
            id="escalation",
            coalesce=True,
            max_instances=1,
        )
    if digest is not None and digest_at is not None:
        scheduler.add_job(
            guarded("digest", digest),
            digest_trigger(digest_at, digest_tz),
            id="digest",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=int(DIGEST_GRACE.total_seconds()),
        )
    return scheduler
