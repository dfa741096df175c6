"""A circuit breaker for Claude: stop calling while it keeps failing, then probe back.

After `threshold` consecutive failures the circuit opens and every analysis goes offline at
once, instead of each waiting out the SDK's retries. After a cooldown one request is let
through as a probe: success closes the circuit, failure reopens it with a longer cooldown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        threshold: int = 3,
        cooldown: float = 30.0,
        max_cooldown: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.base_cooldown = cooldown
        self.max_cooldown = max_cooldown
        self._clock = clock
        self._failures = 0
        self._cooldown = cooldown
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._probing or self._clock() - self._opened_at >= self._cooldown:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """Whether a call may go out now; in half-open, only the one probe may."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probing = False
        self._cooldown = self.base_cooldown

    def record_failure(self) -> None:
        if self._probing:
            self._probing = False
            self._cooldown = min(self._cooldown * 2, self.max_cooldown)
            self._opened_at = self._clock()
            return
        self._failures += 1
        if self._failures >= self.threshold:
            self._opened_at = self._clock()

    def release(self) -> None:
        """A probe that ended neither in success nor in an outage (a refusal, say): let the
        next request probe again."""
        self._probing = False
