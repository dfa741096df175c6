"""Leases between replicas, on one SQLite file shared by several `Leases` (several holders):
waiting for a busy lease, renewal while the work runs, and the takeover after a holder died."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from incidents.leases import Leases, replica_name
from incidents.sqlite import SqliteStore
from incidents.store import LeaseGrant

SHORT = timedelta(seconds=0.3)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "leases.db")


async def test_a_busy_lease_is_waited_for_and_then_granted(store: SqliteStore):
    first, second = Leases(store, SHORT, holder="r1"), Leases(store, SHORT, holder="r2")
    order: list[str] = []

    async def work(leases: Leases, name: str) -> LeaseGrant:
        async with leases.holding("post:INC-1", wait=timedelta(seconds=5)) as grant:
            order.append(f"{name} in")
            await asyncio.sleep(0.1)
            order.append(f"{name} out")
        return grant

    grants = await asyncio.gather(work(first, "r1"), work(second, "r2"))

    assert list(grants) == [LeaseGrant.ACQUIRED, LeaseGrant.ACQUIRED]
    assert order in (
        ["r1 in", "r1 out", "r2 in", "r2 out"],
        ["r2 in", "r2 out", "r1 in", "r1 out"],
    ), "never both inside at once"


async def test_a_wait_that_runs_out_yields_busy_and_runs_nothing_in_the_holders_name(
    store: SqliteStore,
):
    holder, other = Leases(store, timedelta(minutes=1), holder="r1"), Leases(store, SHORT)
    assert await holder.acquire("job:digest") is LeaseGrant.ACQUIRED

    async with other.holding("job:digest", wait=timedelta(seconds=0.2)) as grant:
        assert grant is LeaseGrant.BUSY

    assert await other.acquire("job:digest") is LeaseGrant.BUSY, "the holder's lease stands"


async def test_long_work_renews_its_lease_so_it_is_not_taken_over(store: SqliteStore):
    worker, other = Leases(store, SHORT, holder="r1"), Leases(store, SHORT, holder="r2")
    seen: list[LeaseGrant] = []

    async with worker.holding("analysis:fp", wait=timedelta(0)) as grant:
        assert grant is LeaseGrant.ACQUIRED
        for _ in range(8):  # 1.2 s: four lease durations
            await asyncio.sleep(0.15)
            seen.append(await other.acquire("analysis:fp"))

    assert set(seen) == {LeaseGrant.BUSY}
    assert await other.acquire("analysis:fp") is LeaseGrant.ACQUIRED, "released at the end"


async def test_a_dead_holders_lease_is_taken_over_once_it_ends(store: SqliteStore):
    dead, alive = Leases(store, SHORT, holder="dead"), Leases(store, SHORT, holder="alive")
    assert await dead.acquire("slack:INC-1") is LeaseGrant.ACQUIRED  # and then it is killed

    async with alive.holding("slack:INC-1", wait=timedelta(seconds=5)) as grant:
        assert grant is LeaseGrant.TAKEN_OVER


def test_replica_names_differ_within_one_host_and_process():
    assert replica_name() != replica_name()


async def test_cancelling_the_holder_cancels_it_and_the_lease_ends_by_itself(store: SqliteStore):
    """A shutdown cancels work that holds a lease: the work must stop (not swallow the
    cancellation while stopping its renewal), and the lease then simply runs out."""
    leases = Leases(store, SHORT, holder="r1")
    inside = asyncio.Event()

    async def work() -> None:
        async with leases.holding("job:resync", wait=timedelta(0)):
            inside.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(work())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    await asyncio.sleep(SHORT.total_seconds())
    assert await Leases(store, SHORT, holder="r2").acquire("job:resync") in (
        LeaseGrant.ACQUIRED,
        LeaseGrant.TAKEN_OVER,
    )


async def test_stopping_the_renewal_never_swallows_the_callers_own_cancellation():
    """The caller is cancelled while it waits for the renewal task to stop (the renewal is
    in the middle of a store call): the caller must end cancelled, not carry on."""
    from incidents.leases import _stop

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(0.2)  # finishing its store call
            raise

    renewal = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    after_stop: list[str] = []

    async def caller() -> None:
        await _stop(renewal)
        after_stop.append("carried on")

    task = asyncio.create_task(caller())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert after_stop == []
