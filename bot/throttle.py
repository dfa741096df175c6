"""At most one emission per key per interval, whatever the rate of offers.

The first offer for a key goes out at once; later offers within the interval are folded into
one that goes out when the interval ends, carrying the newest value. This is what keeps an
alert storm to one update per incident every few seconds, on the console now and on Slack's
`chat.update` later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
logger = logging.getLogger(__name__)


class Throttle(Generic[T]):
    def __init__(
        self,
        interval: float,
        emit: Callable[[T], Awaitable[None]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self._emit = emit
        self._clock = clock
        self._last_emit: dict[str, float] = {}
        self._pending: dict[str, T] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}

    async def offer(self, key: str, value: T) -> None:
        now = self._clock()
        last = self._last_emit.get(key)
        if key not in self._pending and (last is None or now - last >= self.interval):
            self._last_emit[key] = now
            self._forget_stale(now)
            await self._emit(value)
            return
        self._pending[key] = value
        if key not in self._timers:
            delay = self.interval - (now - last) if last is not None else 0.0
            self._timers[key] = asyncio.create_task(self._emit_later(key, max(0.0, delay)))

    def discard(self, key: str) -> None:
        """Drop what is pending for a key: a newer event (a resolution) supersedes it."""
        self._pending.pop(key, None)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    async def flush(self) -> None:
        """Emit everything pending now: on shutdown, so the last state is not lost."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        pending, self._pending = self._pending, {}
        for key, value in pending.items():
            self._last_emit[key] = self._clock()
            await self._emit(value)

    async def _emit_later(self, key: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self._timers.pop(key, None)
        if key in self._pending:
            self._last_emit[key] = self._clock()
            try:
                await self._emit(self._pending.pop(key))
            except Exception:  # a timer task has nobody to raise to: say so, keep the rest
                logger.exception("a coalesced update of %s failed", key)

    def _forget_stale(self, now: float) -> None:
        """Keys idle for longer than the interval need no memory: their next offer goes out."""
        if len(self._last_emit) > 4096:
            self._last_emit = {
                k: t
                for k, t in self._last_emit.items()
                if now - t < self.interval or k in self._pending
            }
