"""The throttle behind coalesced updates: one emission per key per interval."""

from __future__ import annotations

import asyncio

from bot.throttle import Throttle


class Recorder:
    def __init__(self) -> None:
        self.values: list[int] = []
        self.changed = asyncio.Event()

    async def __call__(self, value: int) -> None:
        self.values.append(value)
        self.changed.set()


async def test_a_burst_becomes_the_first_value_now_and_the_last_after_the_interval():
    recorder = Recorder()
    throttle: Throttle[int] = Throttle(0.05, recorder)

    for value in range(1, 101):
        await throttle.offer("INC-1", value)
    assert recorder.values == [1]

    recorder.changed.clear()
    await asyncio.wait_for(recorder.changed.wait(), timeout=5)
    assert recorder.values == [1, 100]


async def test_keys_are_throttled_independently():
    recorder = Recorder()
    throttle: Throttle[int] = Throttle(60, recorder)

    await throttle.offer("INC-1", 1)
    await throttle.offer("INC-2", 2)
    await throttle.offer("INC-1", 3)

    assert recorder.values == [1, 2]
    await throttle.flush()
    assert recorder.values == [1, 2, 3]


async def test_discard_drops_the_pending_value():
    recorder = Recorder()
    throttle: Throttle[int] = Throttle(60, recorder)

    await throttle.offer("INC-1", 1)
    await throttle.offer("INC-1", 2)
    throttle.discard("INC-1")
    await throttle.flush()

    assert recorder.values == [1]


async def test_an_offer_after_a_quiet_interval_goes_out_at_once():
    now = [0.0]
    recorder = Recorder()
    throttle: Throttle[int] = Throttle(10, recorder, clock=lambda: now[0])

    await throttle.offer("INC-1", 1)
    now[0] = 11.0
    await throttle.offer("INC-1", 2)

    assert recorder.values == [1, 2]
