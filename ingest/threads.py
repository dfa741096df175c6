"""Blocking calls that must never hold the process open: a daemon thread per call.

`asyncio.to_thread` and `ThreadPoolExecutor` threads are joined when the interpreter exits, so
a 20-second SQS long poll, or a store probe waiting on an unreachable endpoint, keeps a process
alive long after it logged that it stopped, and an orchestrator's grace period runs out. A call
made here is abandoned at exit instead; only calls whose result may be lost go through it (a
receive whose messages simply reappear after their visibility timeout, a readiness probe).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def in_daemon_thread(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`call(*args, **kwargs)` on a new daemon thread; cancelling the await abandons it."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if answer.done():
            return
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        try:
            result = call(*args, **kwargs)
        except BaseException as exc:  # handed to the awaiting coroutine, which decides
            _call_soon(loop, settle, None, exc)
        else:
            _call_soon(loop, settle, result, None)

    threading.Thread(
        target=work, name=f"daemon-{getattr(call, '__name__', 'call')}", daemon=True
    ).start()
    return await answer


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    """The loop may have closed while the call ran: then nobody waits for its answer."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        pass
