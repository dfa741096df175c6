"""The scheduler's triggers and job guards, read with a controllable clock: apscheduler is
asked when each job would fire next after a chosen instant, so nothing waits."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.scheduler import build_scheduler, digest_trigger, exclusive, guarded
from incidents.leases import Leases
from incidents.sqlite import SqliteStore
from tests.conftest import ManualClock

PARIS = ZoneInfo("Europe/Paris")


def test_the_digest_fires_daily_at_its_local_time_across_daylight_saving():
    trigger = digest_trigger(time(9, 0), PARIS)
    winter = trigger.get_next_fire_time(None, datetime(2026, 12, 7, 10, 0, tzinfo=UTC))
    assert winter == datetime(2026, 12, 8, 8, 0, tzinfo=UTC)  # 09:00 CET is 08:00 UTC
    summer = trigger.get_next_fire_time(None, datetime(2026, 7, 1, 6, 0, tzinfo=UTC))
    assert summer == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)  # 09:00 CEST is 07:00 UTC


async def _nothing() -> None:
    return None


def test_only_the_jobs_the_settings_turn_on_are_scheduled(store: SqliteStore):
    leases = Leases(store, timedelta(seconds=30))
    both = build_scheduler(leases, escalate=_nothing, escalation_interval=timedelta(seconds=30),
                           digest=_nothing, digest_at=time(9, 0), digest_tz=PARIS)  # fmt: skip
    assert sorted(job.id for job in both.get_jobs()) == ["digest", "escalation"]
    none = build_scheduler(leases, escalate=None, escalation_interval=timedelta(seconds=30),
                           digest=_nothing, digest_at=None, digest_tz=PARIS)  # fmt: skip
    assert none.get_jobs() == []


async def test_an_exclusive_job_runs_on_one_replica_per_interval(
    store: SqliteStore, clock: ManualClock
):
    runs: list[str] = []

    def job(name: str):
        async def run() -> None:
            runs.append(name)

        return run

    one = exclusive(Leases(store, timedelta(seconds=30), holder="a", clock=clock), "job:x",
                    timedelta(seconds=30), job("a"))  # fmt: skip
    two = exclusive(Leases(store, timedelta(seconds=30), holder="b", clock=clock), "job:x",
                    timedelta(seconds=30), job("b"))  # fmt: skip
    await one()
    await two()
    assert runs == ["a"]
    clock.advance(seconds=28)
    await two()
    assert runs == ["a", "b"], "the lease ends before the next interval, so any replica may run"


async def test_a_failing_job_is_logged_and_does_not_raise(caplog):
    async def broken() -> None:
        raise RuntimeError("store unreachable")

    await guarded("escalation", broken)()
    assert "escalation failed; the next run tries again" in caplog.text
    assert "store unreachable" in caplog.text
