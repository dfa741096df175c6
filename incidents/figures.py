"""The period figures, derived once from the rows a backend reads.

Each backend reads what only it can read fast (SQLite aggregates over its indexes, DynamoDB
sums its index partitions), as the rows below; everything that turns those rows into
figures (which keys are the noisiest and how ties go, what is totalled, which active
incidents are shown first) is here, so that the two backends cannot report differently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from incidents.escalation import waiting_since
from incidents.models import Incident, Severity
from incidents.store import AlertCount, PeriodFigures
from incidents.times import as_utc


@dataclass(frozen=True)
class Measured:
    """Incidents counted, with the seconds each took from its last opening, summed."""

    count: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class KeyAlerts:
    """A period's alerts of one fingerprint or one source: how many, over how many distinct
    incidents, and the incident of the newest of them (whose title names a fingerprint)."""

    key: str
    alerts: int
    incidents: int = 0
    newest_incident: str = ""


@dataclass(frozen=True, kw_only=True)
class PeriodRows:
    """What a backend read for a period, before any figure is derived (PeriodFigures says
    what each counts). `active_first` holds at least the first `active_shown` active
    incidents, in any order; `titles` the titles of at least the noisiest fingerprints'
    newest incidents, by incident id (`noisiest` says which those are)."""

    opened: Mapping[Severity, int]
    resolved: Mapping[Severity, Measured]
    acknowledged: Measured
    fingerprints: Iterable[KeyAlerts]
    sources: Iterable[KeyAlerts]
    active: int
    active_first: Iterable[Incident]
    titles: Mapping[str, str]


def noisiest(rows: Iterable[KeyAlerts], top: int) -> list[KeyAlerts]:
    """The `top` keys with the most alerts, ties by name; a key without alerts is left out."""
    counted = (row for row in rows if row.alerts)
    return sorted(counted, key=lambda row: (-row.alerts, row.key))[: max(top, 0)]


def measure(
    incidents: Iterable[Incident], moment: Callable[[Incident], datetime | None]
) -> Measured:
    """Count the incidents and sum the seconds from each one's last opening to its `moment`
    (acknowledgement or resolution): what a backend without stored durations sums."""
    seconds = [
        (as_utc(at) - as_utc(waiting_since(i))).total_seconds()
        for i in incidents
        if (at := moment(i))
    ]
    return Measured(len(seconds), sum(seconds))


def period_figures(rows: PeriodRows, *, top: int, active_shown: int) -> PeriodFigures:
    """The figures of a period from its rows: a pure function, the same for every backend."""
    fingerprints = [row for row in rows.fingerprints if row.alerts]
    active = sorted(rows.active_first, key=lambda i: (-i.severity.rank, as_utc(i.opened_at), i.id))
    return PeriodFigures(
        opened={severity: rows.opened.get(severity, 0) for severity in Severity},
        resolved={severity: rows.resolved.get(severity, Measured()).count for severity in Severity},
        acknowledged=rows.acknowledged.count,
        ack_seconds=rows.acknowledged.seconds,
        resolve_seconds=sum(measured.seconds for measured in rows.resolved.values()),
        alerts=sum(row.alerts for row in fingerprints),
        alerted_incidents=sum(row.incidents for row in fingerprints),
        top_fingerprints=[
            AlertCount(row.key, row.alerts, rows.titles.get(row.newest_incident, ""))
            for row in noisiest(fingerprints, top)
        ],
        top_sources=[AlertCount(row.key, row.alerts) for row in noisiest(rows.sources, top)],
        active=rows.active,
        active_shown=active[: max(active_shown, 0)],
    )
