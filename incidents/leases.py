"""This replica's hold on the store's leases: how several replicas of the bot act as one.

A lease is a named claim in the shared store, won by one conditional write and held until it
is released or runs out. Work that must happen once (a Slack root post, a Claude analysis of
a problem, a scheduled pass) runs under its lease; a replica killed in the middle leaves a
lease that ends by itself, so another replica takes the work over after at most one lease
duration. Long work renews its lease as it goes, so it is never taken over while alive.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from incidents.offload import Offload
from incidents.store import LeaseGrant, LeaseStore

logger = logging.getLogger(__name__)

_FIRST_POLL = 0.05
_LAST_POLL = 1.0


def replica_name() -> str:
    """Unique per process and readable in a log: host, pid and a random suffix, because a
    restarted container may reuse both host name and pid."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Leases:
    def __init__(
        self,
        store: LeaseStore,
        duration: timedelta,
        executor: Executor | None = None,
        holder: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.store = store
        self.duration = duration
        self.holder = holder or replica_name()
        self._offload = Offload(executor)
        self._clock = clock

    async def acquire(self, name: str, duration: timedelta | None = None) -> LeaseGrant:
        """One attempt; the lease is this replica's until `duration` from now if granted."""
        return await self._offload(
            self.store.acquire_lease, name, self.holder, self._clock(), duration or self.duration
        )

    async def release(self, name: str) -> None:
        await self._offload(self.store.release_lease, name, self.holder)

    @asynccontextmanager
    async def holding(self, name: str, *, wait: timedelta) -> AsyncIterator[LeaseGrant]:
        """Acquire `name`, waiting up to `wait` while another replica holds it; renew it while
        the block runs and release it after. Yields the grant, BUSY when the wait ran out:
        the block decides what doing the work anyway, or not at all, would cost."""
        grant = await self._acquire_within(name, wait)
        if not grant.granted:
            yield grant
            return
        renewing = asyncio.create_task(self._renew(name))
        try:
            yield grant
        finally:
            await _stop(renewing)
            await self.release(name)

    async def _acquire_within(self, name: str, wait: timedelta) -> LeaseGrant:
        deadline = asyncio.get_running_loop().time() + wait.total_seconds()
        poll = _FIRST_POLL
        while True:
            grant = await self.acquire(name)
            if grant.granted:
                if grant is LeaseGrant.TAKEN_OVER:
                    logger.warning("took over %s: its holder stopped before finishing", name)
                return grant
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return grant
            await asyncio.sleep(min(poll, left))
            poll = min(poll * 2, _LAST_POLL)

    async def _renew(self, name: str) -> None:
        while True:
            await asyncio.sleep(self.duration.total_seconds() / 3)
            try:
                grant = await self.acquire(name)
            except Exception:  # a renewal is retried at the next beat; the lease has 2 more
                logger.warning("could not renew %s; trying again", name, exc_info=True)
                continue
            if not grant.granted:
                logger.warning("lost %s to another replica while still working", name)
                return


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel and await `task`, swallowing its cancellation but never our own: a shutdown that
    cancels the caller while it waits here must still stop the caller."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
