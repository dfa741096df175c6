"""Shared fixtures: a real SQLite store on disk and a clock the test moves by hand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from incidents.lifecycle import IncidentService, LifecyclePolicy
from incidents.models import Alert, AlertStatus, Severity
from incidents.sqlite import SqliteStore
from ingest import fingerprint

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
LIFECYCLE = LifecyclePolicy(
    reopen_window=timedelta(hours=1), flap_threshold=3, flap_window=timedelta(hours=1)
)
"""The lifecycle the `service` fixtures run: an hour to reopen, three reopens in an hour flap."""
# The product brief's test alert, in its custom JSON format.
BRIEF_ALERT = {
    "source": "test",
    "title": "Test Error: Database Connection Failed",
    "message": "PostgreSQL connection timeout after 30s\n"
    'Error: FATAL: too many connections for role "app_user"\n'
    "at Connection.connect(connection.js:42)",
    "severity": "HIGH",
    "timestamp": "2026-11-24T08:00:00Z",
}


class ManualClock:
    """Time that moves only when the test says so: no test sleeps to make time pass."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


class LoopClock:
    """An event loop's time and timers (`time`, `call_at`), moved only by `advance`: what the
    Slack pacer waits on, so that its tests never wait on real time."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self._timers: list[_Timer] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object], /) -> _Timer:
        timer = _Timer(when, callback)
        self._timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        """Move time on, running each timer due on the way at its own time."""
        end = self.now + seconds
        while due := [t for t in self._timers if not t.cancelled and t.when <= end]:
            timer = min(due, key=lambda t: t.when)
            self._timers.remove(timer)
            self.now = max(self.now, timer.when)
            timer.callback()
        self.now = end


@dataclass
class _Timer:
    when: float
    callback: Callable[[], object]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "incidents.db")
    yield opened
    opened.close()


@pytest.fixture
def service(store: SqliteStore, clock: ManualClock) -> IncidentService:
    return IncidentService(store, LIFECYCLE, clock=clock)


def make_alert(
    title: str = "Database connection failed",
    *,
    status: AlertStatus = AlertStatus.FIRING,
    severity: Severity = Severity.HIGH,
    dedup_key: str | None = None,
    problem: str | None = None,
    member: str | None = None,
) -> Alert:
    """An alert as the custom parser would make it; `problem` picks the fingerprint."""
    return Alert(
        source="test",
        parser="custom",
        title=title,
        message="PostgreSQL connection timeout after 30s",
        severity=severity,
        status=status,
        occurred_at=T0,
        received_at=T0,
        fingerprint=fingerprint.of_identity("test", problem or title),
        member=member,
        dedup_key=dedup_key,
        raw={"title": title},
    )
