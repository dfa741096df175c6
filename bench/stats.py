"""How long `/incident stats 30d` takes over 100,000 incidents in SQLite.

Seeds a fresh SQLite file (the store's own schema and pragmas) with 100,000 incidents (by
default) spread over 60 days: 2,000 problems from six sources, severities weighted towards
the mild, most acknowledged and nearly all resolved after minutes to hours, the last day's
often still open; about three alerts per incident, and one analysis each, most of them cache
hits. Seeding goes straight into the store's tables in bulk, which is what makes it take
seconds; the timed part is the real thing: `compute_stats` over a `SqliteStore` for the last
30 days, plus rendering the reply with `stats_message`, repeated. Prints the median and the
slowest run against the target.

    python -m bench.stats [--incidents N] [--runs R] [--seed S]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.db import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from blocks.commands import stats_message  # noqa: E402
from bot.stats import compute_stats  # noqa: E402
from incidents.models import Alert, Incident, IncidentStatus, Severity  # noqa: E402
from incidents.sqlite import SqliteStore  # noqa: E402

TARGET_MS = 200
DAYS = 60
PERIOD = timedelta(days=30)
PROBLEMS = 2000
SOURCES = ("cloudwatch", "cloudwatch-logs", "alertmanager", "grafana", "custom", "sentry")
SEVERITIES = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)
SEVERITY_WEIGHTS = (5, 20, 35, 40)
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
BATCH = 10_000


def _utc_text(moment: datetime) -> str:
    """The fixed-width UTC text the store keeps acknowledgement and resolution times as."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _incidents(rng: random.Random, count: int) -> Iterator[tuple[dict[str, Any], list[Alert]]]:
    """Each incident as the store's row, with the alerts it grouped."""
    step = timedelta(days=DAYS) / count
    for n in range(count):
        opened = NOW - timedelta(days=DAYS) + step * n
        problem = rng.randrange(PROBLEMS)
        source = SOURCES[problem % len(SOURCES)]
        fingerprint = hashlib.sha256(f"problem-{problem}".encode()).hexdigest()[:32]
        severity = rng.choices(SEVERITIES, SEVERITY_WEIGHTS)[0]
        acknowledged = (
            opened + timedelta(seconds=rng.randrange(30, 3600)) if rng.random() < 0.6 else None
        )
        after = opened + timedelta(seconds=rng.randrange(300, 6 * 3600))
        recent = NOW - opened < timedelta(days=1)
        still_open = after > NOW or (recent and rng.random() < 0.4) or rng.random() < 0.005
        resolved = None if still_open else after
        if acknowledged is not None and acknowledged > (resolved or NOW):
            acknowledged = None
        status = (
            IncidentStatus.RESOLVED
            if resolved
            else IncidentStatus.ACKNOWLEDGED
            if acknowledged
            else IncidentStatus.OPEN
        )
        end = resolved or NOW
        alerts = [
            Alert(
                source=source,
                parser=source,
                title=f"service-{problem} errors high",
                message=f"Threshold Crossed: 1 datapoint [{rng.randrange(100, 999)}.0] > 50.0",
                severity=severity,
                occurred_at=at,
                received_at=at,
                labels={"service": f"service-{problem}", "env": "prod"},
                fingerprint=fingerprint,
                raw={"AlarmName": f"service-{problem}-errors-high", "NewStateValue": "ALARM"},
            )
            for at in sorted(
                [opened]
                + [opened + (end - opened) * rng.random() for _ in range(rng.randrange(0, 5))]
            )
        ]
        incident = Incident(
            id=f"INC-{n:06d}",
            fingerprint=fingerprint,
            title=f"service-{problem} errors high",
            source=source,
            resource=f"arn:aws:lambda:us-east-1:123456789012:function:service-{problem}",
            severity=severity,
            status=status,
            opened_at=opened,
            last_seen_at=alerts[-1].received_at,
            occurrences=len(alerts),
            acknowledged_at=acknowledged,
            acknowledged_by="U0BENCH" if acknowledged else None,
            resolved_at=resolved,
            resolved_by="alert:bench" if resolved else None,
            version=1 + bool(acknowledged) + bool(resolved),
        )
        row = {
            "id": incident.id,
            "fingerprint": fingerprint,
            "status": status.value,
            "severity": severity.value,
            "opened_at": opened.isoformat(),
            "acknowledged_at": _utc_text(acknowledged) if acknowledged else None,
            "ack_seconds": (acknowledged - opened).total_seconds() if acknowledged else None,
            "resolved_at": _utc_text(resolved) if resolved else None,
            "resolve_seconds": (resolved - opened).total_seconds() if resolved else None,
            "version": incident.version,
            "data": incident.model_dump_json(),
        }
        yield row, alerts


def seed(path: Path, count: int, rng: random.Random) -> tuple[int, int]:
    """The store's schema first (by opening it), then its tables filled in bulk."""
    SqliteStore(path).close()
    db = sqlite_utils.Database(path)
    incidents: list[dict[str, Any]] = []
    occurrences: list[dict[str, Any]] = []
    analyses: list[dict[str, Any]] = []
    alerts_total = 0

    def flush() -> None:
        with db.conn:
            Table(db, "incidents").insert_all(incidents)
            Table(db, "occurrences").insert_all(occurrences)
            Table(db, "analyses").insert_all(analyses)
        incidents.clear()
        occurrences.clear()
        analyses.clear()

    for row, alerts in _incidents(rng, count):
        incidents.append(row)
        alerts_total += len(alerts)
        occurrences.extend(
            {
                "key": f"{row['id']}-{n}",
                "incident_id": row["id"],
                "received_at": alert.received_at.isoformat(),
                "severity": alert.severity.value,
                "fingerprint": alert.fingerprint,
                "source": alert.source,
                "data": alert.model_dump_json(),
            }
            for n, alert in enumerate(alerts)
        )
        cached = rng.random() < 0.7
        created = alerts[0].received_at + timedelta(seconds=rng.randrange(2, 20))
        analyses.append(
            {
                "incident_id": row["id"],
                "fingerprint": row["fingerprint"],
                "source": alerts[0].source,
                "prompt_version": "v1",
                "created_at": created.astimezone(UTC).isoformat(),
                "analyzer": "claude",
                "model": "claude-sonnet-4-6",
                "cached": int(cached),
                "cost_usd": 0.0 if cached else round(rng.uniform(0.004, 0.03), 6),
                "body": json.dumps({"root_cause": "connection pool exhausted"}),
            }
        )
        if len(incidents) == BATCH:
            flush()
    flush()
    db.close()
    return count, alerts_total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "incidents.db"
        started = time.perf_counter()
        incidents, alerts = seed(path, args.incidents, random.Random(args.seed))
        print(
            f"seeded {incidents:,} incidents and {alerts:,} alerts over {DAYS} days "
            f"in {time.perf_counter() - started:.1f} s ({path.stat().st_size / 1e6:.0f} MB)"
        )
        store = SqliteStore(path)
        try:
            timings = []
            for _ in range(args.runs):
                started = time.perf_counter()
                stats = compute_stats(store, NOW - PERIOD, "last 30d", until=NOW)
                stats_message(stats)
                timings.append((time.perf_counter() - started) * 1000)
        finally:
            store.close()
    opened = sum(stats.opened.values())
    print(
        f"30d: {opened:,} opened, {sum(stats.resolved.values()):,} resolved, "
        f"{stats.alerts:,} alerts in {stats.alerted_incidents:,} incidents, "
        f"{stats.analyses:,} analyses, {stats.open_count:,} open now"
    )
    median, slowest = statistics.median(timings), max(timings)
    verdict = "OK" if median < TARGET_MS else "MISSED"
    print(
        f"/incident stats 30d: median {median:.0f} ms, max {slowest:.0f} ms over "
        f"{args.runs} runs (target < {TARGET_MS} ms: {verdict})"
    )


if __name__ == "__main__":
    main()
