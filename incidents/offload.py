"""Store calls off the event loop: the one way async code calls the blocking store.

Every backend call blocks (SQLite's fsync, a DynamoDB round trip), so the bot's async
components run them on a thread pool. Which pool is the composition root's choice (store
calls share one, leases have their own so that a renewal never waits behind a storm's
writes); this adapter only carries that choice, with the call's arguments type-checked.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class Offload:
    """`await offload(store.ticket, incident_id)`: the call, run on `executor` (the loop's
    default pool when None), awaited without blocking the loop."""

    def __init__(self, executor: Executor | None = None) -> None:
        self.executor = executor

    async def __call__(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        job = functools.partial(call, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.executor, job)
